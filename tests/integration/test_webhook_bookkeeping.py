"""A webhook delivery's outcome lives on its own small item beside the request record, on moto's DynamoDB: the
record is not rewritten (it is billed by its whole size, and its stream would see a change), reads and lists show
the outcome, and a request created later under the same key never shows an earlier request's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from asyncagents.data.request_records import RequestRecords
from asyncagents.domain.statuses import Status
from tests.integration.requests_table import create_request, requests_table

pytestmark = pytest.mark.integration

TABLE = "webhook-bookkeeping"


@pytest.fixture
def table() -> Iterator[tuple[Any, RequestRecords]]:
    with requests_table(TABLE) as made:
        yield made


def created(records: RequestRecords, request_id: str, *, at: str, now_epoch: float = 0) -> str:
    return create_request(
        records,
        request_id,
        created_at=at,
        now_epoch=now_epoch,
        webhook_url="https://hooks.example/x",
        execution_name=f"exec-{at}",
    )


def record_item(client: Any, key: str) -> dict[str, Any]:
    return client.get_item(TableName=TABLE, Key={"pk": {"S": f"REQ#{key}"}, "sk": {"S": "REQUEST"}})["Item"]


def test_a_delivery_outcome_is_kept_apart_from_the_record_and_shown_with_it(table):
    client, records = table
    # Given a completed request
    key = created(records, "req_a", at="2026-01-01T00:00:00.000000Z")
    done = records.transition(
        key, to=Status.COMPLETED, allowed_from={Status.PENDING}, set_fields={"expires_at": 1_900_000_000.5}
    )
    before = record_item(client, key)
    # When its webhook's delivery is recorded
    records.set_webhook_state(
        done, {"webhook_status": "delivered", "webhook_attempts": 2, "webhook_event": "completed"}
    )
    # Then the record item is untouched, the outcome has its own item (forgotten with the record)
    assert record_item(client, key) == before
    state = client.get_item(TableName=TABLE, Key={"pk": {"S": f"REQ#{key}"}, "sk": {"S": "REQUEST#WEBHOOK"}})["Item"]
    assert state["ttl"] == {"N": "1900000001"} and state["of_created_at"] == {"S": done.created_at}
    # And reading the request, or listing its owner's, shows the outcome
    read = records.get(key, with_delivery=True)
    assert read is not None and (read.webhook_status, read.webhook_attempts, read.webhook_event) == (
        "delivered",
        2,
        "completed",
    )
    listed, _ = records.list_for_owner("key_1", "user", limit=10, cursor=None, status=None, now_epoch=0)
    assert [(r.request_id, r.webhook_status) for r in listed] == [("req_a", "delivered")]


def test_a_request_created_again_under_the_same_key_does_not_show_the_earlier_ones_delivery(table):
    _, records = table
    # Given an expired request whose webhook was delivered
    key = created(records, "req_b", at="2026-01-01T00:00:00.000000Z")
    old = records.transition(key, to=Status.COMPLETED, allowed_from={Status.PENDING}, set_fields={"expires_at": 10.0})
    records.set_webhook_state(old, {"webhook_status": "failed", "webhook_attempts": 5})
    # When a new request takes its key after its retention
    created(records, "req_b", at="2026-02-01T00:00:00.000000Z", now_epoch=20)
    # Then the new request shows no delivery yet, read or listed
    read = records.get(key, with_delivery=True)
    assert read is not None and read.created_at.startswith("2026-02") and read.webhook_status is None
    listed, _ = records.list_for_owner("key_1", "user", limit=10, cursor=None, status=None, now_epoch=20)
    assert [(r.request_id, r.webhook_status, r.webhook_attempts) for r in listed] == [("req_b", None, 0)]


def test_a_full_page_is_listed_with_each_records_delivery(table):
    _, records = table
    # Given more requests than one BatchGetItem can read with their bookkeeping (two keys each, 100 a call)
    for n in range(60):
        key = created(records, f"req_{n:03d}", at=f"2026-01-01T00:00:{n:02d}.000000Z")
        if n % 2:
            record = records.get(key)
            assert record is not None
            records.set_webhook_state(record, {"webhook_status": "retrying", "webhook_attempts": n})
    # When a page of 60 is listed
    listed, cursor = records.list_for_owner("key_1", "user", limit=60, cursor=None, status=None, now_epoch=0)
    # Then every record is there, newest first, each with its own delivery
    assert cursor is None and len(listed) == 60
    assert [r.request_id for r in listed] == [f"req_{n:03d}" for n in reversed(range(60))]
    assert all(r.webhook_attempts == (int(r.request_id[4:]) if int(r.request_id[4:]) % 2 else 0) for r in listed)


def test_a_new_requests_first_delivery_replaces_what_an_earlier_request_left(table):
    client, records = table
    # Given an expired request whose delivery failed (its item keeps an error and a ttl already past)
    key = created(records, "req_c", at="2026-01-01T00:00:00.000000Z")
    old = records.transition(key, to=Status.FAILED, allowed_from={Status.PENDING}, set_fields={"expires_at": 10.0})
    records.set_webhook_state(
        old, {"webhook_status": "failed", "webhook_attempts": 5, "webhook_last_error": "HTTP 500"}
    )
    # When a new request under the same key delivers its first event (not terminal: no ttl yet)
    created(records, "req_c", at="2026-02-01T00:00:00.000000Z", now_epoch=20)
    new = records.get(key)
    assert new is not None
    records.set_webhook_state(new, {"webhook_status": "delivered", "webhook_attempts": 1})
    # Then its bookkeeping is its own: no earlier error, no ttl of the earlier request (or any, until it ends)
    read = records.get(key, with_delivery=True)
    assert read is not None and (read.webhook_status, read.webhook_attempts, read.webhook_last_error) == (
        "delivered",
        1,
        None,
    )
    state = client.get_item(TableName=TABLE, Key={"pk": {"S": f"REQ#{key}"}, "sk": {"S": "REQUEST#WEBHOOK"}})["Item"]
    assert "ttl" not in state
    # And its later deliveries update that item (the last error stays beside a later outcome)
    records.set_webhook_state(
        new, {"webhook_status": "retrying", "webhook_attempts": 2, "webhook_last_error": "HTTP 502"}
    )
    records.set_webhook_state(new, {"webhook_status": "delivered", "webhook_attempts": 3})
    read = records.get(key, with_delivery=True)
    assert read is not None and (read.webhook_attempts, read.webhook_last_error) == (3, "HTTP 502")
