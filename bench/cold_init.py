"""Cold init, measured in pairs: each round starts a fresh interpreter for the floor and for every candidate,
in a shuffled order, so the machine's drift hits them alike; ratios are taken within a round, then the median.

    make bench BENCH_ARGS="--only cold --repeat 15"
    make bench BENCH_ARGS="--only cold --against 14ed399"   # also the same functions at an earlier commit

A candidate imports a function's handler module (as Lambda's init does) and creates the AWS clients its
first call needs. ``ApiFunction, first request`` also resolves a first request (``GET /v1/health``: Powertools
builds a route's validation on its first request); ``every route validated`` builds every route's validation
too, what a container pays by the time it has served each route once (an upper bound).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
_HEALTH = (
    '{"version": "2.0", "routeKey": "$default", "rawPath": "/v1/health", "rawQueryString": "", "headers": {},'
    ' "requestContext": {"http": {"method": "GET", "path": "/v1/health", "protocol": "HTTP/1.1",'
    ' "sourceIp": "127.0.0.1", "userAgent": "bench"}, "requestId": "bench", "stage": "$default"},'
    ' "isBase64Encoded": false}'
)


def _environment(layer: Path, formation: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(layer),  # ahead of the editable install: the tree under test is the one imported
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


def _candidate(tree: Path, folder: str, clients: list[str], request: str) -> str:
    """Code that inits one function from ``tree`` (this checkout, or an earlier commit's)."""
    lines = [
        "import asyncagents, importlib.util as u, json",
        f"assert asyncagents.__file__.startswith({str(tree)!r}), asyncagents.__file__",
        "from asyncagents import runtime",
        f"s = u.spec_from_file_location('app', {str(tree / 'functions' / folder / 'app.py')!r})",
        "m = u.module_from_spec(s); s.loader.exec_module(m)",
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


def _run(code: str, environment: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=environment, cwd=ROOT)
    return time.perf_counter() - started


def measure(repeat: int, against: str | None = None) -> list[list[str]]:
    """Rows of ``[what, median ms, median paired ratio to the floor, ratio to the earlier commit]``."""
    with _tree_at(None) as current, _tree_at(against) as earlier:
        trees = {"now": current} | ({"then": earlier} if against else {})
        plain = _environment(current / "layers" / "asyncagents", current / "formation.yaml")
        jobs: dict[tuple[str, str], tuple[str, dict[str, str]]] = {("floor", "now"): (FLOOR, plain)}
        jobs.update({(name, "now"): (code, plain) for name, code in REFERENCES.items()})
        for name, (folder, clients, request) in FUNCTIONS.items():
            for label, tree in trees.items():
                environment = _environment(tree / "layers" / "asyncagents", tree / "formation.yaml")
                jobs[(name, label)] = (_candidate(tree, folder, clients, request), environment)
        samples: dict[tuple[str, str], list[float]] = {job: [] for job in jobs}
        order = list(jobs)
        for _ in range(repeat):
            random.shuffle(order)
            for job in order:
                samples[job].append(_run(*jobs[job]))
    floor = samples[("floor", "now")]
    rows = [["floor: import boto3 + dynamodb client", f"{statistics.median(floor) * 1000:.0f}", "1.00", ""]]
    for name in REFERENCES:
        reference = samples[(name, "now")]
        to_floor = statistics.median(r / f for r, f in zip(reference, floor, strict=True))
        rows.append([name, f"{statistics.median(reference) * 1000:.0f}", f"{to_floor:.2f}", ""])
    for name in FUNCTIONS:
        now = samples[(name, "now")]
        to_floor = statistics.median(n / f for n, f in zip(now, floor, strict=True))
        to_then = ""
        if against:
            then = samples[(name, "then")]
            to_then = f"{statistics.median(n / t for n, t in zip(now, then, strict=True)):.3f}"
            rows.append(
                [
                    f"{name} @ {against}",
                    f"{statistics.median(then) * 1000:.0f}",
                    f"{statistics.median(t / f for t, f in zip(then, floor, strict=True)):.2f}",
                    "",
                ]
            )
        rows.append([f"{name} (now)", f"{statistics.median(now) * 1000:.0f}", f"{to_floor:.2f}", to_then])
    return rows
