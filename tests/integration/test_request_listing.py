"""An owner's request list on moto's DynamoDB, from the keys-only list index: no write after a record's creation
changes what the index holds, the records are filtered as they are now, pages resume where they stopped, and the
records written before 0.3 (in the index that copied their status) follow the newer ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from asyncagents.data import request_index
from asyncagents.data.request_records import RequestRecords
from asyncagents.domain.errors import InvalidCursor, StoreContention
from asyncagents.domain.records import RequestRecord, request_key
from asyncagents.domain.statuses import Status
from tests.integration.requests_table import create_request, requests_table

pytestmark = pytest.mark.integration

TABLE = "request-listing"


@pytest.fixture
def table() -> Iterator[tuple[Any, RequestRecords]]:
    with requests_table(TABLE) as made:
        yield made


def created(records: RequestRecords, request_id: str, *, second: int, user: str = "user") -> str:
    at = f"2026-03-01T00:{second // 60:02d}:{second % 60:02d}.000000Z"
    return create_request(records, request_id, created_at=at, user=user)


def written_before_0_3(client: Any, key: str) -> None:
    """Make a record look as release 0.2 wrote it: partitioned by ``requester`` for the index that copied status."""
    client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"REQ#{key}"}, "sk": {"S": "REQUEST"}},
        UpdateExpression="SET requester = listed_for REMOVE listed_for",
    )


def ended(records: RequestRecords, key: str, status: Status = Status.COMPLETED, *, expires_at: float = 1e12) -> None:
    records.transition(key, to=status, allowed_from={Status.PENDING}, set_fields={"expires_at": expires_at})


def every_page(records: RequestRecords, *, limit: int, status: Status | None = None) -> list[list[RequestRecord]]:
    pages, cursor = [], None
    while True:
        page, cursor = records.list_for_owner(
            "key_1", "user", limit=limit, cursor=cursor, status=status, now_epoch=1000
        )
        pages.append(page)
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor never ends"


def ids(pages: list[list[RequestRecord]]) -> list[str]:
    return [record.request_id for page in pages for record in page]


def test_the_list_index_holds_keys_only_and_a_new_record_is_in_it_alone(table):
    client, records = table
    # Given a new request that then ends
    key = created(records, "req_new", second=1)
    ended(records, key)
    # Then the list index has its keys only (a status change writes nothing to it), the earlier index nothing
    listed = client.query(
        TableName=TABLE,
        IndexName="RequestKeysByOwner",
        KeyConditionExpression="listed_for = :o",
        ExpressionAttributeValues={":o": record_item(client, key)["listed_for"]},
    )["Items"]
    assert [set(item) for item in listed] == [{"pk", "sk", "listed_for", "created_at"}]
    earlier = client.scan(TableName=TABLE, IndexName="RequestsByOwner")["Items"]
    assert earlier == []


def record_item(client: Any, key: str) -> dict[str, Any]:
    return client.get_item(TableName=TABLE, Key={"pk": {"S": f"REQ#{key}"}, "sk": {"S": "REQUEST"}})["Item"]


def test_records_of_both_releases_are_listed_newest_first_page_by_page(table):
    client, records = table
    # Given requests written before 0.3 (older) and since, another user's, and an expired one of each release
    for n in range(5):
        written_before_0_3(client, created(records, f"old_{n}", second=n))
    ended(records, request_key("key_1", "user", "old_1"), expires_at=10)  # expired (TTL not swept yet)
    for n in range(5, 12):
        created(records, f"new_{n}", second=n)
    ended(records, request_key("key_1", "user", "new_7"), Status.FAILED, expires_at=10)
    created(records, "theirs", second=20, user="someone-else")
    expected = [f"new_{n}" for n in (11, 10, 9, 8, 6, 5)] + [f"old_{n}" for n in (4, 3, 2, 0)]
    # When the owner lists them in pages of every size
    for limit in (1, 2, 3, 4, 6, 10, 100):
        pages = every_page(records, limit=limit)
        # Then every live one is listed once, newest first, across the two indexes, and no page is over its limit
        assert ids(pages) == expected, limit
        assert all(len(page) <= limit for page in pages)
        assert all(pages[:-1]), f"an empty page before the last ({limit})"


def test_a_status_filter_reads_past_index_pages_for_the_few_that_match(table):
    client, records = table
    # Given 130 requests (more than an index page) of which a few completed, one of them written before 0.3
    completed = {3, 64, 117, 129}
    for n in range(130):
        key = created(records, f"req_{n:03d}", second=n)
        if n in completed:
            ended(records, key)
        if n == 3:
            written_before_0_3(client, key)
    # When the completed ones are listed, two a page
    pages = every_page(records, limit=2, status=Status.COMPLETED)
    # Then all four are found, newest first, and only they, each page full (an index page is read past, not returned)
    assert ids(pages) == [f"req_{n:03d}" for n in sorted(completed, reverse=True)]
    assert [len(page) for page in pages] == [2, 2]
    assert {r.status for page in pages for r in page} == {Status.COMPLETED}
    # And the pending ones are all there too
    assert len(ids(every_page(records, limit=50, status=Status.PENDING))) == 126


def test_a_cursor_is_the_owners_own_in_either_index(table):
    client, records = table
    written_before_0_3(client, created(records, "old_0", second=0))
    written_before_0_3(client, created(records, "old_1", second=1))
    created(records, "new_2", second=2)
    created(records, "new_3", second=3)
    _, in_new = records.list_for_owner("key_1", "user", limit=1, cursor=None, status=None, now_epoch=0)
    _, after_new = records.list_for_owner("key_1", "user", limit=2, cursor=None, status=None, now_epoch=0)
    page, in_old = records.list_for_owner("key_1", "user", limit=3, cursor=None, status=None, now_epoch=0)
    assert [r.request_id for r in page] == ["new_3", "new_2", "old_1"]
    for cursor in (in_new, after_new, in_old):
        assert cursor is not None
        with pytest.raises(InvalidCursor):
            records.list_for_owner("key_1", "someone-else", limit=2, cursor=cursor, status=None, now_epoch=0)
    rest, end = records.list_for_owner("key_1", "user", limit=5, cursor=in_old, status=None, now_epoch=0)
    assert ([r.request_id for r in rest], end) == (["old_0"], None)
    with pytest.raises(InvalidCursor):
        records.list_for_owner("key_1", "user", limit=2, cursor="e30", status=None, now_epoch=0)


def test_expired_records_not_swept_yet_cost_a_few_reads_not_one_each(table):
    client, records = table
    # Given one live request under 60 expired ones that TTL has not deleted yet
    created(records, "live", second=0)
    for n in range(1, 61):
        ended(records, created(records, f"expired_{n}", second=n), expires_at=10)

    class Counting:
        batches = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def batch_get_item(self, **arguments: Any) -> Any:
            Counting.batches += 1
            return client.batch_get_item(**arguments)

    # When a page of one is listed
    page, cursor = RequestRecords(Counting(), TABLE).list_for_owner(
        "key_1", "user", limit=1, cursor=None, status=None, now_epoch=1000
    )
    # Then the live one is found with a few BatchGetItems (parts grow once records are left out)
    assert ([r.request_id for r in page], cursor) == (["live"], None)
    assert Counting.batches <= 3, Counting.batches


def test_keys_left_unprocessed_are_asked_again_after_growing_pauses_until_the_reads_give_up(table, monkeypatch):
    client, records = table
    created(records, "only", second=0)
    pauses: list[float] = []
    monkeypatch.setattr(request_index, "_sleep", pauses.append)
    monkeypatch.setattr(request_index.random, "uniform", lambda low, high: high)  # the longest pause each time

    class Throttled:
        """DynamoDB under throttling: the first ``refusals`` BatchGetItems process none of their keys."""

        def __init__(self, refusals: int) -> None:
            self.refusals = refusals

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def batch_get_item(self, RequestItems: Any) -> Any:
            if self.refusals:
                self.refusals -= 1
                return {"Responses": {}, "UnprocessedKeys": RequestItems}
            return client.batch_get_item(RequestItems=RequestItems)

    def listed(refusals: int) -> list[str]:
        page, _ = RequestRecords(Throttled(refusals), TABLE).list_for_owner(
            "key_1", "user", limit=5, cursor=None, status=None, now_epoch=0
        )
        return [r.request_id for r in page]

    # When the first three reads are refused, the fourth reads the record, each after a pause twice as long at most
    assert listed(3) == ["only"]
    assert pauses == [0.05, 0.1, 0.2]
    # And when every read is refused, the list gives up (a 503 to send again), having paused between its reads
    pauses.clear()
    with pytest.raises(StoreContention):
        listed(99)
    assert pauses == [0.05, 0.1, 0.2]
