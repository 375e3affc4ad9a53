"""Every function's init runs without the cyclic GC's pauses, and leaves the GC running."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda path: path.parent.name)
def test_a_handler_module_pauses_the_gc_first_and_resumes_it_last(handler: Path) -> None:
    statements = ast.parse(handler.read_text()).body
    first, last = statements[1], statements[-1]  # statements[0] is the docstring
    assert ast.unparse(first) == "import asyncagents.coldstart", f"{handler}: the first import must be coldstart"
    assert ast.unparse(last) == "asyncagents.coldstart.done()", f"{handler}: the last statement must end init"


def test_loading_a_handler_collects_nothing_and_leaves_the_gc_on() -> None:
    # Given a fresh interpreter (the module's first import is the one that pauses), counting collections
    script = textwrap.dedent(
        f"""
        import gc, importlib.util, json
        collections = []
        gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
        spec = importlib.util.spec_from_file_location("app", {str(ROOT / "functions" / "api" / "app.py")!r})
        module = importlib.util.module_from_spec(spec)
        before = len(collections)
        spec.loader.exec_module(module)
        during = len(collections) - before
        print(json.dumps({{"during": during, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}))
        """
    )
    # When the API's handler module loads (boto3, pydantic, Powertools and ours)
    answer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert answer.returncode == 0, answer.stderr
    seen = __import__("json").loads(answer.stdout.strip().splitlines()[-1])
    # Then no collection ran while its modules loaded (at most one, as the handler's own source is compiled before
    # its first line runs; over a hundred without the pause), what init made is frozen, and the GC is on again
    assert seen["during"] <= 1, seen
    assert seen["enabled"] is True
    assert seen["frozen"] > 10_000
