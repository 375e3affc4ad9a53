"""Webhooks end to end: the table stream, the queue, the sender, a real receiver on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import time
import uuid

import httpx
import pytest
from muxi import webhook as muxi_webhook

from asyncagents import runtime
from asyncagents.domain.auth import Principal
from asyncagents.domain.webhooks.events import webhook_message_for
from tests.stack_fixture import KEYS, stack_fixture, wait_for
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

WEBHOOK_SETTINGS = {
    "result_retention_seconds": 60,
    "sync_wait_seconds": 5,
    "webhook_retries": 3,
    "webhook_backoff_seconds": 0.5,  # SQS visibility is whole seconds: retries come about 1 s apart
    "webhook_max_backoff_seconds": 2,
    "webhook_timeout": 2,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory, {"async": WEBHOOK_SETTINGS})


@pytest.fixture
def http(stack):
    with httpx.Client(base_url=stack.url, timeout=30, headers={"X-Muxi-Client-Key": KEYS.client_key}) as client:
        yield client


def unique(path: str) -> str:
    """A receiver path of its own per test (the receiver counts deliveries per path)."""
    return f"{path}?t={uuid.uuid4().hex[:8]}"


def submit(http: httpx.Client, receiver: WebhookReceiver, path: str, message: str = "Research AI trends") -> dict:
    response = http.post("/v1/chat", json={"message": message, "webhook_url": receiver.url(path)})
    assert response.status_code == 202, response.text
    return response.json()


def webhook_state(http: httpx.Client, request_id: str) -> dict:
    return http.get(f"/v1/requests/{request_id}").json()["webhook"]


def test_completed_request_gets_one_signed_webhook_muxi_accepts(http, receiver, monkeypatch):
    path = unique("/ok")
    accepted = submit(http, receiver, path)
    assert accepted["delivery"] == "webhook"  # a webhook URL makes auto mode async and says so

    [delivery] = wait_for(lambda: receiver.to(path))
    assert delivery.verified
    body = json.loads(delivery.body)
    assert body["id"] == accepted["request_id"] and body["status"] == "completed"
    assert body["response"][0]["type"] == "text" and body["response"][0]["text"].startswith("[demo provider")
    assert body["formation_id"] == "test-formation" and body["user_id"] == "default"
    assert body["processing_mode"] == "async" and body["processing_time"] > 0
    assert delivery.headers["x-muxi-delivery-id"].startswith("whd_")
    assert muxi_webhook.verify_signature(delivery.body, delivery.headers["x-muxi-signature"], KEYS.webhook_secret)
    assert muxi_webhook.parse(delivery.body).request_id == accepted["request_id"]

    state = wait_for(lambda: (s := webhook_state(http, accepted["request_id"]))["status"] == "delivered" and s)
    assert state["attempts"] == 1 and state["event"] == "completed"
    time.sleep(1.0)
    assert len(receiver.to(path)) == 1  # exactly once when the receiver says 2xx


def test_endpoint_failing_twice_gets_retried_with_the_same_delivery_id(http, receiver):
    path = unique("/fail/2")
    accepted = submit(http, receiver, path)
    deliveries = wait_for(lambda: receiver.at_least(path, 3), timeout=30)
    assert len({d.headers["x-muxi-delivery-id"] for d in deliveries}) == 1
    assert all(d.verified for d in deliveries)
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(deliveries)]
    assert all(gap >= 0.5 for gap in gaps)  # backoff by visibility, not an immediate hammering
    state = wait_for(lambda: (s := webhook_state(http, accepted["request_id"]))["status"] == "delivered" and s)
    assert state["attempts"] == 3 and state["last_error"] == "HTTP 500"


def test_endpoint_that_always_fails_ends_in_the_dlq_and_can_be_redriven(http, receiver):
    path = unique("/status/503")
    accepted = submit(http, receiver, path)
    state = wait_for(lambda: (s := webhook_state(http, accepted["request_id"]))["status"] == "failed" and s, timeout=40)
    assert state["attempts"] == 4  # the first attempt and webhook_retries=3 retries
    assert "HTTP 503: gave up after 4 attempts" in state["last_error"]
    assert len(receiver.to(path)) == 4

    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    letters = http.get("/v1/admin/webhooks/dead-letters", headers=admin).json()
    mine = [item for item in letters["dead_letters"] if item["delivery_id"] == state["delivery_id"]]
    assert mine and mine[0]["reason"].startswith("HTTP 503")
    assert http.get("/v1/admin/webhooks/dead-letters").status_code == 401

    redriven = http.post("/v1/admin/webhooks/dead-letters/redrive", headers=admin)
    assert redriven.status_code == 202 and redriven.json()["moved"] >= 1
    wait_for(lambda: len(receiver.to(path)) >= 5, timeout=20)  # delivery tried again after the redrive


def test_client_errors_are_not_retried_and_redirects_not_followed(http, receiver):
    gone = unique("/status/410")
    redirect = unique("/redirect")
    first = submit(http, receiver, gone)
    second = submit(http, receiver, redirect)
    for request_id, reason in ((first["request_id"], "HTTP 410: not retried"), (second["request_id"], "redirects")):
        state = wait_for(lambda r=request_id: (s := webhook_state(http, r))["status"] == "failed" and s)
        assert reason in state["last_error"] and state["attempts"] == 1
    time.sleep(1.5)
    assert len(receiver.to(gone)) == 1 and len(receiver.to(redirect)) == 1


def test_hanging_endpoint_times_out_and_retry_after_is_honoured(http, receiver):
    hang = unique("/hang/5")
    accepted = submit(http, receiver, hang)
    state = wait_for(lambda: (s := webhook_state(http, accepted["request_id"]))["last_error"] and s, timeout=20)
    assert "timed out after 2s" in state["last_error"]

    throttled = unique("/retry-after/2")
    submit(http, receiver, throttled)
    deliveries = wait_for(lambda: receiver.at_least(throttled, 2), timeout=20)
    assert deliveries[1].received_at - deliveries[0].received_at >= 1.9


def test_failed_and_cancelled_requests_get_their_webhooks(http, receiver):
    failing = unique("/ok")
    failed = submit(http, receiver, failing, message="doomed [demo fail_permanent=true]")
    delivery = wait_for(lambda: receiver.to(failing))[0]
    body = json.loads(delivery.body)
    assert (body["id"], body["status"]) == (failed["request_id"], "failed")
    assert body["error"]["code"] == "provider_error" and body["response"] == []

    cancelling = unique("/ok")
    slow = submit(http, receiver, cancelling, message="a, b, c [demo step_seconds=1]")
    assert http.delete(f"/v1/requests/{slow['request_id']}").status_code == 200
    deliveries = wait_for(lambda: receiver.to(cancelling))
    assert {json.loads(d.body)["status"] for d in deliveries} == {"cancelled"}


def test_unsafe_webhook_urls_are_refused_at_submit(http):
    for url, reason in (
        ("http://169.254.169.254/latest/meta-data/", "refused"),
        ("http://10.0.0.1/hook", "private"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
        ("ftp://127.0.0.1/hook", "webhook_url"),
    ):
        response = http.post("/v1/chat", json={"message": "x", "webhook_url": url})
        assert response.status_code in {400, 422}, url
        assert reason in response.json()["message"], response.json()


def test_duplicate_events_carry_the_same_delivery_id_and_large_results_arrive_whole(http, receiver, stack):
    path = unique("/ok")
    big = "word " * 6000  # a 30 KB message; the demo repeats it in the answer
    accepted = submit(http, receiver, path, message=big.strip())
    [first] = wait_for(lambda: receiver.to(path))
    assert big.strip() in json.loads(first.body)["response"][0]["text"]

    # The stream is at-least-once: replay the same event and the receiver can tell it is a duplicate.
    record = runtime.current().request_service.get(_principal(), accepted["request_id"])
    message = webhook_message_for({"status": "processing"}, record.model_dump(mode="json"))
    assert message is not None
    runtime.current().webhook_queue.send([message])
    deliveries = wait_for(lambda: receiver.at_least(path, 2))
    assert deliveries[0].headers["x-muxi-delivery-id"] == deliveries[1].headers["x-muxi-delivery-id"]


def _principal() -> Principal:
    key = runtime.current().key_service.authenticate(KEYS.client_key, kind="client")
    return Principal(key_id=key.key_id, user_id="default")


def test_produced_files_arrive_as_file_items_with_presigned_urls(http, receiver):
    path = unique("/ok")
    submit(http, receiver, path, message="Summarise the news and write a report")
    delivery = wait_for(lambda: receiver.to(path))[0]
    items = json.loads(delivery.body)["response"]
    files = [item["file"] for item in items if item["type"] == "file"]
    assert [f["name"] for f in files] == ["report.md"]
    assert "X-Amz-Signature=" in files[0]["url"]
    assert muxi_webhook.parse(delivery.body).content[1].file["name"] == "report.md"


def test_a_question_arrives_by_webhook_and_the_answer_over_http_resumes_the_request(http, receiver):
    path = unique("/ok")
    accepted = submit(http, receiver, path, message="draft the plan, then refine it [demo ask=1]")
    request_id = accepted["request_id"]

    # The question comes by webhook, signed, in the shape MUXI's parser reads
    [asked] = wait_for(lambda: receiver.to(path))
    assert asked.verified
    body = json.loads(asked.body)
    assert body["status"] == "awaiting_clarification"
    event = muxi_webhook.parse(asked.body)
    assert event.clarification is not None
    assert event.clarification.question == "Demo question for step 2: which option should I use?"
    polled = http.get(f"/v1/requests/{request_id}").json()
    assert polled["status"] == "awaiting_clarification"
    assert polled["clarification"]["clarification_request_id"] == event.clarification.clarification_request_id

    # Bad answers are 4xx naming the field and change nothing
    for bad, status, field in (
        ({}, 422, "answer"),
        ({"answer": "   "}, 422, "answer"),
        ({"answer": "é" * 5000}, 422, "answer"),
        ({"answer": "x", "extra": 1}, 422, "extra"),
        ({"answer": "x", "clarification_request_id": "nope"}, 422, "clarification_request_id"),
    ):
        refused = http.post(f"/v1/requests/{request_id}/clarification", json=bad)
        assert refused.status_code == status, refused.text
        assert field in json.dumps(refused.json()), refused.text
    assert http.post("/v1/requests/req_unknown/clarification", json={"answer": "x"}).status_code == 404
    assert http.get(f"/v1/requests/{request_id}").json()["status"] == "awaiting_clarification"

    answered = http.post(
        f"/v1/requests/{request_id}/clarification",
        json={"answer": "the second option", "clarification_request_id": event.clarification.clarification_request_id},
    )
    assert answered.status_code == 202, answered.text
    assert answered.json()["status"] == "processing"
    assert answered.headers["location"] == f"/v1/requests/{request_id}"

    deliveries = wait_for(lambda: receiver.at_least(path, 2), timeout=30)
    done = json.loads(deliveries[1].body)
    assert done["status"] == "completed"
    assert "(the user answered: the second option)" in done["response"][0]["text"]
    assert len({d.headers["x-muxi-delivery-id"] for d in deliveries}) == 2
    final = http.get(f"/v1/requests/{request_id}").json()
    assert final["clarifications"][0]["answer"] == "the second option"
    again = http.post(f"/v1/requests/{request_id}/clarification", json={"answer": "again"})
    assert again.status_code == 409 and again.json()["details"]["status"] == "completed"


def test_a_key_with_its_own_webhook_secret_signs_only_its_requests_with_it(stack, http):
    # Given a client key made with a webhook secret of its own
    created = http.post(
        "/v1/admin/keys", json={"kind": "client", "webhook_secret": True}, headers={"X-Muxi-Admin-Key": KEYS.admin_key}
    ).json()
    own_secret = created["webhook_secret"]
    with WebhookReceiver(own_secret) as own_receiver:
        # When one of its requests ends, then the webhook verifies with its secret, as MUXI's helper checks it,
        # and not with the stack's
        path = unique("/ok")
        response = http.post(
            "/v1/chat",
            json={"message": "Research AI trends", "webhook_url": own_receiver.url(path)},
            headers={"X-Muxi-Client-Key": created["key"]},
        )
        assert response.status_code == 202, response.text
        [delivery] = wait_for(lambda: own_receiver.to(path))
        assert delivery.verified
        assert muxi_webhook.verify_signature(delivery.body, delivery.headers["x-muxi-signature"], own_secret)
        assert not muxi_webhook.verify_signature(
            delivery.body, delivery.headers["x-muxi-signature"], KEYS.webhook_secret
        )
    # And the listing says the key signs its own webhooks, never showing the secret
    listed = http.get("/v1/admin/keys", params={"limit": 100}, headers={"X-Muxi-Admin-Key": KEYS.admin_key})
    (mine,) = [key for key in listed.json()["keys"] if key["key_id"] == created["key_id"]]
    assert mine["signs_webhooks"] and own_secret not in listed.text
