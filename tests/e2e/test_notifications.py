"""Completion notices people read, over real HTTP on the local stack: a Slack-style receiver on 127.0.0.1 gets one
message per request that ends as the formation says, delivered with the webhooks' retries, beside the signed
webhook, which keeps the request's webhook bookkeeping."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from asyncagents import runtime
from tests.stack_fixture import KEYS, TEST_FORMATION, stack_fixture, wait_for
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

SLACK = "/fail/1/slack"  # the first attempt gets a 500: the notice is retried like a webhook


@pytest.fixture(scope="module")
def stack(tmp_path_factory, receiver: WebhookReceiver):
    notifications = {
        "slack_webhook_url": receiver.url(SLACK),
        "email": "ops@example.com",
        "result_link": "https://console.example/requests/{request_id}",
    }
    backoff = {**TEST_FORMATION["async"], "webhook_backoff_seconds": 0.5, "webhook_max_backoff_seconds": 1}
    yield from stack_fixture(tmp_path_factory, {"notifications": notifications, "async": backoff})


def test_each_request_that_ends_is_a_slack_notice_beside_its_signed_webhook(stack, receiver):
    user = f"notices-{uuid.uuid4().hex[:6]}"
    headers = {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as http:
        done = http.post("/v1/chat", json={"message": "say hello", "async": True, "webhook_url": receiver.url("/ok")})
        failed = http.post("/v1/chat", json={"message": "broken [demo fail_permanent=true]", "async": True})
    done_id, failed_id = done.json()["request_id"], failed.json()["request_id"]

    def notices() -> dict[str, str]:
        texts = [json.loads(d.body)["text"] for d in receiver.to(SLACK) if 200 <= (d.status or 0) < 300]
        return {rid: t for t in texts for rid in (done_id, failed_id) if f"Request {rid} " in t}

    found = wait_for(lambda: len(notices()) == 2 and notices(), timeout=30)
    completed = found[done_id].splitlines()
    assert completed[0].startswith(f"Request {done_id} completed in ") and completed[0].endswith(" s")
    assert completed[1].startswith("> ")  # what it answered
    assert completed[-1] == f"<https://console.example/requests/{done_id}|Read the result>"
    assert found[failed_id].startswith(f"Request {failed_id} failed") and "provider_error" in found[failed_id]
    slack = receiver.to(SLACK)
    assert slack[0].status == 500 and len(slack) >= 3  # retried after the 500
    assert all("x-muxi-signature" not in d.headers for d in slack)  # Slack's message, not our signed event
    assert stack.metrics.emitted("NoticesSent")  # counted as notices, not as webhooks
    # The signed webhook went its own way, and the record's bookkeeping is its
    wait_for(lambda: [d for d in receiver.to("/ok") if d.verified], timeout=20)
    key = runtime.current().key_service.authenticate(KEYS.client_key, kind="client")
    from asyncagents.domain.auth import Principal

    record = wait_for(
        lambda: (
            (r := runtime.current().request_service.get(Principal(key_id=key.key_id, user_id=user), done_id))
            and r.webhook_status == "delivered"
            and r
        ),
        timeout=20,
    )
    assert record.webhook_delivery_id is not None and not record.webhook_delivery_id.endswith("-slack")


def test_each_request_that_ends_is_mailed_through_the_notice_topic(stack):
    from moto.sns.models import sns_backends

    user = f"mails-{uuid.uuid4().hex[:6]}"
    headers = {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as http:
        request_id = http.post("/v1/chat", json={"message": "say goodbye", "async": True}).json()["request_id"]
    topic = sns_backends["123456789012"]["us-east-1"].topics[stack.notice_topic_arn]

    def mailed() -> list[tuple[str, str]]:
        return [(subject, message) for _, message, subject, *_ in topic.sent_notifications if request_id in message]

    ((subject, message),) = wait_for(mailed, timeout=30)
    assert subject.startswith(f"Request {request_id} completed in ")
    assert message.endswith(f"Read the result: https://console.example/requests/{request_id}")
