"""A key's limits over real HTTP on the local stack: a burst past requests_per_second, a key with all its active
requests running, and sync requests past the cap on waits. The slots free through the table's stream."""

from __future__ import annotations

import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from asyncagents import runtime
from asyncagents.data.limit_counters import SlotPools
from asyncagents.domain.limits import SYNC_POOL, active_pool
from asyncagents.domain.records import request_key
from tests.stack_fixture import KEYS, TEST_FORMATION, stack_fixture, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # A rate low enough that the local stack, serving a few requests a second, is surely past it.
    limits = {"requests_per_second": 2, "max_active_requests": 2, "max_sync_waits": 1}
    # Results kept long enough for the burst's requests to be read one after another on a busy machine.
    retention = {**TEST_FORMATION["async"], "result_retention_seconds": 600}
    yield from stack_fixture(tmp_path_factory, {"limits": limits, "async": retention})


def headers(user: str) -> dict[str, str]:
    return {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user}


def test_a_burst_past_the_rate_gets_429s_with_retry_after_and_loses_nothing_accepted(stack):
    user = f"burst-{uuid.uuid4().hex[:6]}"
    answers: list[tuple[float, httpx.Response]] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            response = client.post("/v1/chat", json={"message": f"burst {index}", "async": True}, headers=headers(user))
        with lock:
            answers.append((time.time(), response))

    # Given a key allowed 2 new requests per second, when 8 clients send 40 at once
    started = time.time()
    with ThreadPoolExecutor(max_workers=8) as clients:
        list(clients.map(send, range(40)))
    ended = time.time()

    statuses = sorted({response.status_code for _, response in answers})
    assert statuses == [202, 429], statuses  # no 5xx, nothing else
    accepted = [response.json()["request_id"] for _, response in answers if response.status_code == 202]
    refused = [response for _, response in answers if response.status_code == 429]
    # Then no second saw more than 2 accepted (the burst spans these seconds)
    seconds = math.floor(ended) - math.floor(started) + 1
    assert 2 <= len(accepted) <= 2 * seconds, (len(accepted), seconds)
    # And each refusal says which limit, and when to try again (the key's 2 active requests refuse some too)
    retry_after = {"requests_per_second": "1", "max_active_requests": "5"}
    for response in refused:
        assert response.json()["code"] == "rate_limited"
        assert response.headers["Retry-After"] == retry_after[response.json()["details"]["limit"]]
    assert any(response.json()["details"]["limit"] == "requests_per_second" for response in refused)
    # And every accepted request completes (the machine may be busy: this is not about speed); none of the
    # refused ones exists
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        for request_id in accepted:
            wait_for(
                lambda r=request_id: (
                    client.get(f"/v1/requests/{r}", headers=headers(user)).json().get("status") == "completed"
                ),
                timeout=120,
            )
        listed = client.get("/v1/requests", params={"limit": 100}, headers=headers(user)).json()
    assert sorted(r["request_id"] for r in listed["requests"]) == sorted(accepted)


def test_a_key_with_all_its_requests_running_waits_for_one_to_end(stack):
    user = f"quota-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=stack.url, timeout=30) as client:

        def submit(message: str) -> httpx.Response:
            time.sleep(0.5)  # within the key's 2 requests per second: this test is about the active ones
            return client.post("/v1/chat", json={"message": message, "async": True}, headers=headers(user))

        # Given a key allowed 2 active requests, with 2 slow ones running
        running = [submit(f"slow {n} [demo step_seconds=30]").json()["request_id"] for n in range(2)]
        # When it submits a third, then the third is refused, saying why and when to try again
        refused = submit("third")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["details"]["limit"] == "max_active_requests"
        # And another user of another key is not held back (a fresh admin-made key has its own slots)
        other = client.post(
            "/v1/admin/keys", json={"kind": "client", "label": "other"}, headers={"X-Muxi-Admin-Key": KEYS.admin_key}
        ).json()["key"]
        assert (
            client.post(
                "/v1/chat",
                json={"message": "other key", "async": True},
                headers={"X-Muxi-Client-Key": other, "X-Muxi-User-Id": user},
            ).status_code
            == 202
        )
        # When one of the two is cancelled, then its slot frees through the table's stream (no accept looked for
        # leaked slots meanwhile), and a new request goes in
        assert client.delete(f"/v1/requests/{running[0]}", headers=headers(user)).status_code == 200
        pool, key_id = _client_key_pool(), _client_key_pool().removeprefix("active:")
        slot = request_key(key_id, user, running[0])
        wait_for(lambda: slot not in SlotPools(stack.client("dynamodb"), stack.table_name).members(pool), timeout=10)
        after = submit("after a cancel")
        assert after.status_code == 202, after.text
        for request_id in (running[1], after.json()["request_id"]):
            client.delete(f"/v1/requests/{request_id}", headers=headers(user))


def test_a_sync_request_past_the_cap_on_waits_answers_202_at_once(stack):
    user = f"sync-{uuid.uuid4().hex[:6]}"
    first: dict[str, httpx.Response] = {}

    def wait_in_sync() -> None:
        with httpx.Client(base_url=stack.url, timeout=40) as client:
            first["response"] = client.post(
                "/v1/chat", json={"message": "wait [demo step_seconds=3]", "async": False}, headers=headers(user)
            )

    # Given one sync wait allowed, and a sync request waiting in it (the key's requests of the test before
    # have let their slots go)
    waiting = threading.Thread(target=wait_in_sync)
    wait_for(lambda: _slots_free(stack) and _slots_free(stack, _client_key_pool()))
    time.sleep(1.1)  # and the key's requests of this second are all this test's

    waiting.start()
    wait_for(lambda: not _slots_free(stack), timeout=10)
    # When a second sync request comes, then it answers 202 at once, says why, and goes on in the background
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        began = time.monotonic()
        second = client.post("/v1/chat", json={"message": "second", "async": False}, headers=headers(user))
        assert second.status_code == 202 and time.monotonic() - began < 2.5, second.text
        request_id = second.json()["request_id"]
        body = client.get(f"/v1/requests/{request_id}", headers=headers(user)).json()
        assert (body["processing_mode"], body["mode_reason"]) == ("async", "busy")
        status = lambda: client.get(f"/v1/requests/{request_id}", headers=headers(user)).json()["status"]  # noqa: E731
        wait_for(lambda: status() == "completed")
    # And the first one got its answer in its wait, and let the wait go
    waiting.join(40)
    assert first["response"].status_code == 200 and first["response"].json()["status"] == "completed"
    assert _slots_free(stack)


def _slots_free(stack, pool: str = SYNC_POOL) -> bool:
    return not SlotPools(stack.client("dynamodb"), stack.table_name).members(pool)


def _client_key_pool() -> str:
    return active_pool(runtime.current().key_service.authenticate(KEYS.client_key, kind="client").key_id)


def test_a_key_made_with_limits_of_its_own_gets_them_over_http(stack):
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        # Given a key allowed 1 request a second (the formation says 2) and 5 active ones (the formation says 2)
        created = client.post(
            "/v1/admin/keys",
            json={"kind": "client", "label": "own limits", "requests_per_second": 1, "max_active_requests": 5},
            headers=admin,
        )
        assert created.status_code == 201 and created.json()["requests_per_second"] == 1, created.text
        own = {"X-Muxi-Client-Key": created.json()["key"], "X-Muxi-User-Id": f"own-{uuid.uuid4().hex[:6]}"}

        def submit() -> httpx.Response:
            return client.post("/v1/chat", json={"message": "slow [demo step_seconds=30]", "async": True}, headers=own)

        # When it sends two at once, then the second is refused by its own rate
        time.sleep(1 - time.time() % 1)  # at the start of a second: both land in it
        first, second = submit(), submit()
        assert first.status_code == 202 and second.status_code == 429
        assert second.json()["details"] == {"limit": "requests_per_second", "allowed": 1, "retry_after_seconds": 1}
        # And it may hold more active requests than the formation's two
        running = [first.json()["request_id"]]
        for _ in range(3):
            time.sleep(1.05)
            answer = submit()
            assert answer.status_code == 202, answer.text
            running.append(answer.json()["request_id"])
        listed = client.get("/v1/admin/keys", params={"limit": 100}, headers=admin).json()["keys"]
        (mine,) = [key for key in listed if key["key_id"] == created.json()["key_id"]]
        assert (mine["requests_per_second"], mine["max_active_requests"]) == (1, 5)
        for request_id in running:
            client.delete(f"/v1/requests/{request_id}", headers=own)
