"""Cancel raced against completion, hundreds of times, on moto's DynamoDB and the real state machine.

Every write to a request goes through the table's stream, so the stream is the witness: each change of
status must be an allowed transition, a terminal request must never change status, result or error,
a cancelled request must have no result, and a completed one must keep its result.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from asyncagents import runtime
from asyncagents.api.schemas import ChatRequest
from asyncagents.data.dynamo import from_item
from asyncagents.data.request_items import request_image
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import Conflict
from asyncagents.domain.statuses import ALLOWED_TRANSITIONS, Status
from tests.stack_fixture import stack_fixture, wait_for

pytestmark = pytest.mark.integration

REQUESTS = 200
WAVE = 20  # requests raced at once: enough overlap to race, not so many that moto's pace hides the race


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # The limits' slots are claimed and freed in the race too, high enough never to refuse.
    limits = {"requests_per_second": 1000, "max_active_requests": 1000}
    yield from stack_fixture(tmp_path_factory, {"async": {"result_retention_seconds": 600}, "limits": limits})


def chat(message: str) -> ChatRequest:
    return ChatRequest.model_validate({"message": message, "async": True}).to_domain()


def stream_changes(stack) -> list[tuple[dict, dict]]:
    """Every (old image, new image) of a request record the stream has seen, oldest first."""
    streams = stack.client("dynamodbstreams")
    arn = stack.client("dynamodb").describe_table(TableName=stack.table_name)["Table"]["LatestStreamArn"]
    changes = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in response["Records"]:
                images = record["dynamodb"]
                new = request_image(from_item(images.get("NewImage", {})))
                if new is not None:
                    changes.append((request_image(from_item(images.get("OldImage", {}))) or {}, new))
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
    return changes


def illegal(old: dict, new: dict) -> str | None:
    if not old:
        return None if new.get("status") == Status.PENDING.value else f"created as {new.get('status')}"
    before, after = Status(old["status"]), Status(new["status"])
    if before.is_terminal:
        for field in ("status", "result", "error", "ended_at"):
            if old.get(field) != new.get(field):
                return f"terminal {before.value} changed {field}"
        return None
    if after != before and after not in ALLOWED_TRANSITIONS[before]:
        return f"{before.value} -> {after.value}"
    if after is Status.CANCELLED and new.get("result"):
        return "cancelled with a result"
    return None


def test_cancel_racing_completion_never_makes_an_illegal_transition(stack):
    key = runtime.current().key_service.authenticate(stack.keys.client_key, kind="client")
    principal = Principal(key_id=key.key_id, user_id=f"race-{uuid.uuid4().hex[:6]}")
    service = runtime.current().request_service
    rng = random.Random(20261122)
    outcomes: dict[str, str] = {}
    lock = threading.Lock()

    # How long a request takes here when WAVE run at once, so that cancels land before, during and after
    # completion (moto is much slower under concurrency than AWS).
    started = time.monotonic()
    probes = [service.submit(principal, chat(f"probe {i}")).record for i in range(WAVE)]
    finished: list[float] = []
    for probe in probes:
        wait_for(lambda p=probe: service.get(principal, p.request_id).status.is_terminal, timeout=60)
        finished.append(time.monotonic() - started)
    typical = sorted(finished)[len(finished) // 2]

    def race(index: int) -> None:
        # A third cancels at once, a third once the request has ended, a third at a random moment around
        # the time requests take here: both outcomes are certain, and many cancels land mid-flight.
        with lock:
            delay = rng.uniform(0.0, 2.0 * typical)
            step = rng.choice([0.0, 0.02, 0.05])
        record = service.submit(principal, chat(f"race {index} [demo step_seconds={step}]")).record
        if index % 3 == 1:
            wait_for(lambda: service.get(principal, record.request_id).status.is_terminal, timeout=60)
        elif index % 3 == 2:
            time.sleep(delay)
        try:
            service.cancel(principal, record.request_id)
            outcome = "cancelled"
        except Conflict:
            outcome = "completed first"
        with lock:
            outcomes[record.request_id] = outcome

    # WAVE clients, each submitting and cancelling its share in turn: WAVE requests are always in flight.
    with ThreadPoolExecutor(max_workers=WAVE) as clients:
        list(clients.map(race, range(REQUESTS)))
    wait_for(lambda: not stack.executions("RUNNING"), timeout=120)

    finals = {request_id: service.get(principal, request_id) for request_id in outcomes}
    for request_id, outcome in outcomes.items():
        final = finals[request_id]
        if outcome == "cancelled":
            assert final.status is Status.CANCELLED and final.result is None, request_id
        else:
            assert final.status is Status.COMPLETED and final.result is not None, request_id
    # Both sides of the race were exercised, in good numbers.
    counts = {outcome: list(outcomes.values()).count(outcome) for outcome in ("cancelled", "completed first")}
    assert min(counts.values()) >= REQUESTS // 4, counts

    mine = {final.request_key for final in finals.values()}
    changes = [(old, new) for old, new in stream_changes(stack) if new["request_key"] in mine]
    violations = [f"{new['request_id']}: {why}" for old, new in changes if (why := illegal(old, new))]
    assert len(changes) >= REQUESTS * 2
    assert violations == [], violations[:10]


ANSWER_RACES = 40


def test_answer_racing_cancel_ends_every_wait_and_never_makes_an_illegal_transition(stack):
    """A user answers while another client cancels: whichever wins, the request ends in the state the
    winner says, and no execution is left waiting on a task token (moto's StopExecution ignores them)."""
    key = runtime.current().key_service.authenticate(stack.keys.client_key, kind="client")
    principal = Principal(key_id=key.key_id, user_id=f"ask-{uuid.uuid4().hex[:6]}")
    service = runtime.current().request_service
    rng = random.Random(7)
    outcomes: dict[str, tuple[bool, bool]] = {}
    lock = threading.Lock()

    def race(index: int) -> None:
        record = service.submit(principal, chat(f"question {index} [demo step_seconds=0.02 ask=0]")).record
        wait_for(lambda: service.get(principal, record.request_id).status is Status.AWAITING_CLARIFICATION, timeout=60)
        with lock:
            answer_delay, cancel_delay = rng.uniform(0, 0.05), rng.uniform(0, 0.05)
        # Every fourth cancel comes once the request ended, so the answer surely wins some races.
        cancel_late = index % 4 == 3
        results: dict[str, bool] = {}

        def answer() -> None:
            time.sleep(answer_delay)
            try:
                service.answer(principal, record.request_id, f"answer {index}")
                results["answered"] = True
            except Conflict:
                results["answered"] = False

        def cancel() -> None:
            time.sleep(cancel_delay)
            if cancel_late:
                wait_for(lambda: service.get(principal, record.request_id).status.is_terminal, timeout=60)
            try:
                service.cancel(principal, record.request_id)
                results["cancelled"] = True
            except Conflict:
                results["cancelled"] = False

        both = [threading.Thread(target=answer), threading.Thread(target=cancel)]
        for thread in both:
            thread.start()
        for thread in both:
            thread.join()
        with lock:
            outcomes[record.request_id] = (results["answered"], results["cancelled"])

    with ThreadPoolExecutor(max_workers=10) as clients:
        list(clients.map(race, range(ANSWER_RACES)))
    # Every execution ends long before the clarification timeout (300 s here): no wait is left behind.
    wait_for(lambda: not stack.executions("RUNNING"), timeout=60)

    finals = {request_id: service.get(principal, request_id) for request_id in outcomes}
    for request_id, (answered, cancelled) in outcomes.items():
        final = finals[request_id]
        assert answered or cancelled, request_id  # one of them always wins
        if cancelled:
            assert final.status is Status.CANCELLED and final.result is None, request_id
        else:
            assert final.status is Status.COMPLETED, request_id
            assert "(the user answered: answer" in final.result.text, request_id
    answered_only = sum(1 for a, c in outcomes.values() if a and not c)
    cancelled_while_waiting = sum(1 for a, c in outcomes.values() if c and not a)
    assert answered_only and cancelled_while_waiting, outcomes  # both sides won sometimes

    mine = {final.request_key for final in finals.values()}
    changes = [(old, new) for old, new in stream_changes(stack) if new["request_key"] in mine]
    violations = [f"{new['request_id']}: {why}" for old, new in changes if (why := illegal(old, new))]
    assert violations == [], violations[:10]
