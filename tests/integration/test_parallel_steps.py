"""Steps run in parallel (Map MaxConcurrency > 1) and every output is kept."""

from __future__ import annotations

import uuid

import pytest

from asyncagents import runtime
from asyncagents.models import Status
from asyncagents.requests import Principal
from asyncagents.schemas import ChatRequest
from tests.stack_fixture import TEST_FORMATION, stack_fixture, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workflow = {**TEST_FORMATION["overlord"]["workflow"], "max_concurrency": 4}
    yield from stack_fixture(tmp_path_factory, {"overlord": {"workflow": workflow}})


def test_parallel_steps_all_finish_and_are_all_in_the_answer(stack):
    key = runtime.key_service().authenticate(stack.keys.client_key, kind="client")
    principal = Principal(key_id=key.key_id, user_id=f"p-{uuid.uuid4().hex[:6]}")
    service = runtime.request_service()
    ids = [
        service.submit(
            principal,
            ChatRequest.model_validate(
                {"message": "one, two, three, four, five [demo step_seconds=0.2]", "async": True}
            ),
        ).record
        for _ in range(3)
    ]
    for record in ids:
        final = wait_for(lambda r=record: (x := service.get(principal, r.request_id)).status.is_terminal and x)
        assert final.status is Status.COMPLETED
        assert (final.completed_steps, final.total_steps) == (5, 5)
        outputs = runtime.requests_table().step_outputs(final.pk, final.lineage)
        assert [o["index"] for o in outputs] == [0, 1, 2, 3, 4]
        assert all(f"Step {i} of 5" in final.result.text for i in range(1, 6))
