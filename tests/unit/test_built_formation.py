"""Nothing heavy at import, and the built formation is never validated again: a cold start builds only the pydantic
models its requests use."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from asyncagents.build_formation import build
from asyncagents.built_formation import load_built, pickled_path
from asyncagents.config import FormationConfig, load_formation

from .interpreters import fresh_interpreter

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
# Which of our models have their validator built, in a fresh interpreter that ran ``script`` first.
_BUILT_MODELS = """
from pydantic import BaseModel

def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)

built = sorted(
    {f"{model.__module__}.{model.__qualname__}" for model in _subclasses(BaseModel)
     if model.__module__.startswith("asyncagents") and model.__pydantic_complete__}
)
"""

_ELSEWHERE = FormationConfig(formation_id="another-build")


def _edit_json_beside(pickle_path: Path) -> None:
    """The JSON beside ``pickle_path`` edited after the build (another formation id), its pickle left as it was."""
    json_path = pickle_path.with_suffix(".json")
    document = json.loads(json_path.read_text(encoding="utf-8"))
    json_path.write_text(json.dumps({**document, "formation_id": "edited-since"}), encoding="utf-8")


def _restamped(path: Path) -> tuple:
    """The stamp of ``path``'s pickle, for another JSON document."""
    stamp = pickle.loads(path.read_bytes())[0]
    return (*stamp[:-1], "0" * 64)


_SCHEDULE = """
schedules:
  daily-report:
    schedule: "0 9 * * 1-5"
    timezone: Europe/Paris
    message: Write the daily analytics report
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's formation and its triggers, plus a schedule."""
    folder = tmp_path_factory.mktemp("formation")
    shutil.copytree(ROOT / "triggers", folder / "triggers")
    (folder / "formation.yaml").write_text((ROOT / "formation.yaml").read_text(encoding="utf-8") + _SCHEDULE)
    return folder / "formation.yaml"


@pytest.fixture(scope="module")
def built(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """That formation as ``make build`` ships it."""
    target = tmp_path_factory.mktemp("layer") / "formation.json"
    build(source, target)
    return target


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda path: path.parent.name)
def test_loading_a_handler_builds_none_of_our_models(handler: Path) -> None:
    # When a function's handler module loads, as Lambda's init does
    seen = fresh_interpreter(
        f"""
        import importlib.util, json
        spec = importlib.util.spec_from_file_location("app", {str(handler)!r})
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        {textwrap.indent(_BUILT_MODELS, " " * 8).strip()}
        print(json.dumps({{"built": built}}))
        """
    )
    # Then none of our models has built its validator: each is built by the first request that uses it
    assert seen["built"] == [], seen


def test_the_built_formation_comes_back_without_building_a_formation_model(source: Path, built: Path) -> None:
    # Given the built formation (triggers and schedules included); when a fresh container reads it
    seen = fresh_interpreter(
        f"""
        import json
        from asyncagents.built_formation import load_built
        formation = load_built({str(built)!r})
        {textwrap.indent(_BUILT_MODELS, " " * 8).strip()}
        print(json.dumps({{"built": built, "triggers": sorted(formation.triggers),
                           "schedule": formation.schedules["daily-report"].timezone,
                           "mode": formation.async_.mode, "retry": formation.overlord.workflow.retry.max_attempts}}))
        """
    )
    # Then it is the validated formation, and no validator was built to get it
    validated = load_formation(source)
    assert seen["built"] == [], seen
    assert seen["triggers"] == sorted(validated.triggers) and "github-issue" in seen["triggers"]
    assert seen["schedule"] == validated.schedules["daily-report"].timezone == "Europe/Paris"
    assert (seen["mode"], seen["retry"]) == (validated.async_.mode, validated.overlord.workflow.retry.max_attempts)
    assert load_built(built) == validated


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda path: path.unlink(), id="missing"),
        pytest.param(lambda path: path.write_bytes(b"not a pickle"), id="unreadable"),
        pytest.param(lambda path: path.write_bytes(pickle.dumps(((0, "2", ""), _ELSEWHERE))), id="stamp"),
        pytest.param(
            lambda path: path.write_bytes(pickle.dumps((_restamped(path), _ELSEWHERE))), id="stamped-for-another-json"
        ),
        pytest.param(lambda path: _edit_json_beside(path), id="json-edited-since"),
        pytest.param(
            lambda path: path.write_bytes(pickle.dumps((pickle.loads(path.read_bytes())[0], _ELSEWHERE.__dict__))),
            id="type",
        ),
    ],
)
def test_a_pickle_that_is_missing_or_foreign_leaves_the_json_validated(
    source: Path, built: Path, tmp_path: Path, spoil
) -> None:
    # Given a built formation whose pickle is missing, unreadable, from another format or not a formation
    json_path = tmp_path / "formation.json"
    json_path.write_bytes(built.read_bytes())
    pickled_path(json_path).write_bytes(pickled_path(built).read_bytes())
    spoil(pickled_path(json_path))
    # Then the JSON is validated, as before there was a pickle
    assert load_built(json_path) == load_formation(json_path)
    assert load_built(json_path).formation_id == json.loads(json_path.read_text(encoding="utf-8"))["formation_id"]


def test_a_formation_file_is_validated_whatever_lies_beside_it(built: Path, tmp_path: Path) -> None:
    # Given a YAML formation (the local stack's) with another formation's pickle beside it
    yaml_path = tmp_path / "formation.yaml"
    yaml_path.write_text("formation_id: local-one\n", encoding="utf-8")
    stamp = pickle.loads(pickled_path(built).read_bytes())[0]
    for_this_file = (*stamp[:-1], hashlib.sha256(yaml_path.read_bytes()).hexdigest())
    pickled_path(yaml_path).write_bytes(pickle.dumps((for_this_file, _ELSEWHERE)))
    # Then the YAML is what counts
    assert load_built(yaml_path).formation_id == "local-one"


def test_models_first_used_by_many_threads_at_once_are_built_once_and_right() -> None:
    # Given fresh (unbuilt) models, one holding another, and threads switching as often as Python allows
    from asyncagents.model_base import LazyModel

    threads, rounds, wrong = 8, 40, []
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round_number in range(rounds):

            class Inner(LazyModel):
                text: str

            class Outer(LazyModel):
                inner: Inner
                count: int = 0

            barrier = threading.Barrier(threads)

            def first_use(number: int, inner=Inner, outer=Outer, barrier=barrier, round_number=round_number) -> None:
                barrier.wait()
                try:
                    made = outer(inner={"text": f"t{number}"}, count=number)
                    alone = inner(text="alone")
                    if (made.inner.text, made.count, alone.text) != (f"t{number}", number, "alone"):
                        wrong.append(f"round {round_number}: {made.__dict__!r} {alone.__dict__!r}")
                except Exception as error:  # any error is a finding
                    wrong.append(f"round {round_number}: {type(error).__name__}: {error}")

            # When every thread uses them for the first time at once
            workers = [threading.Thread(target=first_use, args=(number,)) for number in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
    finally:
        sys.setswitchinterval(switching)
    # Then every instance is whole: no thread saw a model half built (or built under it again)
    assert wrong == []


def test_under_snapstart_init_builds_the_models_into_the_snapshot() -> None:
    # Given a SnapStart init (the snapshot keeps what init made); when the API's handler module loads
    handler = ROOT / "functions" / "api" / "app.py"
    seen = fresh_interpreter(
        f"""
        import importlib.util, json, os
        os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
        spec = importlib.util.spec_from_file_location("app", {str(handler)!r})
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        {textwrap.indent(_BUILT_MODELS, " " * 8).strip()}
        print(json.dumps({{"built": built}}))
        """
    )
    # Then its models are built already: a restored container does not build them on its first requests
    assert {
        "asyncagents.api.schemas.ChatRequest",
        "asyncagents.domain.records.RequestRecord",
        "asyncagents.api.schemas.NewJobBody",  # a model derived from another of ours
    } <= set(seen["built"])


def test_a_function_reads_the_built_formation_without_validating_it(built: Path) -> None:
    # When a function's runtime first needs the formation (FORMATION_PATH: the layer's JSON)
    seen = fresh_interpreter(
        f"""
        import json
        from asyncagents.runtime import Runtime
        environ = {{"TABLE_NAME": "bench-table", "AWS_REGION": "us-east-1", "FORMATION_PATH": {str(built)!r}}}
        formation = Runtime(environ).formation
        {textwrap.indent(_BUILT_MODELS, " " * 8).strip()}
        print(json.dumps({{"built": built, "schedules": sorted(formation.schedules)}}))
        """
    )
    # Then it has the formation, and built no model to get it (only its environment's, which it validates)
    assert seen == {"built": ["asyncagents.settings.FunctionSettings"], "schedules": ["daily-report"]}


def test_the_pickle_is_what_the_json_validates_to(tmp_path: Path) -> None:
    # Given a trigger whose free-form key holds a YAML date (a date object in the YAML, a string in the JSON)
    (tmp_path / "triggers").mkdir()
    (tmp_path / "triggers" / "dated.md").write_text(
        "---\ndescription: dated\nwebhook:\n  since: 2024-01-01\n---\nA ticket: ${{ data.subject }}\n",
        encoding="utf-8",
    )
    (tmp_path / "formation.yaml").write_text("formation_id: dated\n", encoding="utf-8")
    build(tmp_path / "formation.yaml", tmp_path / "out" / "formation.json")
    # Then the functions read exactly what validating the shipped JSON gives
    shipped = tmp_path / "out" / "formation.json"
    assert load_built(shipped) == load_formation(shipped)
    assert load_built(shipped).triggers["dated"].webhook == {"since": "2024-01-01"}
