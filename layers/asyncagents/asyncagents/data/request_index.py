"""The requests table's indexes, read: the unfinished requests (the sweeper's) and an owner's requests (the list
route's). Queries only, never a scan."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from asyncagents.data.cursors import decode_cursor, encode_cursor
from asyncagents.data.dynamo import serialize
from asyncagents.data.request_items import record_of, with_webhook_state
from asyncagents.data.table_keys import (
    OPEN_SHARDS,
    REQUEST_SK,
    REQUESTER,
    REQUESTER_INDEX,
    UNFINISHED_INDEX,
    WEBHOOK_STATE_SK,
    owner_of,
    request_key_of,
)
from asyncagents.domain.errors import StoreContention
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import Status

_LIST_PAGE_ITEMS = 100
_MAX_LIST_QUERIES = 5
_MAX_BATCH_ROUNDS = 4
_BATCH_KEYS = 100  # BatchGetItem's most


def unfinished(client: Any, table: str, *, created_before: str) -> Iterator[str]:
    """The keys of requests that are not terminal and were created before ``created_before`` (ISO), from
    the sparse Unfinished index: a query per shard, never a scan; the shards in a new order every time, so a
    sweep that runs out of time leaves a different part for the next."""
    for shard in random.sample(OPEN_SHARDS, len(OPEN_SHARDS)):
        arguments: dict[str, Any] = {
            "TableName": table,
            "IndexName": UNFINISHED_INDEX,
            "KeyConditionExpression": "open_shard = :shard AND created_at < :before",
            "ExpressionAttributeValues": {":shard": serialize(shard), ":before": serialize(created_before)},
        }
        while True:
            response = client.query(**arguments)
            for item in response.get("Items", []):
                yield request_key_of(str(item["pk"]["S"]))
            if "LastEvaluatedKey" not in response:
                break
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def count_unfinished(client: Any, table: str) -> int:
    """How many requests are not terminal (pending, processing or awaiting an answer): a count query per shard
    of the Unfinished index (keys only, so a count reads little)."""
    total = 0
    for shard in OPEN_SHARDS:
        arguments: dict[str, Any] = {
            "TableName": table,
            "IndexName": UNFINISHED_INDEX,
            "KeyConditionExpression": "open_shard = :shard",
            "ExpressionAttributeValues": {":shard": serialize(shard)},
            "Select": "COUNT",
        }
        while True:
            response = client.query(**arguments)
            total += int(response.get("Count", 0))
            if "LastEvaluatedKey" not in response:
                break
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return total


def owner_page(
    client: Any,
    table: str,
    key_id: str,
    user_id: str,
    *,
    limit: int,
    cursor: str | None,
    status: Status | None,
    now_epoch: float,
) -> tuple[list[RequestRecord], str | None]:
    """The owner's requests, newest first. Expired records and other statuses are filtered out.

    The index holds the keys, ``status`` and ``expires_at`` only (so that progress writes never copy the record
    into it): the page's records are then read whole, with one consistent ``BatchGetItem``. DynamoDB applies
    ``Limit`` before the filter, so this reads index pages until the page is full, the index is exhausted, or a
    few pages were read; the cursor resumes just after what was read.
    """
    owner = owner_of(key_id, user_id)
    names = {"#owner": REQUESTER, "#expires": "expires_at"}
    values: dict[str, Any] = {":owner": serialize(owner), ":now": serialize(now_epoch)}
    filters = ["(attribute_not_exists(#expires) OR #expires > :now)"]
    if status is not None:
        names["#status"] = "status"
        values[":status"] = serialize(status.value)
        filters.append("#status = :status")
    start_key = decode_cursor(cursor, owner) if cursor else None
    keys: list[dict[str, Any]] = []
    next_key: dict[str, Any] | None = None
    # Read whole index pages (filtered items cost a page, not a round trip each), at most a few per
    # call so a partition full of expired items cannot stall the API; the cursor then resumes there.
    for _ in range(_MAX_LIST_QUERIES):
        arguments: dict[str, Any] = {
            "TableName": table,
            "IndexName": REQUESTER_INDEX,
            "KeyConditionExpression": "#owner = :owner",
            "FilterExpression": " AND ".join(filters),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": _LIST_PAGE_ITEMS,
        }
        if start_key:
            arguments["ExclusiveStartKey"] = start_key
        response = client.query(**arguments)
        items = response.get("Items", [])
        for position, item in enumerate(items):
            keys.append(item)
            if len(keys) == limit:
                more = position < len(items) - 1 or "LastEvaluatedKey" in response
                records = _records(client, table, keys, status, now_epoch)
                last = _cursor_key(item)
                return records, encode_cursor(last) if more else None
        start_key = response.get("LastEvaluatedKey")
        if not start_key:
            return _records(client, table, keys, status, now_epoch), None
        next_key = start_key
    return _records(client, table, keys, status, now_epoch), encode_cursor(next_key) if next_key else None


def _cursor_key(item: dict[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in ("pk", "sk", REQUESTER, "created_at")}


def _records(
    client: Any, table: str, index_items: list[dict[str, Any]], status: Status | None, now_epoch: float
) -> list[RequestRecord]:
    """The records of ``index_items`` with their webhook bookkeeping (a page: up to 200 keys, BatchGetItems of
    100, their unprocessed keys asked again), in the index's order. The index lags the table a moment: a record
    filtered again as it is now, one that changed status, expired or was deleted meanwhile is left out."""
    wanted = [{"pk": item["pk"], "sk": item["sk"]} for item in index_items]
    # Each record's webhook bookkeeping too (its own item): two keys a record, at most 100 keys a call.
    keys = [key for item in wanted for key in (item, {"pk": item["pk"], "sk": {"S": WEBHOOK_STATE_SK}})]
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), _BATCH_KEYS):
        pending = keys[start : start + _BATCH_KEYS]
        for _ in range(_MAX_BATCH_ROUNDS):
            if not pending:
                break
            response = client.batch_get_item(RequestItems={table: {"Keys": pending, "ConsistentRead": True}})
            for item in response.get("Responses", {}).get(table, []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if pending:
            raise StoreContention("the list's records could not all be read; try again")
    records = [
        record_of(with_webhook_state(found[(pk, REQUEST_SK)], found.get((pk, WEBHOOK_STATE_SK))))
        for pk in (key["pk"]["S"] for key in wanted)
        if (pk, REQUEST_SK) in found
    ]
    return [
        r
        for r in records
        if (status is None or r.status is status) and (r.expires_at is None or r.expires_at > now_epoch)
    ]
