"""A key's limits on fakes: requests per second, active requests (and slots that leaked), and the cap on sync
waits. Over HTTP on the local stack: tests/e2e/test_limits.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from asyncagents import streams
from asyncagents.api.errors import from_domain_error
from asyncagents.config import parse_formation
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import TooManyRequests
from asyncagents.domain.limits import SYNC_POOL, RequestLimits, active_pool
from asyncagents.domain.records import request_key
from asyncagents.domain.requests import NewRequest, RequestService
from asyncagents.domain.statuses import Status

from .fakes import (
    FakeTimer,
    InMemoryStore,
    ManualClock,
    MemorySlots,
    MemoryWindows,
    RecordingEngine,
    RecordingTelemetry,
)

ALICE = Principal(key_id="key_a", user_id="alice")
OTHER_KEY = Principal(key_id="key_b", user_id="alice")


class Stack:
    """A request service with limits, over fakes."""

    def __init__(self, limits: dict, **async_settings) -> None:
        self.clock = ManualClock(datetime(2026, 1, 1, 12, 0, 0, 200_000, tzinfo=UTC))
        self.store, self.engine = InMemoryStore(), RecordingEngine()
        self.windows, self.slots = MemoryWindows(), MemorySlots()
        formation = parse_formation({"limits": limits, "async": async_settings, "llm": {"demo": {"step_seconds": 0}}})
        self.limits = RequestLimits(formation.limits, self.windows, self.slots, self.store, clock=self.clock)
        self.timer = FakeTimer()
        self.telemetry = RecordingTelemetry()
        self.service = RequestService(
            self.store,
            self.engine,
            formation,
            clock=self.clock,
            sleep=self.timer.sleep,
            monotonic=self.timer.monotonic,
            limits=self.limits,
            telemetry=self.telemetry,
        )

    def submit(self, principal: Principal = ALICE, **fields):
        return self.service.submit(principal, NewRequest(**{"message": "work", "async_": True, **fields}))

    def end(self, principal: Principal, request_id: str) -> None:
        """Cancel a request, and free its slot the way the table's stream does."""
        record, _ = self.service.cancel(principal, request_id)
        old = {"pk": f"REQ#{record.request_key}", "sk": "REQUEST", "status": "processing", "key_id": record.key_id}
        ended = streams.ended_request(old, {**old, "status": record.status.value})
        assert ended == (principal.key_id, record.request_key)
        self.limits.release_active(*ended)


def refusal(call) -> TooManyRequests:
    with pytest.raises(TooManyRequests) as refused:
        call()
    return refused.value


def test_a_key_past_its_requests_per_second_is_refused_until_the_next_second():
    # Given a limit of 3 new requests per second
    stack = Stack({"requests_per_second": 3, "max_active_requests": 0})
    # When a key makes 3 in one second, then a 4th
    for _ in range(3):
        stack.submit()
    refused = refusal(stack.submit)
    # Then the 4th is refused for a second, naming the limit, and nothing of it is recorded or started
    assert refused.retry_after_seconds == 1
    assert refused.details == {"limit": "requests_per_second", "allowed": 3, "retry_after_seconds": 1}
    assert len(stack.store.items) == 3 and len(stack.engine.started) == 3
    # And another key is not held back by it
    stack.submit(OTHER_KEY)
    # And in the next second the key may go on
    stack.clock.advance(1)
    stack.submit()
    assert len(stack.store.items) == 5
    # And what was accepted and refused is measured
    assert stack.telemetry.values("RequestsAccepted") == [1] * 5 and stack.telemetry.values("RequestsThrottled") == [1]


def test_a_key_with_its_active_requests_all_running_is_refused_until_one_ends():
    # Given at most 2 active requests per key, and a key with 2 running
    stack = Stack({"requests_per_second": 0, "max_active_requests": 2})
    first = stack.submit(request_id="one").record
    stack.submit(request_id="two")
    # When it submits a third
    refused = refusal(lambda: stack.submit(request_id="three"))
    # Then it is refused, nothing is recorded, and the key's slots name its two requests
    assert refused.retry_after_seconds == 5 and refused.details["limit"] == "max_active_requests"
    assert len(stack.store.items) == 2
    assert stack.slots.members(active_pool("key_a")) == {first.request_key, request_key("key_a", "alice", "two")}
    # And a repeat of an accepted request is still answered (it holds its slot already)
    assert stack.submit(request_id="two").record.request_id == "two"
    # And once one ends, the third is accepted
    stack.end(ALICE, "one")
    assert stack.submit(request_id="three").record.status is Status.PENDING
    # (the refusal by the active-requests quota is measured as a throttled request too)
    assert stack.telemetry.values("RequestsThrottled") == [1]


def test_a_repeat_of_an_ended_request_does_not_take_a_slot():
    stack = Stack({"requests_per_second": 0, "max_active_requests": 1})
    stack.submit(request_id="done")
    stack.end(ALICE, "done")
    # When the ended request is submitted again
    repeat = stack.submit(request_id="done")
    # Then it is answered as it was, and the key's one slot is still free
    assert repeat.record.status is Status.CANCELLED
    assert stack.slots.members(active_pool("key_a")) == set()
    stack.submit(request_id="next")


def test_slots_that_leaked_are_found_when_the_pool_is_full_but_not_looked_for_at_every_call():
    # Given a key whose 2 slots are held by requests that no longer hold them: one never written (a crash
    # between the claim and the write), one ended without its release
    stack = Stack({"requests_per_second": 0, "max_active_requests": 2})
    stack.slots.claim(active_pool("key_a"), "f" * 32, most=2)
    ended = stack.submit(request_id="ended").record
    stack.service.cancel(ALICE, "ended")
    # When the key submits
    accepted = stack.submit(request_id="new").record
    # Then both leaked slots were freed, and only the new request holds one
    assert stack.slots.members(active_pool("key_a")) == {accepted.request_key}
    assert ended.request_key not in stack.slots.members(active_pool("key_a"))
    # And the pool is looked at again only after a while: a leak just after the look is refused
    stack.slots.claim(active_pool("key_a"), "e" * 32, most=2)
    refusal(lambda: stack.submit(request_id="soon"))
    stack.clock.advance(10)
    stack.submit(request_id="later")


def test_sync_requests_past_the_cap_on_waits_answer_at_once_and_go_on_in_the_background():
    # Given one sync wait allowed, held by another request until its deadline
    stack = Stack({"requests_per_second": 0, "max_active_requests": 0, "max_sync_waits": 1}, sync_wait_seconds=5)
    deadline = int(stack.clock().timestamp()) + 5
    stack.slots.claim(SYNC_POOL, f"{deadline}:{'a' * 32}", most=1)
    # When a sync request is submitted
    submission = stack.submit(async_=False, request_id="sync")
    # Then it does not wait: it answers 202 and says why, and its workflow was started
    assert not submission.finished and stack.timer.now == 0.0
    stored = stack.store.get(submission.record.request_key)
    assert (stored.processing_mode, stored.mode_reason) == ("async", "busy")
    assert len(stack.engine.started) == 1
    # And once the other wait's deadline has passed (it leaked), a sync request waits again, and lets go after
    stack.clock.advance(10)
    waited = stack.submit(async_=False, request_id="sync-2")
    assert stack.timer.now >= 5 and waited.record.mode_reason == "fallback"
    assert stack.slots.members(SYNC_POOL) == set()


def test_scheduled_runs_are_not_limited():
    stack = Stack({"requests_per_second": 1, "max_active_requests": 1})
    stack.submit()
    for n in range(3):
        stack.service.submit(ALICE, NewRequest(message="report", async_=True, request_id=f"s{n}"), limited=False)
    assert len(stack.store.items) == 4


def test_a_refusal_is_a_429_with_retry_after():
    response = from_domain_error(TooManyRequests("slow down", retry_after_seconds=5, details={"limit": "x"}))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert json.loads(str(response.body))["details"] == {"limit": "x", "retry_after_seconds": 5}


@pytest.mark.parametrize(
    ("old_status", "new_status", "ends"),
    [("processing", "completed", True), ("pending", "cancelled", True), ("completed", "completed", False)],
)
def test_the_stream_names_each_request_that_ended_once(old_status, new_status, ends):
    image = {"pk": "REQ#" + "a" * 32, "sk": "REQUEST", "key_id": "key_a"}
    ended = streams.ended_request({**image, "status": old_status}, {**image, "status": new_status})
    assert ended == (("key_a", "a" * 32) if ends else None)
    assert streams.ended_request(None, {**image, "sk": "STEP#x#0001", "status": "completed"}) is None


def test_a_request_that_could_not_be_recorded_gives_its_slot_back():
    stack = Stack({"requests_per_second": 0, "max_active_requests": 1})

    def broken(fields, *, now_epoch, remembered_until=None):
        raise RuntimeError("DynamoDB is down")

    stack.store.create = broken
    with pytest.raises(RuntimeError):
        stack.submit(request_id="lost")
    assert stack.slots.members(active_pool("key_a")) == set()


def test_a_keys_own_limits_replace_the_formations():
    from asyncagents.domain.auth import KeyLimits

    stack = Stack({"requests_per_second": 2, "max_active_requests": 1})
    generous = Principal(key_id="key_big", user_id="u", limits=KeyLimits(requests_per_second=5, max_active_requests=0))
    strict = Principal(key_id="key_small", user_id="u", limits=KeyLimits(requests_per_second=1))
    # A key allowed more: 5 a second, and no bound on its active requests (the formation says 2 and 1)
    for _ in range(5):
        stack.submit(generous)
    assert refusal(lambda: stack.submit(generous)).details["allowed"] == 5
    # A key allowed less: 1 a second, and the formation's one active request
    stack.submit(strict)
    assert refusal(lambda: stack.submit(strict)).details == {
        "limit": "requests_per_second",
        "allowed": 1,
        "retry_after_seconds": 1,
    }
    stack.clock.advance(1)
    assert refusal(lambda: stack.submit(strict)).details["limit"] == "max_active_requests"
