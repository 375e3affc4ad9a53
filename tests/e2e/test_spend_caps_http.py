"""Spend caps over real HTTP on the local stack (the real state machine on moto, the template's IAM enforced): a
key's daily cap stops a run mid-way (``budget_exceeded`` naming the cap, finished steps kept), the next request is
refused with 429 naming the cap and when it resets, and admins see the spending in the API and the CLI."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from asyncagents import runtime
from asyncagents.domain.auth import Principal
from tests.stack_fixture import KEYS, TEST_FORMATION, stack_fixture, wait_for

pytestmark = pytest.mark.e2e

INPUT_PRICE, OUTPUT_PRICE = 1000.0, 2000.0  # dollars per million tokens: the demo's few tokens cost cents


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    spend = {
        "reserve_input_tokens": 100,
        "prices": {"demo-clauses-v1": {"input_per_million": INPUT_PRICE, "output_per_million": OUTPUT_PRICE}},
        "per_key": {"daily": {"model_calls": 3, "usd": 100}},
        "formation": {"monthly": {"usd": 1000}},
    }
    llm = {**TEST_FORMATION["llm"], "max_tokens": 200}
    yield from stack_fixture(tmp_path_factory, {"llm": llm, "spend": spend})


def test_a_daily_cap_stops_a_run_mid_way_and_refuses_the_next_request_with_429(stack):
    user = f"spend-{uuid.uuid4().hex[:6]}"
    headers = {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as http:
        # Given a key whose daily cap is three model calls, and a request that needs six (plan, four steps, answer)
        first = {"message": "a, b, c, d", "async": True, "request_id": f"capped-{user}"}
        accepted = http.post("/v1/chat", json=first)
        assert accepted.status_code == 202, accepted.text
        request_id = accepted.json()["request_id"]
        # When it runs: the plan and two steps are made, the third step's call finds no room
        final = wait_for(
            lambda: (r := http.get(f"/v1/requests/{request_id}").json())["status"] in {"failed", "completed"} and r,
            timeout=30,
        )
        assert final["status"] == "failed"
        assert final["error"]["type"] == "budget_exceeded" and final["error"]["retryable"] is False
        assert "API key" in final["error"]["message"]
        assert (
            "(spend.per_key.daily.model_calls: 3 calls; 3 calls spent; a call needs 1 call)"
            in final["error"]["message"]
        )
        assert final["completed_steps"] == 2  # the finished steps are kept
        # Then a new request is refused with 429, naming the cap and when it resets (midnight UTC)
        refused = http.post("/v1/chat", json={"message": "one more", "async": True})
        assert refused.status_code == 429, refused.text
        body = refused.json()
        assert body["code"] == "rate_limited"
        assert body["details"]["limit"] == "spend.per_key.daily.model_calls"
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
        assert body["details"]["resets_at"].startswith(tomorrow)
        midnight = datetime.fromisoformat(body["details"]["resets_at"].replace("Z", "+00:00"))
        assert abs(int(refused.headers["Retry-After"]) - (midnight - datetime.now(UTC)).total_seconds()) < 60
        # (a client repeating the request it already made gets that request, not a 429)
        repeated = http.post("/v1/chat", json=first)
        assert repeated.status_code in (200, 202) and repeated.json()["request_id"] == request_id, repeated.text
        listed = http.get("/v1/requests").json()["requests"]
        assert [r["request_id"] for r in listed] == [request_id]  # nothing recorded for the refused one

    # And admins see the key's counter full, and dollars that match the calls' tokens at the formation's prices
    key = runtime.current().key_service.authenticate(KEYS.client_key, kind="client")
    record = runtime.current().request_service.get(Principal(key_id=key.key_id, user_id=user), request_id)
    cost = (record.input_tokens_used * INPUT_PRICE + record.output_tokens_used * OUTPUT_PRICE) / 1_000_000
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    report = httpx.get(f"{stack.url}/v1/admin/spend", params={"key_id": key.key_id}, headers=admin).json()
    counters = {(c["scope"], c["period"]): c for c in report["counters"]}
    daily = counters[(key.key_id, "daily")]
    assert daily["spent"]["model_calls"] == 3 and daily["remaining"]["model_calls"] == 0
    assert daily["spent"]["usd"] == pytest.approx(cost) and cost > 0
    assert counters[("formation", "monthly")]["spent"]["usd"] == pytest.approx(cost)
    assert counters[("formation", "monthly")]["remaining"]["usd"] == pytest.approx(1000 - cost)
    refused_key = httpx.get(f"{stack.url}/v1/admin/spend", params={"key_id": "no such!"}, headers=admin)
    assert refused_key.status_code == 422 and "key_id" in refused_key.text
    # And the CLI prints the same counters
    command = [sys.executable, "-m", "asyncagents.cli", "spend", "--api", stack.url]
    environment = {"ASYNCAGENTS_ADMIN_KEY": KEYS.admin_key, "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [key.key_id, daily["period_id"], "model_calls", "3", "3", "0"] in [row[:6] for row in rows]
