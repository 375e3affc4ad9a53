"""Key listings, last use and audit records on moto's DynamoDB: the index queries, cursors and conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from asyncagents.data.api_keys import ApiKeys
from asyncagents.data.audit_log import AuditLog
from asyncagents.domain.audit import Audit
from asyncagents.domain.auth import KeyService
from asyncagents.domain.errors import InvalidCursor
from tests.stack_fixture import stack_fixture

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


class Clock:
    def __init__(self) -> None:
        # Later than the stack's own keys (made at the real time): the listing shows the newest first.
        self.now = datetime(2099, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_keys_list_newest_first_page_by_page_without_their_digests(stack):
    clock = Clock()
    keys = KeyService(ApiKeys(stack.client("dynamodb"), stack.table_name), clock=clock, cache_seconds=0)
    made = []
    for n in range(3):
        clock.now += timedelta(minutes=1)
        made.append(keys.create("client", label=f"listed {n}", user_id=f"user-{n}" if n == 1 else None))
    listed, cursor = keys.list(limit=2, cursor=None)
    ours = [key for key in listed if key.label.startswith("listed")]
    assert [key.key_id for key in ours] == [made[2].key_id, made[1].key_id] and cursor
    assert ours[1].user_id == "user-1" and ours[1].last_used_at is None
    rest, _ = keys.list(limit=100, cursor=cursor)
    assert made[0].key_id in {key.key_id for key in rest}
    items = stack.client("dynamodb").scan(TableName=stack.table_name)["Items"]
    assert all("secret_hash" not in item or item["pk"]["S"].startswith("KEYID#") for item in items)
    with pytest.raises(InvalidCursor):
        keys.list(limit=2, cursor="eyJwayI6eyJTIjoiUkVRIyJ9fQ")


def test_a_keys_last_use_is_recorded_to_the_hour(stack):
    clock = Clock()
    store = ApiKeys(stack.client("dynamodb"), stack.table_name)
    keys = KeyService(store, clock=clock, cache_seconds=0)
    created = keys.create("client", label="used")

    def last_used() -> str | None:
        return next(key.last_used_at for key in keys.list(limit=100, cursor=None)[0] if key.key_id == created.key_id)

    keys.authenticate(created.secret, kind="client")
    first = last_used()
    assert first is not None and first.startswith("2099-12-01T09:00")
    clock.now += timedelta(minutes=30)
    keys.authenticate(created.secret, kind="client")
    assert last_used() == first  # within the hour: not written again
    clock.now += timedelta(minutes=31)
    keys.authenticate(created.secret, kind="client")
    assert last_used().startswith("2099-12-01T10:01")


def test_a_key_made_before_listings_joins_the_listing_when_used(stack):
    store = ApiKeys(stack.client("dynamodb"), stack.table_name)
    keys = KeyService(store, cache_seconds=0)
    created = keys.create("client", label="older")
    client = stack.client("dynamodb")
    client.update_item(
        TableName=stack.table_name,
        Key={"pk": {"S": f"KEYID#{created.key_id}"}, "sk": {"S": "KEY"}},
        UpdateExpression="REMOVE #owner",
        ExpressionAttributeNames={"#owner": "owner"},
    )
    assert created.key_id not in {key.key_id for key in keys.list(limit=100, cursor=None)[0]}
    keys.authenticate(created.secret, kind="client")
    assert created.key_id in {key.key_id for key in keys.list(limit=100, cursor=None)[0]}


def test_audit_records_list_newest_first_and_are_forgotten_by_ttl(stack):
    clock = Clock()
    log = AuditLog(stack.client("dynamodb"), stack.table_name)
    audit = Audit(log, retention_days=400, clock=clock)
    for n in range(3):
        clock.now += timedelta(seconds=1)
        audit.record(key_id="key_admin", action=f"DELETE /v1/admin/keys/key_{n}", status=200, request_id=f"r{n}")
    page, cursor = audit.page(limit=2, cursor=None)
    assert [entry.action for entry in page] == ["DELETE /v1/admin/keys/key_2", "DELETE /v1/admin/keys/key_1"]
    rest, _ = audit.page(limit=2, cursor=cursor)
    assert rest[0].action == "DELETE /v1/admin/keys/key_0" and rest[0].status == 200 and rest[0].key_id == "key_admin"
    items = stack.client("dynamodb").scan(TableName=stack.table_name)["Items"]
    ttls = {int(item["ttl"]["N"]) for item in items if item["pk"]["S"].startswith("AUDIT#")}
    assert ttls and all(ttl > int(clock.now.timestamp()) + 399 * 86_400 for ttl in ttls)
