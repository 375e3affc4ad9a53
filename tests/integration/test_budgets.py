"""Budgets on moto: the request stops at the limit, keeps its finished steps, and is not retried."""

from __future__ import annotations

import pytest

from asyncagents import runtime
from asyncagents.api.schemas import ChatRequest
from asyncagents.domain.auth import Principal
from asyncagents.domain.statuses import Status
from tests.stack_fixture import TEST_FORMATION, stack_fixture, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workflow = {**TEST_FORMATION["overlord"]["workflow"], "budget": {"max_model_calls": 3}}
    yield from stack_fixture(tmp_path_factory, {"overlord": {"workflow": workflow}})


def test_a_request_over_its_model_call_budget_fails_as_budget_exceeded(stack):
    key = runtime.current().key_service.authenticate(stack.keys.client_key, kind="client")
    principal = Principal(key_id=key.key_id, user_id="budget")
    service = runtime.current().request_service
    # Plan + 4 steps + Finish would be 6 calls; the budget allows 3 (plan and two steps).
    record = service.submit(
        principal, ChatRequest.model_validate({"message": "a, b, c, d", "async": True}).to_domain()
    ).record
    final = wait_for(lambda: (r := service.get(principal, record.request_id)).status.is_terminal and r)
    assert final.status is Status.FAILED
    assert final.error is not None and final.error.type == "budget_exceeded" and not final.error.retryable
    assert "3 model calls made, the limit is 3" in final.error.message
    assert final.error.step == 2  # the third step is the one the budget stopped
    assert final.completed_steps == 2 and final.step_attempts["2"] == 1  # stopped, not retried
    assert len(runtime.current().step_checkpoints.outputs(final.request_key, final.checkpoint_lineage)) == 2
