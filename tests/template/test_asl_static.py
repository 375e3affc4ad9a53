"""Static checks of statemachines/request_workflow.asl.json (nothing in SAM checks the ASL file).

The file holds unquoted numeric placeholders (``"TimeoutSeconds": ${RunTimeoutSeconds}``), so it is
JSON only after substitution: ARNs become fake Lambda ARNs and numbers the formation defaults.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from asyncagents.config import FormationConfig

from .helpers import PLACEHOLDER, asl_placeholders, asl_text, load_template

pytestmark = pytest.mark.template

FAKE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:asyncagents-{name}"
MAX_ASL_INTEGER = 99_999_999  # Retry MaxAttempts / IntervalSeconds upper bound
MAX_DELAY_SECONDS = 31_622_400  # Retry MaxDelaySeconds upper bound (one year)


def _substitutions(parameters: dict[str, str]) -> dict[str, str]:
    values = {}
    for name in asl_placeholders():
        if name.endswith("Arn"):
            values[name] = FAKE_ARN.format(name=name.removesuffix("FunctionArn").removesuffix("Arn"))
        else:
            assert name in parameters, f"${{{name}}} is neither an ARN nor a formation-derived parameter"
            values[name] = parameters[name]
    return values


def render(parameters: dict[str, str] | None = None) -> dict[str, Any]:
    values = _substitutions(parameters or FormationConfig().template_parameters())
    text = PLACEHOLDER.sub(lambda match: values[match.group(1)], asl_text())
    return json.loads(text)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return render()


def _scopes(scope: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state machine scope: the top level, Map ItemProcessor/Iterator, Parallel branches."""
    yield path or "(top)", scope
    for name, state in scope["States"].items():
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _scopes(state[key], f"{path}{name}.{key}/")
        for index, branch in enumerate(state.get("Branches", [])):
            yield from _scopes(branch, f"{path}{name}.Branches[{index}]/")


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for scope_name, scope in _scopes(definition):
        for name, state in scope["States"].items():
            yield scope_name, name, state


def _targets(state: dict[str, Any]) -> list[str]:
    targets = []
    if "Next" in state:
        targets.append(state["Next"])
    if "Default" in state:
        targets.append(state["Default"])
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def test_renders_to_json_with_formation_defaults(definition: dict[str, Any]) -> None:
    assert definition["StartAt"] in definition["States"]
    assert isinstance(definition["TimeoutSeconds"], int)


@pytest.mark.parametrize(
    "overrides",
    [
        {"overlord": {"workflow": {"retry": {"max_attempts": 1, "initial_delay": 0.2, "backoff_factor": 1.0}}}},
        {"overlord": {"workflow": {"max_concurrency": 0, "timeouts": {"task_timeout": 870}}}},
        {"overlord": {"workflow": {"retry": {"max_attempts": 10, "initial_delay": 3600, "max_delay": 3600}}}},
    ],
)
def test_renders_with_edge_formations(overrides: dict[str, Any]) -> None:
    parameters = FormationConfig.model_validate(overrides).template_parameters()
    definition = render(parameters)
    for scope_name, name, state in _states(definition):
        for retrier in state.get("Retry", []):
            _check_retrier(f"{scope_name}{name}", retrier)


def test_every_task_retries_and_catches(definition: dict[str, Any]) -> None:
    tasks = [(scope, name, state) for scope, name, state in _states(definition) if state["Type"] == "Task"]
    assert {name for _, name, _ in tasks} == {"Run", "AwaitAnswer", "AnswerTimedOut", "MarkFailed"}
    for scope, name, state in tasks:
        assert state.get("Retry"), f"{scope}{name} has no Retry"
        assert state.get("Catch"), f"{scope}{name} has no Catch"
        assert isinstance(state.get("TimeoutSeconds"), int) and state["TimeoutSeconds"] > 0, name


def test_placeholders_match_definition_substitutions() -> None:
    template = load_template()
    substitutions = template["Resources"]["RequestWorkflow"]["Properties"]["DefinitionSubstitutions"]
    placeholders = asl_placeholders()
    assert placeholders - set(substitutions) == set(), "placeholders without a DefinitionSubstitution"
    assert set(substitutions) - placeholders == set(), "DefinitionSubstitutions the ASL does not use"


def test_numeric_placeholders_are_template_parameters_defaulting_to_the_formation_defaults() -> None:
    template = load_template()
    substitutions = template["Resources"]["RequestWorkflow"]["Properties"]["DefinitionSubstitutions"]
    formation_parameters = FormationConfig().template_parameters()
    for name, value in substitutions.items():
        if name.endswith("Arn"):
            continue
        assert value == {"Ref": name}, f"{name} should be !Ref {name} (the formation's parameter)"
    for name, expected in formation_parameters.items():
        parameter = template["Parameters"].get(name)
        assert parameter is not None, f"template parameter {name} missing (printed by `asyncagents params`)"
        default = parameter.get("Default")
        textual = parameter["Type"] in {"String", "CommaDelimitedList"}
        if textual and not str(expected).replace(".", "", 1).isdigit():
            assert str(default) == str(expected), f"{name}: template default {default!r} != formation {expected!r}"
            continue
        assert float(default) == float(expected), f"{name}: template default {default} != formation {expected}"
        if "MinValue" in parameter:
            assert float(expected) >= float(parameter["MinValue"]), name
        if "MaxValue" in parameter:
            assert float(expected) <= float(parameter["MaxValue"]), name


def test_every_state_is_reachable_and_every_target_exists(definition: dict[str, Any]) -> None:
    for scope_name, scope in _scopes(definition):
        states = scope["States"]
        assert scope["StartAt"] in states, f"{scope_name}: StartAt {scope['StartAt']!r} is not a state"
        for name, state in states.items():
            for target in _targets(state):
                assert target in states, f"{scope_name}{name} -> {target!r}, which is not a state of this scope"
        seen: set[str] = set()
        pending = [scope["StartAt"]]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            pending += _targets(states[current])
        unreachable = set(states) - seen
        assert not unreachable, f"{scope_name}: unreachable states {sorted(unreachable)}"


def test_every_state_ends_or_moves_on(definition: dict[str, Any]) -> None:
    for scope, name, state in _states(definition):
        kind = state["Type"]
        if kind in ("Succeed", "Fail"):
            assert "Next" not in state and "End" not in state, f"{scope}{name}"
        elif kind == "Choice":
            assert state.get("Choices") and "End" not in state, f"{scope}{name}"
        else:
            assert ("Next" in state) != (state.get("End") is True), f"{scope}{name}: exactly one of Next/End"


def _check_retrier(where: str, retrier: dict[str, Any]) -> None:
    assert retrier.get("ErrorEquals"), f"{where}: retrier without ErrorEquals"
    max_attempts = retrier.get("MaxAttempts", 3)
    interval = retrier.get("IntervalSeconds", 1)
    backoff = retrier.get("BackoffRate", 2.0)
    assert isinstance(max_attempts, int) and 0 <= max_attempts <= MAX_ASL_INTEGER, f"{where}: MaxAttempts"
    assert isinstance(interval, int) and 1 <= interval <= MAX_ASL_INTEGER, f"{where}: IntervalSeconds"
    assert isinstance(backoff, int | float) and backoff >= 1.0, f"{where}: BackoffRate"
    if "MaxDelaySeconds" in retrier:
        max_delay = retrier["MaxDelaySeconds"]
        assert isinstance(max_delay, int) and 1 <= max_delay <= MAX_DELAY_SECONDS, f"{where}: MaxDelaySeconds"
        assert max_delay >= interval, f"{where}: MaxDelaySeconds below IntervalSeconds"
    assert retrier.get("JitterStrategy", "NONE") in ("FULL", "NONE"), f"{where}: JitterStrategy"


def test_retry_values_within_valid_ranges(definition: dict[str, Any]) -> None:
    retriers = 0
    for scope, name, state in _states(definition):
        for retrier in state.get("Retry", []):
            retriers += 1
            _check_retrier(f"{scope}{name}", retrier)
    assert retriers


def test_states_all_is_alone_and_last(definition: dict[str, Any]) -> None:
    for scope, name, state in _states(definition):
        for field in ("Retry", "Catch"):
            rules = state.get(field, [])
            for index, rule in enumerate(rules):
                if "States.ALL" in rule["ErrorEquals"]:
                    assert rule["ErrorEquals"] == ["States.ALL"], f"{scope}{name}.{field}: States.ALL not alone"
                    assert index == len(rules) - 1, f"{scope}{name}.{field}: States.ALL not last"


def test_waits_for_answers_are_never_retried_and_route_every_outcome(definition: dict[str, Any]) -> None:
    """A wait on a task token ends by an answer, a closed question, its timeout or an error: its timeout is
    the user's silence (never retried), and each outcome has its own route back into the workflow."""
    waits = [
        (scope, name, state)
        for scope, name, state in _states(definition)
        if state["Type"] == "Task" and state["Resource"].endswith(".waitForTaskToken")
    ]
    assert {name for _, name, _ in waits} == {"AwaitAnswer"}
    timeout = FormationConfig().overlord.workflow.clarification.timeout_seconds
    for scope, name, state in waits:
        assert state["TimeoutSeconds"] == timeout, name
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token", name
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert not retried & {"States.Timeout", "States.ALL", "States.TaskFailed"}, f"{scope}{name} retries a wait"
        routes = {error: catcher["Next"] for catcher in state["Catch"] for error in catcher["ErrorEquals"]}
        assert state["Next"] == "Run" and routes["ClarificationAnswered"] == "Run"
        assert routes["States.Timeout"] == routes["QuestionTimedOut"] == "AnswerTimedOut"
        assert "States.ALL" in routes


def test_the_run_hands_over_by_its_errors(definition: dict[str, Any]) -> None:
    """Run's own errors route the workflow: a question to wait on and a failure already recorded are never
    retried (a retry would run the request again in place of the route); a run out of time is retried, by a
    retrier of its own that never gives up (the workflow's timeout bounds it) and does not wait. (A Catch back to
    Run would cost the same transition, but moto ends the execution on a Catch that names its own state.) Every
    other error is recorded by MarkFailed."""
    run = definition["States"]["Run"]
    assert definition["StartAt"] == "Run" and run.get("End") is True
    *others, waiting_on_the_model, going_on = run["Retry"]
    # The model provider's breaker is open: the workflow waits in Step Functions (no Lambda time, no step's
    # retries), a cool-down at a time, as long as it takes
    cool_down = FormationConfig().llm.circuit_breaker.cool_down_seconds
    assert waiting_on_the_model == {
        "ErrorEquals": ["CircuitOpen"],
        "IntervalSeconds": cool_down,
        "MaxAttempts": MAX_ASL_INTEGER,
        "BackoffRate": 1,
    }
    assert going_on == {
        "ErrorEquals": ["RunContinues"],
        "IntervalSeconds": 1,
        "MaxAttempts": MAX_ASL_INTEGER,
        "BackoffRate": 1,
    }
    retried = {error for retrier in others for error in retrier["ErrorEquals"]}
    routes = {error: catcher["Next"] for catcher in run["Catch"] for error in catcher["ErrorEquals"]}
    handovers = {"ClarificationRequested": "AwaitAnswer", "RequestFailed": "RequestFailed"}
    assert not retried & {*handovers, "RunContinues", "CircuitOpen"}
    assert {error: routes[error] for error in handovers} == handovers and "RunContinues" not in routes
    assert routes["States.ALL"] == "MarkFailed"
    assert definition["States"]["RequestFailed"]["Type"] == "Fail"


THROTTLES = {
    "Lambda.TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}


def test_throttled_tasks_retry_long_enough_to_ride_out_a_burst(definition: dict[str, Any]) -> None:
    """A throttled invocation (the account's Lambda concurrency, DynamoDB's capacity) is not the step's fault: it
    has a retrier of its own, first, not counted against the step's retries, backing off for minutes."""
    # (The states that retry States.ALL alone, the failure recorders, retry throttling with everything else.)
    tasks = [
        (scope, name, state)
        for scope, name, state in _states(definition)
        if any(THROTTLES & set(retrier["ErrorEquals"]) for retrier in state.get("Retry", []))
    ]
    assert len(tasks) == 3
    for scope, name, state in tasks:
        first, *others = state["Retry"]
        assert set(first["ErrorEquals"]) == THROTTLES, f"{scope}{name}: throttling is not retried first"
        waits, delay = 0.0, float(first["IntervalSeconds"])
        for _ in range(first["MaxAttempts"]):
            waits += min(delay, first["MaxDelaySeconds"])
            delay *= first["BackoffRate"]
        assert first["MaxAttempts"] >= 10 and waits >= 300, f"{scope}{name}: gives up on throttling after {waits}s"
        for retrier in others:
            assert not THROTTLES & set(retrier["ErrorEquals"]), f"{scope}{name}: throttling in a step's retrier"
