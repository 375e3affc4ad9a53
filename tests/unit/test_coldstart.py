"""Every function's init runs without the cyclic GC's pauses, and leaves the GC running."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .interpreters import fresh_interpreter

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda path: path.parent.name)
def test_a_handler_module_pauses_the_gc_first_and_resumes_it_last(handler: Path) -> None:
    statements = ast.parse(handler.read_text()).body
    first, last = statements[1], statements[-1]  # statements[0] is the docstring
    assert ast.unparse(first) == "import asyncagents.coldstart", f"{handler}: the first import must be coldstart"
    assert ast.unparse(last) == "asyncagents.coldstart.done()", f"{handler}: the last statement must end init"


def test_loading_a_handler_collects_nothing_and_leaves_the_gc_on() -> None:
    # Given a fresh interpreter, counting collections
    seen = fresh_interpreter(
        f"""
        import gc, importlib.util, json
        collections = []
        gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
        spec = importlib.util.spec_from_file_location("app", {str(ROOT / "functions" / "api" / "app.py")!r})
        module = importlib.util.module_from_spec(spec)
        before = len(collections)
        # When the API's handler module loads (boto3, pydantic, Powertools and ours)
        spec.loader.exec_module(module)
        during = len(collections) - before
        print(json.dumps({{"during": during, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}))
        """
    )
    # Then no collection ran while its modules loaded (at most one, as the handler's own source is compiled before
    # its first line runs; over a hundred without the pause), what init made is frozen, and the GC is on again
    assert seen["during"] <= 1, seen
    assert seen["enabled"] is True
    assert seen["frozen"] > 10_000


def test_the_gc_is_left_as_it_was_and_init_is_frozen_once_per_process() -> None:
    seen = fresh_interpreter(
        """
        import gc, json
        gc.disable()  # someone wanted it off
        import asyncagents.coldstart as coldstart
        coldstart.done()
        frozen = gc.get_freeze_count()
        made_later = [[index] for index in range(5_000)]  # a second handler's load, in the same process
        coldstart.done()
        print(json.dumps({"enabled": gc.isenabled(), "first": frozen, "again": gc.get_freeze_count()}))
        """
    )
    assert seen["enabled"] is False
    assert seen["first"] > 0
    assert seen["again"] == seen["first"]  # the local stack loads handlers again and again: nothing more is frozen


def test_a_handler_whose_init_fails_leaves_the_local_stack_with_its_gc(tmp_path: Path) -> None:
    # Given a handler module that pauses the GC and then fails to load
    (tmp_path / "app.py").write_text("import asyncagents.coldstart\n\nraise RuntimeError('broken init')\n")
    seen = fresh_interpreter(
        f"""
        import gc, json
        from pathlib import Path
        from asyncagents.local.lambdas import load_handler
        try:
            load_handler(Path({str(tmp_path)!r}), "app.lambda_handler", module_alias="broken")
        except RuntimeError:
            pass
        print(json.dumps({{"enabled": gc.isenabled()}}))
        """
    )
    # Then the process the local stack runs in collects garbage again
    assert seen == {"enabled": True}
