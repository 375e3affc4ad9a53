"""Cold init, measured in pairs: each round starts a fresh interpreter for the floor and for every candidate,
in a shuffled order, so the machine's drift hits them alike; ratios are taken within a round, then the median.

The package is imported as the layer ships it (``make build``): sources with their bytecode compiled ahead
(Lambda's file system is read-only: whatever has no bytecode is compiled again at every cold start). The rows
``... without bytecode`` import the package and its libraries from sources only, as the layer shipped them before
it carried bytecode: the difference is what compiling ahead saves each cold start.

With ``--python`` another interpreter runs everything (the runtime's 3.12, say): the layer's libraries and boto3 are
installed for it once, with pip, into ``.bench-cache/`` (pip compiles them, as the layer and the runtime have them).

    make bench BENCH_ARGS="--only cold --repeat 15"
    make bench BENCH_ARGS="--only cold --against 14ed399"   # also the same functions at an earlier commit
    make bench BENCH_ARGS="--only cold --python runtime"     # with the Lambda runtime's Python (3.12)

A candidate imports a function's handler module (as Lambda's init does) and creates the AWS clients its
first call needs. ``ApiFunction, first request`` also resolves a first request (``GET /v1/health``: Powertools
builds a route's validation on its first request); ``every route validated`` builds every route's validation
too, what a container pays by the time it has served each route once (an upper bound).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from asyncagents.build_bytecode import compile_layer, lambda_python

ROOT = Path(__file__).resolve().parents[1]
FLOOR = "import boto3; boto3.client('dynamodb')"
# What the libraries the brief mandates cost on their own, to tell our code's share from theirs.
_MODEL = "\nfrom pydantic import BaseModel\nclass M(BaseModel):\n x: int\nM(x=1)"
REFERENCES = {
    "reference: floor + one pydantic model": FLOOR + _MODEL,
    "reference: floor + pydantic + Powertools resolver": FLOOR
    + _MODEL
    + "\nfrom aws_lambda_powertools.event_handler import APIGatewayHttpResolver; APIGatewayHttpResolver()",
}
FUNCTIONS = {
    "ApiFunction": ("api", ["dynamodb"], ""),
    "ApiFunction, first request": ("api", ["dynamodb"], "first"),
    "ApiFunction, every route validated": ("api", ["dynamodb"], "every"),
    "ApiFunction, first submit": ("api", ["dynamodb", "stepfunctions"], ""),
    "RunFunction": ("run", ["dynamodb"], ""),
    "MarkFailedFunction": ("mark_failed", ["dynamodb"], ""),
}
# The same inits from sources alone (the package and the layer's libraries without bytecode).
WITHOUT_BYTECODE = {"ApiFunction": "ApiFunction, without bytecode", "RunFunction": "RunFunction, without bytecode"}
LIBRARY_REFERENCE = "reference: floor + pydantic + Powertools resolver"
_HEALTH = (
    '{"version": "2.0", "routeKey": "$default", "rawPath": "/v1/health", "rawQueryString": "", "headers": {},'
    ' "requestContext": {"http": {"method": "GET", "path": "/v1/health", "protocol": "HTTP/1.1",'
    ' "sourceIp": "127.0.0.1", "userAgent": "bench"}, "requestId": "bench", "stage": "$default"},'
    ' "isBase64Encoded": false}'
)


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs the inits, and where its libraries are: ``libraries`` with their bytecode (empty: this
    environment's), ``library_sources`` the same without it, ``boto`` the runtime-provided boto3 (empty: this
    environment's)."""

    python: str
    libraries: tuple[Path, ...] = ()
    library_sources: tuple[Path, ...] = ()
    boto: tuple[Path, ...] = ()


def _environment(formation: Path, *paths: Path) -> dict[str, str]:
    # Ahead of the editable install: the tree under test is the one imported (and, without bytecode, the libraries'
    # sources ahead of the environment's compiled ones).
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(path) for path in paths),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TABLE_NAME": "bench-table",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
        "FORMATION_PATH": str(formation),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDANTIC_DISABLE_PLUGINS": "1",
    }


def _candidate(tree: Path, layer: Path, folder: str, clients: list[str], request: str) -> str:
    """Code that inits one function from ``tree`` (this checkout, or an earlier commit's) with the package in
    ``layer``."""
    lines = [
        "import asyncagents, importlib.util as u, json",
        f"assert asyncagents.__file__.startswith({str(layer)!r}), asyncagents.__file__",
        # The handler module first, as Lambda's init imports it (it pauses the GC before anything else loads).
        f"s = u.spec_from_file_location('app', {str(tree / 'functions' / folder / 'app.py')!r})",
        "m = u.module_from_spec(s); s.loader.exec_module(m)",
        "from asyncagents import runtime",
        # Before the Runtime container (earlier commits), clients came from module-level functions.
        "r = runtime.current() if hasattr(runtime, 'current') else runtime",
        *(f"c = getattr(r, {name!r}); c() if callable(c) else c" for name in clients),
    ]
    if request == "every":
        lines += [
            "import asyncagents.api.app as api",
            "routes = api.app._static_routes + api.app._dynamic_routes",
            "[route.dependant for route in routes if getattr(api.app, '_enable_validation', False)]",
        ]
    if request:
        lines += [
            "import asyncagents.api.app as api",
            f"answer = api.app.resolve(json.loads({_HEALTH!r}), None)",
            "assert answer['statusCode'] == 200, answer",
        ]
    return "\n".join(lines)


@contextmanager
def _tree_at(revision: str | None) -> Iterator[Path]:
    """This checkout, or the layer, functions and formation of an earlier commit in a scratch folder."""
    if revision is None:
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="bench-tree-") as folder:
        archive = subprocess.run(
            ["git", "archive", revision, "layers/asyncagents", "functions", "formation.yaml"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)


def _shipped_package(tree: Path, folder: Path, python: str | None) -> Path:
    """The asyncagents package of ``tree`` as the layer holds it: with bytecode compiled ahead by ``python`` as
    ``make build`` does it (``asyncagents.build_bytecode``), or sources alone (``python`` None)."""
    layer = folder / ("layer" if python else "sources-layer")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "local")
    shutil.copytree(tree / "layers" / "asyncagents" / "asyncagents", layer / "asyncagents", ignore=ignore)
    if python:
        compile_layer(layer, python)
    return layer


def _built_formation(tree: Path, folder: Path) -> Path:
    """``tree``'s formation as the layer ships it (JSON, validated by that tree's own package), what the functions
    read at /opt/formation.json."""
    built = folder / "formation.json"
    environment = {**os.environ, "PYTHONPATH": str(tree / "layers" / "asyncagents")}
    command = [sys.executable, "-m", "asyncagents.build_formation", str(tree / "formation.yaml"), str(built)]
    subprocess.run(command, check=True, env=environment, capture_output=True)
    return built


def runtime_interpreter(python: str) -> Interpreter:
    """``python`` (``runtime``: the CPython 3.12 ``make build`` compiles the layer with) with the layer's libraries
    and boto3 installed for it (once, into ``.bench-cache/``)."""
    if python == "runtime":
        python = lambda_python() or ""
        if not python:
            raise SystemExit("--python runtime: no CPython 3.12 found here (set LAMBDA_PYTHON)")
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], capture_output=True, text=True
    )
    if version.returncode != 0:
        raise SystemExit(f"--python {python}: {version.stderr.strip() or 'does not run'}")
    cache = ROOT / ".bench-cache" / f"python-{version.stdout.strip()}"
    libraries, boto, sources = cache / "libraries", cache / "boto", cache / "library-sources"
    if not (cache / "installed").exists():
        shutil.rmtree(cache, ignore_errors=True)
        requirements = ROOT / "layers" / "asyncagents" / "requirements.txt"
        for target, packages in ((libraries, ["-r", str(requirements)]), (boto, ["boto3"])):
            pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target)]
            subprocess.run([*pip, *packages], check=True)
        shutil.copytree(libraries, sources, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (cache / "installed").touch()
    return Interpreter(python, (libraries,), (sources,), (boto,))


def _library_sources(folder: Path) -> Path:
    """The layer's libraries (requirements.txt and what they require) as sources alone, copied from this
    environment without their bytecode."""
    target = folder / "library-sources"
    requirements = (ROOT / "layers" / "asyncagents" / "requirements.txt").read_text().splitlines()
    pending = [line for line in requirements if line.strip() and not line.startswith("#")]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen or name in ("boto3", "botocore"):
            continue
        seen.add(name)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in distribution.files or []:
            if "__pycache__" in file.parts or ".dist-info" in str(file) or file.parts[0] in ("..", "bin"):
                continue
            copy = target / file
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(distribution.locate_file(file), copy)  # type: ignore[arg-type]
        pending += distribution.requires or []
    return target


def _run(python: str, code: str, environment: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-c", code], check=True, env=environment, cwd=ROOT)
    return time.perf_counter() - started


def _paired(these: list[float], those: list[float]) -> str:
    return f"{statistics.median(a / b for a, b in zip(these, those, strict=True)):.2f}"


def measure(repeat: int, against: str | None = None, interpreter: Interpreter | None = None) -> list[list[str]]:
    """Rows of ``[what, median ms, median paired ratio to the floor, to the library reference, to the earlier
    commit]``."""
    with _tree_at(None) as current, _tree_at(against) as earlier, tempfile.TemporaryDirectory() as scratch:
        run = interpreter or Interpreter(sys.executable, library_sources=(_library_sources(Path(scratch)),))
        trees = {"now": current} | ({"then": earlier} if against else {})
        formations = {label: _built_formation(tree, Path(scratch) / label) for label, tree in trees.items()}
        formation = formations["now"]
        layers = {label: _shipped_package(tree, Path(scratch) / label, run.python) for label, tree in trees.items()}
        jobs: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
            ("floor", "now"): (FLOOR, _environment(formation, *run.boto))
        }
        libraries = _environment(formation, *run.libraries, *run.boto)
        jobs.update({(name, "now"): (code, libraries) for name, code in REFERENCES.items()})
        for name, (folder, clients, request) in FUNCTIONS.items():
            for label, tree in trees.items():
                environment = _environment(formations[label], layers[label], *run.libraries, *run.boto)
                jobs[(name, label)] = (_candidate(tree, layers[label], folder, clients, request), environment)
        sources = _shipped_package(current, Path(scratch), None)
        uncompiled = _environment(formation, *run.library_sources, sources, *run.boto)
        for name, row in WITHOUT_BYTECODE.items():
            folder, clients, request = FUNCTIONS[name]
            jobs[(row, "now")] = (_candidate(current, sources, folder, clients, request), uncompiled)
        samples: dict[tuple[str, str], list[float]] = {job: [] for job in jobs}
        order = list(jobs)
        for _ in range(repeat):
            random.shuffle(order)
            for job in order:
                samples[job].append(_run(run.python, *jobs[job]))
    floor, library = samples[("floor", "now")], samples[(LIBRARY_REFERENCE, "now")]
    rows = [["floor: import boto3 + dynamodb client", f"{statistics.median(floor) * 1000:.0f}", "1.00", "", ""]]
    for name in REFERENCES:
        reference = samples[(name, "now")]
        rows.append([name, f"{statistics.median(reference) * 1000:.0f}", _paired(reference, floor), "", ""])
    for name in [*FUNCTIONS, *WITHOUT_BYTECODE.values()]:
        now = samples[(name, "now")]
        to_floor, to_library = _paired(now, floor), _paired(now, library)
        to_then = ""
        if against and (name, "then") in samples:
            then = samples[(name, "then")]
            to_then = f"{statistics.median(n / t for n, t in zip(now, then, strict=True)):.3f}"
            then_ms = f"{statistics.median(then) * 1000:.0f}"
            rows.append([f"{name} @ {against}", then_ms, _paired(then, floor), _paired(then, library), ""])
        rows.append([f"{name} (now)", f"{statistics.median(now) * 1000:.0f}", to_floor, to_library, to_then])
    return rows
