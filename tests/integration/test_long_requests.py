"""A request longer than one Run task (at most 897 s on AWS): it goes on in fresh runs, with the real state machine
on moto."""

from __future__ import annotations

import pytest

from asyncagents import runtime
from asyncagents.api.schemas import ChatRequest
from asyncagents.domain.statuses import Status
from tests.stack_fixture import TEST_FORMATION, new_principal, stack_fixture, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    # Run tasks of 4 s (on AWS at most 897 s): a request of 1 s steps needs several, one after the other.
    workflow = {**TEST_FORMATION["overlord"]["workflow"], "timeouts": {"task_timeout": 2, "workflow_timeout": 60}}
    yield from stack_fixture(
        tmp_path_factory,
        {"overlord": {"workflow": workflow}},
        parameter_overrides={"RunTimeoutSeconds": "4", "RunFunctionTimeoutSeconds": "7"},
    )


def test_a_request_longer_than_a_run_goes_on_in_fresh_runs_without_redoing_a_step(short_runs):
    principal = new_principal(short_runs)
    service = runtime.current().request_service
    message = "a, then b, then c, then d, then e [demo step_seconds=1]"
    record = service.submit(
        principal, ChatRequest.model_validate({"message": message, "async": True}).to_domain()
    ).record
    final = wait_for(lambda: (r := service.get(principal, record.request_id)).status.is_terminal and r, timeout=60)
    assert final.status is Status.COMPLETED
    assert final.step_attempts == {str(i): 1 for i in range(5)}
    arn = f"{short_runs.state_machine_arn.replace(':stateMachine:', ':execution:')}:{record.execution_name}"
    events = short_runs.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    runs = [e for e in events if e["type"] == "TaskScheduled"]
    # Five 1 s steps; a run starts an attempt only when its 2 s fit before the run's end (4.5 s): two runs at least
    # (Run retried on RunContinues), and no other state
    assert entered == ["Run"] and len(runs) >= 2
