"""Nothing stuck, nothing lost: each fault the local stack can inject, end to end over real HTTP with a real
webhook receiver. Every test ends with its request terminal and its webhook delivered or handed over, and
reports how long the repair took (``-s`` prints the figures)."""

from __future__ import annotations

import json
import statistics
import time
import uuid

import httpx
import pytest

from asyncagents import runtime
from asyncagents.data.table_keys import request_item_key
from asyncagents.domain.auth import Principal
from tests.stack_fixture import KEYS, stack_fixture, wait_for
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

# Short everything: retention 2 s, the TTL sweep every second, the sweeper every second with a 1 s grace,
# the workflow's own timeout 4 s, webhook retries about a second apart.
FORMATION = {
    "async": {
        "result_retention_seconds": 2,
        "sync_wait_seconds": 5,
        "webhook_backoff_seconds": 0.5,
        "webhook_max_backoff_seconds": 1,
        "webhook_timeout": 2,
    },
    "overlord": {
        "workflow": {
            "timeouts": {"task_timeout": 2, "workflow_timeout": 5},
            "retry": {"max_attempts": 3, "initial_delay": 1, "max_delay": 2, "backoff_factor": 2.0},
            "sweeper": {"grace_seconds": 1},
        }
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory, FORMATION, schedule_seconds=1.0, ttl_sweep_seconds=1.0)


@pytest.fixture(autouse=True)
def no_faults_after(stack):
    yield
    stack.faults.drop_status_events = False
    stack.faults.failing_functions.clear()
    stack.faults.kill_api_before_start = 0
    stack.faults.poison_completions.clear()


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def http(stack, user):
    headers = {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user}
    with httpx.Client(base_url=stack.url, timeout=30, headers=headers) as client:
        yield client


def submit(http: httpx.Client, receiver: WebhookReceiver, path: str, message: str, **headers: str) -> httpx.Response:
    body = {"message": message, "webhook_url": receiver.url(path), "async": True}
    return http.post("/v1/chat", json=body, headers=headers)


def record_of(user: str, request_id: str):
    key = runtime.current().key_service.authenticate(KEYS.client_key, kind="client")
    return runtime.current().request_service.get(Principal(key_id=key.key_id, user_id=user), request_id)


def final_webhook(receiver: WebhookReceiver, path: str, timeout: float = 30) -> dict:
    """The body of the delivery the receiver accepted (2xx), once it has one; its signature checked."""
    ok = wait_for(lambda: [d for d in receiver.to(path) if 200 <= d.status < 300], timeout=timeout)
    delivery = ok[-1]
    assert delivery.verified
    return json.loads(delivery.body)


def failed_invocations(stack) -> list[dict]:
    sqs = stack.client("sqs")
    url = stack.queue_urls["FailedInvocationsQueue"]
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def test_a_lost_status_event_is_reconciled_by_the_sweeper(stack, http, receiver, user):
    # Given EventBridge losing every execution status event
    stack.faults.drop_status_events = True
    path = f"/ok?lost={uuid.uuid4().hex[:6]}"
    # When a request's workflow times out (5 s) while a step hangs
    started = time.monotonic()
    request_id = submit(http, receiver, path, "slow [demo hang_seconds=20]").json()["request_id"]
    # Then the sweeper finds it unfinished, asks Step Functions, and records the timeout: not stuck
    failed = wait_for(lambda: (r := record_of(user, request_id)).status.is_terminal and r, timeout=30)
    recovered = time.monotonic() - started
    assert failed.status.value == "failed" and failed.error is not None and failed.error.type == "timeout"
    # (the sweeper may act before the status event is even emitted: it is dropped all the same)
    wait_for(lambda: any(getattr(p, "dropped", 0) for p in stack._pollers), timeout=15)
    assert final_webhook(receiver, path)["status"] == "failed"
    print(f"\nlost status event: failed as timeout {recovered:.1f} s after submit (workflow timeout 5 s)")


def test_a_failing_reconciler_hands_its_event_over_and_the_sweeper_repairs(stack, http, receiver, user):
    # Given a reconciler that fails every time
    stack.faults.failing_functions.add("ReconcileFunction")
    path = f"/ok?reconciler={uuid.uuid4().hex[:6]}"
    request_id = submit(http, receiver, path, "slow [demo hang_seconds=20]").json()["request_id"]
    # When the workflow times out, the event is retried twice, then goes to the on-failure queue
    failed = wait_for(lambda: (r := record_of(user, request_id)).status.is_terminal and r, timeout=30)
    assert failed.error is not None and failed.error.type == "timeout"
    handed = wait_for(
        lambda: [f for f in failed_invocations(stack) if f["requestPayload"]["detail"]["name"] == failed.execution_name]
    )
    assert handed[0]["requestContext"]["condition"] == "RetriesExhausted"
    assert handed[0]["requestContext"]["approximateInvokeCount"] == 3
    # Then the sweeper ended the request all the same, and its webhook went out
    assert final_webhook(receiver, path)["status"] == "failed"


def test_an_api_that_dies_between_the_write_and_the_start_loses_nothing(stack, http, receiver, user):
    # Given an API whose container dies after the request is written and before its workflow starts
    stack.faults.kill_api_before_start = 1
    path = f"/ok?killed={uuid.uuid4().hex[:6]}"
    key = f"idem-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    died = submit(http, receiver, path, "write a short note", **{"X-Muxi-Idempotency-Key": key})
    # When the client got nothing back but a 502 (no request id)
    assert died.status_code == 502
    # Then the sweeper starts the request's workflow, and it completes and is delivered
    listed = wait_for(lambda: http.get("/v1/requests", params={"status": "completed"}).json()["requests"], timeout=30)
    recovered = time.monotonic() - started
    [done] = listed
    assert done["result"]["text"]
    assert final_webhook(receiver, path)["request_id"] == done["request_id"]
    # And a client that repeats its POST with the same idempotency key gets the same request, not a second one
    again = submit(http, receiver, path, "write a short note", **{"X-Muxi-Idempotency-Key": key})
    assert again.status_code in {200, 202} and again.json()["request_id"] == done["request_id"]
    print(f"\nAPI died before the start: completed {recovered:.1f} s after submit")


def test_a_receiver_down_past_retention_still_gets_its_webhook(stack, http, receiver, user):
    # Given a receiver that is down (503) for 8 s, longer than the request is kept (2 s after it ends)
    down_until = time.time() + 8
    path = f"/down-until/{down_until}"
    request_id = submit(http, receiver, path, "summarise the plan").json()["request_id"]
    done = wait_for(lambda: (r := record_of(user, request_id)).status.is_terminal and r, timeout=20)
    assert done.status.value == "completed"
    # When retention passes and the TTL sweep deletes the record while deliveries still fail
    items = stack.client("dynamodb")
    wait_for(lambda: "Item" not in items.get_item(TableName=stack.table_name, Key=request_item_key(done.request_key)))
    assert time.time() < down_until and all(d.headers for d in receiver.to(path))  # still down, still trying
    # Then, once the receiver is back, the event is delivered whole from its own snapshot
    body = final_webhook(receiver, path)
    assert body["status"] == "completed" and body["request_id"] == request_id and body["response"][0]["text"]
    attempts = receiver.to(path)
    assert len({d.headers["x-muxi-delivery-id"] for d in attempts}) == 1 and len(attempts) >= 3
    print(f"\nreceiver down 8 s: delivered on attempt {len(attempts)}, after the record was gone")


def test_a_dead_letter_is_delivered_by_a_redrive_after_retention(stack, http, receiver, user):
    # Given a receiver that refuses (410, not retried) until it is fixed
    fixed_at = time.time() + 5
    path = f"/refuse-until/{fixed_at}"
    request_id = submit(http, receiver, path, "summarise the plan").json()["request_id"]
    wait_for(lambda: receiver.to(path), timeout=20)
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    letters = wait_for(
        lambda: [
            d
            for d in http.get("/v1/admin/webhooks/dead-letters", headers=admin).json()["dead_letters"]
            if d.get("request_key")
        ],
        timeout=20,
    )
    assert any("410" in (d.get("reason") or "") for d in letters)
    # When the request is long gone (retention 2 s) and the receiver fixed, an operator redrives
    wait_for(lambda: http.get(f"/v1/requests/{request_id}").status_code == 404, timeout=10)
    wait_for(lambda: time.time() > fixed_at, timeout=10)
    assert http.post("/v1/admin/webhooks/dead-letters/redrive", headers=admin).status_code == 202
    # Then the webhook arrives, whole
    body = final_webhook(receiver, path)
    assert body["status"] == "completed" and body["request_id"] == request_id


def test_a_poison_stream_record_is_handed_over_and_does_not_block_the_shard(stack, http, receiver, user):
    # Given a stream record every NotifyFunction invocation fails on (a request's completion)
    first = submit(http, receiver, f"/ok?poison={uuid.uuid4().hex[:6]}", "first thing")
    stack.faults.poison_completions.add(first.json()["request_id"])
    # When it has failed its bounded retries, it goes to the on-failure queue...
    wait_for(lambda: [f for f in failed_invocations(stack) if "DDBStreamBatchInfo" in f], timeout=40)
    # ...and the records behind it flow again: a later request's webhook is delivered
    path = f"/ok?after={uuid.uuid4().hex[:6]}"
    submit(http, receiver, path, "second thing")
    assert final_webhook(receiver, path)["status"] == "completed"


def test_a_slow_endpoint_never_delays_deliveries_to_healthy_ones(stack, http, receiver, user):
    tag = uuid.uuid4().hex[:6]

    def latency(path: str, submitted_at: float) -> float:
        final_webhook(receiver, path, timeout=15)
        return min(d.received_at for d in receiver.to(path)) - submitted_at

    # Given how long a webhook takes on this machine when every receiver is healthy (the request's work included)
    alone = f"/ok?alone={tag}"
    at = time.monotonic()
    submit(http, receiver, alone, "healthy receiver alone")
    baseline = latency(alone, at)
    # And receivers that hang past the sender's timeout (2 s), each of their webhooks retried for days
    slow = [f"/hang/6?slow={tag}{i}" for i in range(6)]
    for i, path in enumerate(slow):
        submit(http, receiver, path, f"slow receiver {i}")
    wait_for(lambda: all(receiver.to(path) for path in slow), timeout=15)  # being delivered, and retried
    # When healthy receivers' requests are made meanwhile
    latencies = []
    for i in range(6):
        path, at = f"/ok?healthy={tag}{i}", time.monotonic()
        submit(http, receiver, path, f"healthy receiver {i}")
        latencies.append(latency(path, at))
    # Then healthy receivers have their webhooks about as fast as alone, while the slow ones are still retried.
    # Held up by a hanging receiver, a delivery waits out its 2 s timeout: the typical one would be late by
    # that much, and the latest by all of it. The margins stay under 2 s and above this machine's noise (a
    # loaded 2-core run has put one delivery 1.3 s late); how fast is measured in bench/, not here.
    assert statistics.median(latencies) < baseline + 1.0, (baseline, latencies)
    assert max(latencies) < baseline + 1.9, (baseline, latencies)
    print(f"\nwebhook latency: {baseline:.1f} s alone, {max(latencies):.1f} s at most beside 6 hanging receivers")
