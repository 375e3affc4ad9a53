"""Triggers end to end over HTTP: a GitHub-style signed delivery (no client key) sent twice, MUXI's SDK
``fire_trigger``, curl-style MUXI bodies, and the trigger's result webhook to a real receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from pathlib import Path

import httpx
import pytest
from muxi import FormationClient

from tests.stack_fixture import KEYS, ROOT, assert_no_access_denied, start_stack, wait_for

pytestmark = pytest.mark.e2e

GITHUB_SECRET = "gh-e2e-secret"
SECRET_VARIABLE = "ASYNCAGENTS_TRIGGER_SECRET_GITHUB_ISSUE"
RESULTS_PATH = "/github-results"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, receiver):
    # The shipped GitHub definition, as is, plus where its results go.
    shipped = (ROOT / "triggers" / "github-issue.md").read_text()
    github = shipped.replace("---\n", f"---\nwebhook_url: {receiver.url(RESULTS_PATH)}\n", 1)
    support = (ROOT / "triggers" / "support-ticket.md").read_text()
    saved = os.environ.get(SECRET_VARIABLE)
    os.environ[SECRET_VARIABLE] = GITHUB_SECRET
    running = start_stack(
        Path(tmp_path_factory.mktemp("triggers")),
        {"async": {"result_retention_seconds": 60, "sync_wait_seconds": 10}},
        triggers={"github-issue": github, "support-ticket": support},
    )
    try:
        yield running
    finally:
        running.stop()
        if saved is None:
            os.environ.pop(SECRET_VARIABLE, None)
        else:
            os.environ[SECRET_VARIABLE] = saved
    assert_no_access_denied(running)


@pytest.fixture
def http(stack):
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


def github_delivery(payload: dict, *, delivery: str, event: str = "issues", secret: str = GITHUB_SECRET):
    """What GitHub sends: the JSON body, its HMAC-SHA256 with the hook's secret, the delivery's GUID."""
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/e2e",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature,
    }
    return body, headers


def issue_opened(title: str) -> dict:
    return {
        "action": "opened",
        "issue": {"number": 42, "title": title, "body": None, "user": {"login": "octocat"}},
        "repository": {"full_name": "octo-org/hello-world"},
        "sender": {"login": "octocat"},
    }


def test_a_signed_github_delivery_fires_once_and_its_redelivery_returns_the_same_request(stack, http, receiver):
    title = f"Login fails with SSO {uuid.uuid4().hex[:6]}"
    body, headers = github_delivery(issue_opened(title), delivery=str(uuid.uuid4()))
    executions_before = len(stack.executions())

    # Given GitHub's delivery, with no client key
    first = http.post("/v1/triggers/github-issue", content=body, headers=headers)
    # Then it is accepted at once, asynchronously
    assert first.status_code == 202, first.text
    accepted = first.json()
    assert accepted["status"] == "processing" and accepted["delivery"] == "webhook"
    assert first.headers["Location"] == f"/v1/requests/{accepted['request_id']}"

    # When GitHub redelivers it (same X-GitHub-Delivery)
    again = http.post("/v1/triggers/github-issue", content=body, headers=headers)
    # Then the answer names the same request, and no second execution started
    assert again.status_code in {200, 202}, again.text
    assert again.json()["request_id"] == accepted["request_id"]
    assert len(stack.executions()) == executions_before + 1

    # And the request runs through the whole lifecycle: its signed result reaches the trigger's webhook_url
    delivered = wait_for(
        lambda: [
            d
            for d in receiver.to(RESULTS_PATH)
            if json.loads(d.body).get("request_id") == accepted["request_id"]
            and json.loads(d.body)["status"] == "completed"
        ],
        timeout=30,
    )
    assert delivered[0].verified
    text = json.loads(delivered[0].body)["response"][0]["text"]
    assert title in text and "octo-org/hello-world" in text

    # And a delivery sent again once it finished learns its status, never its result (a replay reads nothing)
    late = http.post("/v1/triggers/github-issue", content=body, headers={**headers, "X-GitHub-Delivery": "replayed"})
    assert late.status_code == 200 and late.json()["status"] == "completed", late.text
    assert late.json()["request_id"] == accepted["request_id"] and "result" not in late.json()

    # And the request belongs to the trigger (no client key fired it): an admin reads it by its owner
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    owner = {"key_id": "trigger:github-issue", "user_id": "octocat"}
    read = http.get(f"/v1/admin/requests/{accepted['request_id']}", params=owner, headers=admin)
    assert read.status_code == 200, read.text
    assert read.json()["trigger"] == "github-issue" and read.json()["session_id"] == "octo-org/hello-world"
    assert http.delete(f"/v1/admin/requests/{accepted['request_id']}", params=owner, headers=admin).status_code == 409
    client = {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": "octocat"}
    assert http.get(f"/v1/requests/{accepted['request_id']}", headers=client).status_code == 404


def test_bad_or_missing_signatures_are_401s_naming_the_header(stack, http):
    executions_before = len(stack.executions())
    body, headers = github_delivery(issue_opened("forged"), delivery=str(uuid.uuid4()), secret="not-the-secret")
    forged = http.post("/v1/triggers/github-issue", content=body, headers=headers)
    assert forged.status_code == 401
    assert forged.json()["details"] == {"header": "X-Hub-Signature-256"}

    body, headers = github_delivery(issue_opened("tampered"), delivery=str(uuid.uuid4()))
    tampered = http.post("/v1/triggers/github-issue", content=body.replace(b"tampered", b"tampere!"), headers=headers)
    assert tampered.status_code == 401

    # A client key is no substitute for the provider's signature on this trigger
    keyed = http.post(
        "/v1/triggers/github-issue", json=issue_opened("keyed"), headers={"X-Muxi-Client-Key": KEYS.client_key}
    )
    assert keyed.status_code == 401 and "X-Hub-Signature-256" in keyed.json()["message"]
    assert len(stack.executions()) == executions_before


def test_github_ping_and_unwanted_actions_are_acknowledged_without_a_request(stack, http):
    executions_before = len(stack.executions())
    body, headers = github_delivery({"zen": "Design for failure.", "hook_id": 1}, delivery="p-1", event="ping")
    ping = http.post("/v1/triggers/github-issue", content=body, headers=headers)
    assert ping.status_code == 200 and ping.json() == {"status": "ok", "handshake": "github"}

    closed = {**issue_opened("closed one"), "action": "closed"}
    body, headers = github_delivery(closed, delivery=str(uuid.uuid4()))
    ignored = http.post("/v1/triggers/github-issue", content=body, headers=headers)
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    assert "$.action is 'closed'" in ignored.json()["reason"]
    assert len(stack.executions()) == executions_before


def test_muxi_sdk_lists_reads_and_fires_triggers(stack):
    user = f"sdk-{uuid.uuid4().hex[:8]}"
    ticket = {"customer": {"email": "ana@example.com"}, "subject": "Refund", "body": "I was charged twice."}
    with FormationClient(base_url=f"{stack.url}/v1", client_key=KEYS.client_key, timeout=30) as client:
        listed = client.get_triggers()
        assert listed["triggers"] == ["github-issue", "support-ticket"] and listed["count"] == 2
        described = client.get_trigger("support-ticket")
        assert described["data_fields"] == ["customer.email", "subject", "body"]
        assert described["authentication"] == "client_key"

        # async_mode=True: accepted at once; the request is the caller's to poll
        accepted = client.fire_trigger("support-ticket", ticket, async_mode=True, user_id=user)
        assert accepted["status"] == "processing"
        done = wait_for(
            lambda: (
                (s := client.get_request_status(accepted["request_id"], user_id=user))["status"] == "completed" and s
            )
        )
        assert "I was charged twice." in done["result"]["text"] and done["trigger"] == "support-ticket"

        # The SDK's default (async=false) waits like a sync chat
        finished = client.fire_trigger("support-ticket", ticket, user_id=user)
        assert finished["status"] == "completed" and "Refund" in finished["result"]["text"]


def test_curl_style_calls_and_their_errors(stack, http):
    key = {"X-Muxi-Client-Key": KEYS.client_key}
    # seeds/001: curl -d '{"data": {...}, "use_async": false}' (curl's form Content-Type)
    body = json.dumps(
        {"data": {"customer": {"email": "b@example.com"}, "subject": "Hi", "body": "x"}, "use_async": False}
    )
    waited = http.post(
        "/v1/triggers/support-ticket",
        content=body,
        headers={**key, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert waited.status_code == 200 and waited.json()["status"] == "completed", waited.text

    missing = http.post("/v1/triggers/support-ticket", json={"data": {"subject": "no customer"}}, headers=key)
    assert missing.status_code == 422
    assert missing.json()["details"]["field"] == "data.customer.email"

    assert http.post("/v1/triggers/nope", json={"data": {}}, headers=key).status_code == 404
    assert http.post("/v1/triggers/support-ticket", content=b"{nope", headers=key).status_code == 400
    assert http.post("/v1/triggers/support-ticket", json={"data": {}}).status_code == 401
    too_big = http.post("/v1/triggers/support-ticket", content=b"x" * (256 * 1024 + 1), headers=key)
    assert too_big.status_code == 413
    assert http.get("/v1/triggers").status_code == 401
