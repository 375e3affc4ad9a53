"""Timeouts, retries, the reconciler and redrive, with the real state machine on moto."""

from __future__ import annotations

import time

import pytest

from asyncagents import runtime
from asyncagents.api.schemas import ChatRequest
from asyncagents.api.views import request_body
from asyncagents.config import MAX_RESULT_RETENTION_SECONDS
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import Conflict
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import parse_iso
from tests.stack_fixture import TEST_FORMATION, new_principal, stack_fixture, wait_for

pytestmark = pytest.mark.integration

TASK_TIMEOUT = 2
# Room for a hung step's two attempts and their backoff (about 5 s) on a busy machine, short of the 8 steps below.
WORKFLOW_TIMEOUT = 9


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workflow = {
        **TEST_FORMATION["overlord"]["workflow"],
        "timeouts": {"task_timeout": TASK_TIMEOUT, "workflow_timeout": WORKFLOW_TIMEOUT},
        "retry": {"max_attempts": 2, "initial_delay": 1, "max_delay": 2, "backoff_factor": 2.0},
    }
    yield from stack_fixture(
        tmp_path_factory, {"overlord": {"workflow": workflow}, "async": {"result_retention_seconds": 120}}
    )


@pytest.fixture
def principal(stack) -> Principal:
    return new_principal(stack)


def submit(principal: Principal, message: str):
    return (
        runtime.current()
        .request_service.submit(principal, ChatRequest.model_validate({"message": message, "async": True}).to_domain())
        .record
    )


def wait_terminal(principal: Principal, request_id: str, timeout: float = 30):
    service = runtime.current().request_service
    return wait_for(lambda: (r := service.get(principal, request_id)).status.is_terminal and r, timeout=timeout)


def test_hung_step_times_out_is_retried_then_fails_as_timeout(stack, principal):
    record = submit(principal, "stuck [demo hang_seconds=5]")
    final = wait_terminal(principal, record.request_id)
    assert final.status is Status.FAILED
    assert final.error is not None
    assert final.error.model_dump() == {
        "type": "timeout",
        "message": f"Task exceeded timeout ({TASK_TIMEOUT}s)",
        "retryable": True,
        "step": 0,  # the step whose attempts ran out
    }
    assert final.step_attempts == {"0": 2}  # max_attempts: 2


def test_workflow_timeout_is_reconciled_so_nothing_stays_processing(stack, principal):
    # Eight steps of 1.5 s each fit the task timeout but not the 9 s workflow timeout.
    record = submit(principal, "a, b, c, d, e, f, g, h [demo step_seconds=1.5]")
    final = wait_terminal(principal, record.request_id, timeout=WORKFLOW_TIMEOUT + 10)
    assert final.status is Status.FAILED
    assert final.error is not None
    assert final.error.model_dump(exclude_none=True) == {
        "type": "timeout",
        "message": f"Workflow exceeded timeout ({WORKFLOW_TIMEOUT}s)",
        "retryable": True,
    }
    assert 0 < final.completed_steps < 8


def test_an_execution_stopped_outside_a_cancel_is_reconciled_as_aborted(stack, principal):
    # Stopped while it waits for the user's answer. (A stop while Run works leaves the Lambda running, on AWS as
    # here; on AWS the reconciler records the abort at once and the run stops at its next checkpoint, but moto
    # reports the execution stopped only once the Task returns, so that race cannot be played here.)
    record = submit(principal, "a, b [demo ask=1]")
    service = runtime.current().request_service
    wait_for(lambda: service.get(principal, record.request_id).status is Status.AWAITING_CLARIFICATION)
    arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{record.execution_name}"
    stack.client("stepfunctions").stop_execution(executionArn=arn, cause="operator")
    final = wait_terminal(principal, record.request_id)
    assert final.status is Status.FAILED
    # On AWS a stop skips every Catch and the reconciler records "aborted". moto instead ends the waiting task
    # with States.Timeout, which the workflow's own Catch records first. Either way nothing stays processing,
    # and the reconciler then finds the request already ended.
    assert final.error is not None and final.error.type in {"aborted", "timeout"}


def test_redrive_resumes_at_the_failed_step_without_rerunning_finished_ones(stack, principal):
    # Step 2 fails three times: the first execution gives up after two attempts.
    record = submit(principal, "first, second, third [demo fail_step=1 fail_transient=3]")
    failed = wait_terminal(principal, record.request_id)
    assert failed.status is Status.FAILED and failed.error is not None and failed.error.retryable
    assert failed.step_attempts == {"0": 1, "1": 2, "2": 0}
    table = runtime.current().step_checkpoints
    first_outputs = table.outputs(failed.request_key, failed.checkpoint_lineage)
    assert [o["index"] for o in first_outputs] == [0]

    resumed = runtime.current().request_service.redrive(principal, record.request_id)
    assert resumed.status is Status.PROCESSING and resumed.execution_name != failed.execution_name
    final = wait_terminal(principal, record.request_id)

    assert final.status is Status.COMPLETED
    assert final.step_attempts == {"0": 1, "1": 4, "2": 1}  # step 1 ran once, step 2 resumed, step 3 once
    outputs = table.outputs(final.request_key, final.checkpoint_lineage)
    assert [o["index"] for o in outputs] == [0, 1, 2]
    assert outputs[0]["finished_at"] == first_outputs[0]["finished_at"]
    assert final.redrive_count == 1 and final.redriven_error is not None
    public = request_body(final)
    assert public["redrive"]["count"] == 1 and "error" not in public

    with pytest.raises(Conflict):  # only failed requests can be redriven
        runtime.current().request_service.redrive(principal, record.request_id)


def test_a_redrive_keeps_a_plan_kept_apart_as_long_as_its_new_run_needs_it(stack, principal):
    # Given a request with a long plan (kept on its own item) that failed at its second step
    clause = "go through the quarterly figures of the {0} region and explain every change against last year"
    message = ", ".join(clause.format(r) + " in detail" * 8 for r in ("north", "south", "east"))
    record = submit(principal, message + " [demo fail_step=1 fail_transient=3]")
    failed = wait_terminal(principal, record.request_id)
    assert failed.status is Status.FAILED and len(failed.steps) == 3
    table, name = stack.client("dynamodb"), stack.table_name
    key = {"pk": {"S": f"REQ#{failed.request_key}"}, "sk": {"S": f"REQUEST#PLAN#{failed.planned_by}"}}
    planned_ttl = int(table.get_item(TableName=name, Key=key)["Item"]["ttl"]["N"])
    # (kept past the longest retention its record may get: an operator may lengthen the retention meanwhile)
    assert planned_ttl >= parse_iso(failed.created_at).timestamp() + WORKFLOW_TIMEOUT + MAX_RESULT_RETENTION_SECONDS
    # When it is redriven (a new run: a workflow timeout and a retention from now)
    time.sleep(1.1)
    runtime.current().request_service.redrive(principal, record.request_id)
    # Then its plan is kept longer, and the new run works from it to the end
    assert int(table.get_item(TableName=name, Key=key)["Item"]["ttl"]["N"]) > planned_ttl
    final = wait_terminal(principal, record.request_id)
    assert final.status is Status.COMPLETED and [s.title for s in final.steps] == [s.title for s in failed.steps]


def test_a_redrive_keeps_the_finished_steps_outputs_and_runs_again_one_that_is_gone(stack, principal):
    # Given a request whose first two steps finished before the third failed for good
    record = submit(principal, "first, second, third [demo fail_step=2 fail_transient=3]")
    failed = wait_terminal(principal, record.request_id)
    assert failed.status is Status.FAILED and failed.done_steps == {0, 1}
    table, name = stack.client("dynamodb"), stack.table_name

    def checkpoint(index: int) -> dict:
        sk = f"STEP#{failed.checkpoint_lineage}#{index:04d}"
        return {"pk": {"S": f"REQ#{failed.request_key}"}, "sk": {"S": sk}}

    stored_until = int(table.get_item(TableName=name, Key=checkpoint(1))["Item"]["ttl"]["N"])
    # And the first one's output is gone (DynamoDB swept it: its ttl passed, say a retention lengthened since)
    table.delete_item(TableName=name, Key=checkpoint(0))
    # When it is redriven a moment later
    time.sleep(1.1)
    runtime.current().request_service.redrive(principal, record.request_id)
    # Then the output still there lives as long as the new run needs it, and the one gone is not written back empty
    assert int(table.get_item(TableName=name, Key=checkpoint(1))["Item"]["ttl"]["N"]) > stored_until
    final = wait_terminal(principal, record.request_id)
    # And the new run made the first step again, kept the second, and answered from all three
    assert final.status is Status.COMPLETED and final.done_steps == {0, 1, 2}
    assert final.step_attempts == {"0": 2, "1": 1, "2": 4}  # the third failed once more, as before
    outputs = runtime.current().step_checkpoints.outputs(final.request_key, final.checkpoint_lineage)
    assert [(o["index"], o["attempts"]) for o in outputs] == [(0, 2), (1, 1), (2, 4)]
    assert final.result is not None and [s["index"] for s in final.result.steps] == [0, 1, 2]
