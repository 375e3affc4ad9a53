"""Compile the built layer's modules ahead, for the Lambda runtime's Python (3.12).

Used by the layer's Makefile during ``sam build``::

    python -m asyncagents.build_bytecode "$ARTIFACTS_DIR/python"

Lambda's file system is read-only: a layer without bytecode has every module it imports compiled again at each
cold start (pydantic, Powertools and this package: more than the whole init of boto3). Bytecode is specific to a
Python minor version, so it is compiled by a CPython 3.12 found on this machine (``LAMBDA_PYTHON``, else
``python3.12`` on the PATH, else a pyenv or uv installation), with unchecked hashes: the runtime loads it without
reading the sources' timestamps, which a zip does not always keep. Without a 3.12 the layer ships sources only and
this says so (exit status 0: the stack works, its cold starts are slower).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

LAMBDA_PYTHON_VERSION = (3, 12)  # template.yaml's Runtime: python3.12
PROBE_SECONDS = 30.0  # how long an interpreter may take to say its version (a hung shim is skipped)
_VERSION = ".".join(map(str, LAMBDA_PYTHON_VERSION))


def _candidates() -> list[str]:
    home = Path.home()
    found = [os.environ.get("LAMBDA_PYTHON", ""), shutil.which(f"python{_VERSION}") or ""]
    for pattern in (
        f"{os.environ.get('PYENV_ROOT', home / '.pyenv')}/versions/{_VERSION}.*/bin/python{_VERSION}",
        f"{home}/.local/share/uv/python/cpython-{_VERSION}.*/bin/python{_VERSION}",
        f"/usr/bin/python{_VERSION}",
        f"/usr/local/bin/python{_VERSION}",
    ):
        found += sorted(glob.glob(pattern), reverse=True)
    return [path for path in found if path]


# A released CPython of the runtime's minor version (a pre-release's bytecode may differ: the runtime would ignore
# it, silently).
_CHECK = (
    "import sys; v = sys.version_info; sys.exit(sys.implementation.name != 'cpython'"
    f" or v[:2] != {LAMBDA_PYTHON_VERSION} or v.releaselevel != 'final')"
)


def lambda_python() -> str | None:
    """A CPython of the Lambda runtime's version that runs here, or None."""
    named = os.environ.get("LAMBDA_PYTHON", "")
    for path in _candidates():
        try:
            if subprocess.run([path, "-c", _CHECK], capture_output=True, timeout=PROBE_SECONDS).returncode == 0:
                return path
        except (OSError, subprocess.TimeoutExpired):
            pass
        if path == named:
            print(
                f"warning: LAMBDA_PYTHON={named} is not a released CPython {_VERSION}; looking further", file=sys.stderr
            )
    return None


def compile_layer(folder: Path, python: str) -> int:
    """Compile every module under ``folder`` with ``python``; how many bytecode files there are."""
    compiled = subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)],
        capture_output=True,
        text=True,
    )
    if compiled.returncode != 0:  # a module that does not compile: say which, and fail the build
        raise RuntimeError(f"compileall failed:\n{compiled.stdout}{compiled.stderr}")
    return sum(1 for _ in folder.rglob(f"*.cpython-{LAMBDA_PYTHON_VERSION[0]}{LAMBDA_PYTHON_VERSION[1]}.pyc"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m asyncagents.build_bytecode <layer python folder>", file=sys.stderr)
        return 2
    python = lambda_python()
    if python is None:
        print(
            f"warning: no Python {_VERSION} found (set LAMBDA_PYTHON): the layer ships sources only, and each cold"
            " start compiles what it imports (about twice the floor's init more for the API)",
            file=sys.stderr,
        )
        return 0
    try:
        count = compile_layer(Path(args[0]), python)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"bytecode for Python {_VERSION} ({python}): {count} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
