"""Independent steps run in parallel up to max_concurrency, dependent steps after what they depend on,
and every output is kept."""

from __future__ import annotations

import uuid

import pytest

from asyncagents import runtime
from asyncagents.api.schemas import ChatRequest
from asyncagents.domain.auth import Principal
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import parse_iso
from tests.stack_fixture import TEST_FORMATION, stack_fixture, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workflow = {**TEST_FORMATION["overlord"]["workflow"], "max_concurrency": 2}
    yield from stack_fixture(tmp_path_factory, {"overlord": {"workflow": workflow}})


def test_parallel_steps_all_finish_and_are_all_in_the_answer(stack):
    key = runtime.current().key_service.authenticate(stack.keys.client_key, kind="client")
    principal = Principal(key_id=key.key_id, user_id=f"p-{uuid.uuid4().hex[:6]}")
    service = runtime.current().request_service
    ids = [
        service.submit(
            principal,
            ChatRequest.model_validate(
                {"message": "one, two, three, four, five [demo step_seconds=0.2]", "async": True}
            ).to_domain(),
        ).record
        for _ in range(3)
    ]
    for record in ids:
        final = wait_for(lambda r=record: (x := service.get(principal, r.request_id)).status.is_terminal and x)
        assert final.status is Status.COMPLETED
        assert (final.completed_steps, final.total_steps) == (5, 5)
        outputs = runtime.current().step_checkpoints.outputs(final.request_key, final.checkpoint_lineage)
        assert [o["index"] for o in outputs] == [0, 1, 2, 3, 4]
        assert all(f"Step {i} of 5" in final.result.text for i in range(1, 6))


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals that overlap at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, change in edges:
        running += change
        most = max(most, running)
    return most


def test_concurrency_is_bounded_and_dependent_steps_wait_for_theirs(stack):
    key = runtime.current().key_service.authenticate(stack.keys.client_key, kind="client")
    principal = Principal(key_id=key.key_id, user_id=f"c-{uuid.uuid4().hex[:6]}")
    service = runtime.current().request_service
    chat = ChatRequest.model_validate(
        {"message": "a, b, c, d, then e [demo step_seconds=0.3]", "async": True}
    ).to_domain()
    record = service.submit(principal, chat).record
    final = wait_for(lambda: (x := service.get(principal, record.request_id)).status.is_terminal and x)
    assert final.status is Status.COMPLETED
    assert [s.depends_on for s in final.steps] == [[], [], [], [], [3]]

    outputs = runtime.current().step_checkpoints.outputs(final.request_key, final.checkpoint_lineage)
    spans = {
        int(o["index"]): (parse_iso(o["started_at"]).timestamp(), parse_iso(o["finished_at"]).timestamp())
        for o in outputs
    }
    # The four independent steps ran two at a time (max_concurrency 2), never more
    assert _most_at_once([spans[i] for i in range(4)]) == 2
    # e depends on d: it started only after d finished (the run starts a step as soon as its dependencies are done,
    # not after a whole wave: it may start while c, which it does not need, still runs)
    assert spans[4][0] >= spans[3][1]
