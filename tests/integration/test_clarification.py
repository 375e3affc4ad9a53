"""Human clarification with the real state machine on moto: a step or the planner asks, the workflow waits
on a task token, the answer resumes it; cancel while waiting; two parallel steps asking at once."""

from __future__ import annotations

import json

import pytest

from asyncagents import runtime
from asyncagents.api.schemas import ChatRequest
from asyncagents.api.views import request_body
from asyncagents.data.table_keys import request_item_key
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import Conflict, StaleWrite
from asyncagents.domain.records import RequestRecord, Usage
from asyncagents.domain.statuses import Status
from tests.stack_fixture import TEST_FORMATION, new_principal, stack_fixture, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workflow = {
        **TEST_FORMATION["overlord"]["workflow"],
        "max_concurrency": 4,
        "clarification": {"timeout_seconds": 60, "on_timeout": "fail", "max_questions": 3},
    }
    yield from stack_fixture(
        tmp_path_factory, {"overlord": {"workflow": workflow}, "async": {"result_retention_seconds": 120}}
    )


@pytest.fixture
def principal(stack) -> Principal:
    return new_principal(stack)


def submit(principal: Principal, message: str) -> RequestRecord:
    chat = ChatRequest.model_validate({"message": message, "async": True}).to_domain()
    return runtime.current().request_service.submit(principal, chat).record


def wait_status(principal: Principal, request_id: str, status: Status, *, questions: int = 1) -> RequestRecord:
    """Wait until the request is in ``status`` (for awaiting: with ``questions`` questions waited on)."""
    service = runtime.current().request_service

    def reached() -> RequestRecord | None:
        record = service.get(principal, request_id)
        if record.status is not status:
            return None
        if status is Status.AWAITING_CLARIFICATION and sum(1 for q in record.questions.values() if q.token) < questions:
            return None
        return record

    return wait_for(reached, timeout=30)


def execution_of(stack, record: RequestRecord) -> dict:
    arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{record.execution_name}"
    return stack.client("stepfunctions").describe_execution(executionArn=arn)


def test_a_step_asks_the_workflow_waits_and_the_answer_resumes_it(stack, principal):
    service = runtime.current().request_service
    handovers = len(stack.metrics.emitted("RunHandovers"))
    record = submit(principal, "collect data, then write the summary [demo ask=1]")

    # The second step asks: the request waits, with the question (and never the token) in GET
    waiting = wait_status(principal, record.request_id, Status.AWAITING_CLARIFICATION)
    # (the Run task handed over to the wait by an error, counted apart so that its alarm does not count it)
    assert len(stack.metrics.emitted("RunHandovers")) > handovers
    public = request_body(waiting)
    assert public["clarification"]["question"] == "Demo question for step 2: which option should I use?"
    assert public["clarification_question"] == public["clarification"]["question"]
    assert public["clarification"]["step"] == "Write the summary"
    assert waiting.completed_steps == 1
    token = waiting.questions["1"].token
    assert token and token not in json.dumps(public)
    question_id = public["clarification"]["clarification_request_id"]
    assert execution_of(stack, waiting)["status"] == "RUNNING"

    # An attempt of the step that outlived its timeout cannot finish it while its question is open
    with pytest.raises(StaleWrite):
        runtime.current().step_checkpoints.put_output(
            waiting.request_key, waiting.checkpoint_lineage, 1, {"index": 1, "text": "stale", "attempts": 1}, ttl=1
        )
        runtime.current().request_records.count_step_done(
            waiting.request_key, 1, generation=waiting.execution_name, message="m", usage=Usage()
        )

    # A wrong question id is a conflict that changes nothing
    with pytest.raises(Conflict):
        service.answer(principal, record.request_id, "x", clarification_id="clr_0000000000000000")
    assert service.get(principal, record.request_id).status is Status.AWAITING_CLARIFICATION

    # The answer resumes the step, which sees it
    resumed = service.answer(principal, record.request_id, "the blue one", clarification_id=question_id)
    assert resumed.status is Status.PROCESSING
    final = wait_for(lambda: (r := service.get(principal, record.request_id)).status.is_terminal and r, timeout=30)
    assert final.status is Status.COMPLETED, final.error
    assert "Step 2 of 2 (Write the summary): done. (the user answered: the blue one)" in final.result.text
    assert [(c.question, c.answer, c.outcome) for c in final.clarifications] == [
        ("Demo question for step 2: which option should I use?", "the blue one", "answered")
    ]
    assert final.model_calls == 5  # plan, step 1, step 2 asking, step 2 again, and Finish composing the answer
    assert final.step_attempts["1"] == 2
    wait_for(lambda: execution_of(stack, final)["status"] == "SUCCEEDED", timeout=10)

    # Answering again is a conflict naming the status
    with pytest.raises(Conflict) as conflict:
        service.answer(principal, record.request_id, "again")
    assert conflict.value.details["status"] == "completed"


def test_the_planner_asks_and_plans_with_the_answer(stack, principal):
    service = runtime.current().request_service
    record = submit(principal, "plan my trip, book it [demo ask=plan]")
    waiting = wait_status(principal, record.request_id, Status.AWAITING_CLARIFICATION)
    assert waiting.total_steps == 0 and request_body(waiting)["clarification"]["step"] == "Planning"

    service.answer(principal, record.request_id, "Lisbon in May")
    final = wait_for(lambda: (r := service.get(principal, record.request_id)).status.is_terminal and r, timeout=30)
    assert final.status is Status.COMPLETED, final.error
    assert final.total_steps == 2
    assert "(the user answered: Lisbon in May)" in final.result.text


def test_cancel_while_waiting_ends_the_wait_and_the_execution(stack, principal):
    service = runtime.current().request_service
    record = submit(principal, "one step that asks [demo ask=0]")
    waiting = wait_status(principal, record.request_id, Status.AWAITING_CLARIFICATION)

    cancelled, already = service.cancel(principal, record.request_id)
    assert cancelled.status is Status.CANCELLED and not already

    # moto's StopExecution does not end a wait on a task token; the cancel ends it explicitly, so the
    # execution is over long before the 60 s clarification timeout.
    wait_for(lambda: execution_of(stack, waiting)["status"] != "RUNNING", timeout=15)
    final = service.get(principal, record.request_id)
    assert final.status is Status.CANCELLED and final.result is None
    with pytest.raises(Conflict):
        service.answer(principal, record.request_id, "too late")


def test_two_parallel_steps_ask_at_once_and_each_answer_resumes_its_own_step(stack, principal):
    service = runtime.current().request_service
    # Three independent steps in one wave (max_concurrency 4); the first two both ask.
    record = submit(principal, "alpha, beta, gamma [demo ask=0+1]")
    wait_status(principal, record.request_id, Status.AWAITING_CLARIFICATION, questions=2)
    # The step that did not ask finishes meanwhile (on a busy machine, perhaps after both questions were asked)
    waiting = wait_for(lambda: (r := service.get(principal, record.request_id)).completed_steps == 1 and r, timeout=30)
    public = request_body(waiting)
    assert waiting.status is Status.AWAITING_CLARIFICATION and public["open_questions"] == 2
    first = public["clarification"]  # the oldest question is the one shown

    # Answering one resumes its step; the request keeps waiting on the other question
    with pytest.raises(Conflict):  # two are open: the answer must name its question
        service.answer(principal, record.request_id, "which one?")
    after_one = service.answer(
        principal, record.request_id, f"answer to {first['step']}", clarification_id=first["clarification_request_id"]
    )
    assert after_one.status is Status.AWAITING_CLARIFICATION
    second = request_body(after_one)["clarification"]
    assert second["clarification_request_id"] != first["clarification_request_id"]
    service.answer(principal, record.request_id, f"answer to {second['step']}")

    final = wait_for(lambda: (r := service.get(principal, record.request_id)).status.is_terminal and r, timeout=30)
    assert final.status is Status.COMPLETED, final.error
    assert final.completed_steps == 3
    assert "(Alpha): done. (the user answered: answer to Alpha)" in final.result.text
    assert "(Beta): done. (the user answered: answer to Beta)" in final.result.text
    assert sorted(c.answer for c in final.clarifications) == ["answer to Alpha", "answer to Beta"]


def test_records_from_before_questions_existed_pass_the_version_condition(stack, principal):
    """Items written by an earlier release lack ``questions_version``: a condition on version 0 holds."""
    table = runtime.current().request_records
    record = submit(principal, "an ordinary request")
    final = wait_for(lambda: (r := table.get(record.request_key)).status.is_terminal and r, timeout=30)
    stack.client("dynamodb").update_item(
        TableName=stack.table_name,
        Key=request_item_key(final.request_key),
        UpdateExpression="REMOVE questions_version",
        ConditionExpression="attribute_exists(questions_version)",
    )
    updated = table.transition(
        final.request_key,
        to=final.status,
        allowed_from={final.status},
        set_fields={},
        expected={"questions_version": 0},
    )
    assert updated.status is final.status
    with pytest.raises(StaleWrite):
        table.transition(
            final.request_key, to=final.status, allowed_from={final.status}, expected={"questions_version": 1}
        )
