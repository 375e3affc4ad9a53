"""The seed's monitoring figures end to end: a known mix of requests (completed, failed, cancelled, one still
running; webhooks delivered, delivered after a retry, dead-lettered) on the local stack, then the admin call and
the CLI report exactly that mix, read back from the metrics the functions emitted (EMF lines → CloudWatch)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import httpx
import pytest

from asyncagents import runtime
from asyncagents.domain.records import request_key
from tests.stack_fixture import KEYS, stack_fixture, wait_for

pytestmark = pytest.mark.e2e

WEBHOOKS = {
    "webhook_retries": 3,
    "webhook_backoff_seconds": 0.5,
    "webhook_max_backoff_seconds": 2,
    "webhook_timeout": 2,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # A stack of its own: the figures count everything this stack's functions emitted.
    yield from stack_fixture(tmp_path_factory, {"async": {"result_retention_seconds": 120, **WEBHOOKS}})


@pytest.fixture(scope="module")
def mix(stack, receiver):
    """Submit the mix and wait until it has settled; returns the request ids by what became of them."""
    user = f"ops-{uuid.uuid4().hex[:6]}"
    http = httpx.Client(base_url=stack.url, headers={"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user})
    path = f"/{uuid.uuid4().hex[:6]}"

    def submit(message: str, webhook: str | None = None) -> str:
        body = {"message": message, "async": True, **({"webhook_url": receiver.url(webhook)} if webhook else {})}
        response = http.post("/v1/chat", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["request_id"])

    ids = {
        "completed": [
            submit("Research AI trends, write a summary", f"/fail/1{path}-retried"),  # delivered on the 2nd try
            submit("Compare two vendors", f"{path}-ok"),
            submit("What time is it"),
        ],
        "failed": [
            submit("Broken work [demo fail_permanent=true]", f"/status/410{path}-gone"),  # dead-lettered at once
            submit("More broken work [demo fail_permanent=true]"),
        ],
        "cancelled": [submit("a, b, c, d [demo step_seconds=2]")],
        "running": [submit("a long one [demo step_seconds=60]")],
    }
    assert http.delete(f"/v1/requests/{ids['cancelled'][0]}").status_code in (200, 202)
    ended = [request_id for outcome in ("completed", "failed", "cancelled") for request_id in ids[outcome]]
    for request_id in ended:
        wait_for(lambda rid=request_id: http.get(f"/v1/requests/{rid}").json()["status"] in TERMINAL, timeout=60)
    wait_for(lambda: receiver.at_least(f"/fail/1{path}-retried", 2) and receiver.at_least(f"{path}-ok", 1), timeout=30)
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    wait_for(
        lambda: httpx.get(f"{stack.url}/v1/admin/webhooks/dead-letters", headers=admin).json()["count"], timeout=30
    )
    # every end has been measured by the notifier (it reads the stream a moment after the write)
    wait_for(lambda: len(stack.metrics.emitted("RequestDuration")) == len(ended), timeout=30)
    key_id = runtime.current().key_service.authenticate(KEYS.client_key, kind="client").key_id
    records = {rid: runtime.current().request_records.get(request_key(key_id, user, rid)) for rid in ended}
    http.close()
    return ids, records


TERMINAL = {"completed", "failed", "cancelled"}


def figures(stack, window: str = "15m") -> httpx.Response:
    return httpx.get(
        f"{stack.url}/v1/admin/metrics", params={"window": window}, headers={"X-Muxi-Admin-Key": KEYS.admin_key}
    )


def test_the_admin_call_reports_the_four_figures_of_the_mix(stack, mix):
    _, records = mix
    answer = figures(stack)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # Average duration: of every request that ended (cancelled too), as each record says
    durations = [record.duration_ms for record in records.values()]
    assert body["average_duration_seconds"] == pytest.approx(sum(durations) / len(durations) / 1000, abs=0.001)
    # Success rate: 3 completed of 5 that ended on their own (the cancelled one is neither)
    assert body["requests"] == {
        "accepted": 7,
        "completed": 3,
        "failed": 2,
        "timed_out": 0,
        "cancelled": 1,
        "throttled": 0,
    }
    assert body["success_rate"] == 0.6
    # Webhook delivery success: 2 delivered (one after a retry), 1 dead-lettered (410 is not retried)
    assert body["webhooks"] == {"attempts": 4, "delivered": 2, "retried": 1, "dead": 1}
    assert body["webhook_delivery_success_rate"] == pytest.approx(2 / 3, abs=0.0001)
    # Queue depth: the long request is still running; nothing waits on the webhook queue; one dead letter
    assert body["queue_depth"] == {
        "unfinished_requests": 1,
        "webhook_backlog": 0,
        "webhook_in_flight": 0,
        "webhook_dead_letters": 1,
    }


def test_the_cli_prints_the_same_figures(stack, mix):
    command = [sys.executable, "-m", "asyncagents.cli", "metrics", "--window", "15m", "--api", stack.url]
    environment = {"ASYNCAGENTS_ADMIN_KEY": KEYS.admin_key, "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment, check=False)
    assert done.returncode == 0, done.stderr
    lines = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in done.stdout.splitlines())
    assert lines["Success rate"].startswith("60.0 %  (3 completed, 2 failed, 0 timed out; 1 cancelled)")
    assert lines["Webhook delivery success"].startswith("66.7 %  (2 delivered, 1 dead-lettered; 1 retries)")
    assert lines["Queue depth"] == "1 requests unfinished, 0 webhooks waiting, 1 dead-lettered"
    average = figures(stack).json()["average_duration_seconds"]
    assert lines["Average duration"] == f"{average:.1f} s"
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=60, env=environment)
    printed = json.loads(as_json.stdout)
    assert {k: v for k, v in printed.items() if k not in ("start", "end")} == {
        k: v for k, v in figures(stack).json().items() if k not in ("start", "end")
    }


def test_each_request_emitted_its_measures_with_its_id_in_the_metadata_never_a_dimension(stack, mix):
    ids, _ = mix
    completed = stack.metrics.emitted("RequestsCompleted")
    assert sorted(meta["request_id"] for _, meta in completed) == sorted(ids["completed"])
    assert sorted(meta["request_id"] for _, meta in stack.metrics.emitted("RequestsFailed")) == sorted(ids["failed"])
    assert all(meta["Stack"] == "asyncagents-local" for _, meta in completed)
    for document in stack.metrics.documents:
        assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stack"]]
    # the model was called for each step (the demo provider reports its calls' latency too)
    assert len(stack.metrics.emitted("ModelCalls")) >= 3
    # the retried webhook: a retry then a delivery, for the same delivery id
    retried = [meta for _, meta in stack.metrics.emitted("WebhookRetried")]
    (retry,) = retried
    delivered = [meta for _, meta in stack.metrics.emitted("WebhookDelivered")]
    assert retry["delivery_id"] in {meta["delivery_id"] for meta in delivered}


def test_bad_windows_and_client_keys_are_refused(stack, mix):
    for window in ("15d", "0h", "soon"):
        answer = figures(stack, window)
        assert answer.status_code in (400, 422), answer.text
        assert "window" in answer.text
    refused = httpx.get(f"{stack.url}/v1/admin/metrics", headers={"X-Muxi-Client-Key": KEYS.client_key})
    assert refused.status_code in (401, 403)
