"""``llm.circuit_breaker.when_open: refuse`` over real HTTP on the local stack: while the model provider's breaker
is open a new request is refused with 503, its code and Retry-After, and nothing is recorded; once it closes the
same request is accepted."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from asyncagents import runtime
from tests.stack_fixture import KEYS, TEST_FORMATION, stack_fixture

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    breaker = {"failures": 1, "cool_down_seconds": 120, "when_open": "refuse"}
    yield from stack_fixture(tmp_path_factory, {"llm": {**TEST_FORMATION["llm"], "circuit_breaker": breaker}})


def test_a_new_request_is_refused_with_503_and_retry_after_while_the_breaker_is_open(stack):
    user = f"breaker-{uuid.uuid4().hex[:6]}"
    headers = {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user}
    body = {"message": "summarise the news", "async": True}
    item = runtime.current().model_breaker._store  # the breaker's shared item, as a failing call would leave it
    item.add_failure(threshold=1, now=time.time())
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as http:
        refused = http.post("/v1/chat", json=body)
        assert refused.status_code == 503
        assert refused.json()["code"] == "model_unavailable"
        assert 110 <= int(refused.headers["Retry-After"]) <= 120
        assert http.get("/v1/requests").json()["requests"] == []  # nothing accepted, nothing lost
        item.reset()  # a probe succeeded
        accepted = http.post("/v1/chat", json=body)
        assert accepted.status_code == 202, accepted.text
