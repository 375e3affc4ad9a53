"""A question nobody answers: the wait's timeout on moto, with each configured default action."""

from __future__ import annotations

import pytest

from asyncagents import runtime
from asyncagents.api.schemas import ChatRequest
from asyncagents.domain.auth import Principal
from asyncagents.domain.statuses import Status
from tests.stack_fixture import TEST_FORMATION, new_principal, stack_fixture, wait_for

pytestmark = pytest.mark.integration

WAIT_SECONDS = 2


@pytest.fixture(scope="module", params=["fail", "continue"])
def stack(request, tmp_path_factory):
    workflow = {
        **TEST_FORMATION["overlord"]["workflow"],
        "clarification": {"timeout_seconds": WAIT_SECONDS, "on_timeout": request.param},
    }
    yield from stack_fixture(
        tmp_path_factory, {"overlord": {"workflow": workflow}, "async": {"result_retention_seconds": 120}}
    )


@pytest.fixture
def principal(stack) -> Principal:
    return new_principal(stack)


@pytest.mark.parametrize("asker", ["plan", "1"])
def test_an_unanswered_question_times_out_with_the_configured_action(stack, principal, asker):
    service = runtime.current().request_service
    chat = ChatRequest.model_validate(
        {"message": f"gather facts, then conclude [demo ask={asker}]", "async": True}
    ).to_domain()
    record = service.submit(principal, chat).record

    wait_for(lambda: service.get(principal, record.request_id).status is Status.AWAITING_CLARIFICATION)
    final = wait_for(
        lambda: (r := service.get(principal, record.request_id)).status.is_terminal and r, timeout=WAIT_SECONDS + 20
    )

    question = (
        "Demo question: what should the answer focus on?"
        if asker == "plan"
        else ("Demo question for step 2: which option should I use?")
    )
    if stack.formation.overlord.workflow.clarification.on_timeout == "fail":
        assert final.status is Status.FAILED
        assert final.error is not None
        assert final.error.model_dump(exclude_none=True) == {
            "type": "clarification_timeout",
            "message": f"no answer within {WAIT_SECONDS}s to: {question}",
            "retryable": False,
        }
    else:
        assert final.status is Status.COMPLETED, final.error
    # Either way the question is listed, unanswered
    assert [(c.question, c.answer, c.outcome) for c in final.clarifications] == [(question, None, "timed_out")]
    if final.status is Status.COMPLETED:
        if asker == "1":
            assert "Step 2 of 2 (Conclude): done. (no answer from the user)" in final.result.text
        assert final.waited_ms > 0 and final.awaiting_since is None  # the wait is not charged to the budget
