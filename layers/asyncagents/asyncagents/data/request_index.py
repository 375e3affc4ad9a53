"""The requests table's indexes, read: the unfinished requests (the sweeper's) and an owner's requests (the list
route's). Queries only, never a scan."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from asyncagents.data.cursors import decode_cursor, encode_cursor
from asyncagents.data.dynamo import serialize
from asyncagents.data.request_items import record_of, with_webhook_state
from asyncagents.data.request_plans import plan_sk, wants_plan
from asyncagents.data.table_keys import (
    LIST_INDEX,
    LISTED_FOR,
    OPEN_SHARDS,
    REQUEST_SK,
    REQUESTER,
    REQUESTER_INDEX,
    UNFINISHED_INDEX,
    WEBHOOK_STATE_SK,
    owner_of,
    request_key_of,
)
from asyncagents.domain.errors import InvalidCursor, StoreContention
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import Status

# The owner's requests: those written since 0.3 (newer), then those written before, in the index they had then.
_LISTS = ((LIST_INDEX, LISTED_FOR), (REQUESTER_INDEX, REQUESTER))
_LIST_PAGE_ITEMS = 100
# Records read at a time once some were left out, or under a status filter: one BatchGetItem with their bookkeeping.
_FILTERED_PART = 50
_MAX_LIST_QUERIES = 5
_MAX_BATCH_ROUNDS = 4
# Keys DynamoDB left unprocessed (throttled) are asked again after a pause that doubles, with full jitter, as its
# guidance says: asked again at once, they are refused again. At most about 0.35 s over the rounds.
_BATCH_BACKOFF_SECONDS = 0.05
_sleep = time.sleep
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

    The list index holds keys only (so no write after a record's creation touches it): the records are read whole,
    with consistent ``BatchGetItem``s, and filtered as they are now; a page of the index is read in parts of what the
    page still needs (50 at a time once a record was left out, or under a status filter), until the page is full,
    the index is exhausted, or a few index pages were read. The cursor resumes just after the last record returned
    or read. Records written before 0.3 follow, from the index they were written to (``_LISTS``).
    """
    if limit < 1:
        raise ValueError("a page lists one request at least")
    owner = owner_of(key_id, user_id)
    position, start_key = _resume(cursor, owner) if cursor else (0, None)
    records: list[RequestRecord] = []
    queries = 0
    left_out = False
    while position < len(_LISTS):
        index, attribute = _LISTS[position]
        arguments: dict[str, Any] = {
            "TableName": table,
            "IndexName": index,
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": attribute},
            "ExpressionAttributeValues": {":owner": serialize(owner)},
            "ScanIndexForward": False,
            "Limit": _LIST_PAGE_ITEMS,
        }
        if start_key:
            arguments["ExclusiveStartKey"] = start_key
        response = client.query(**arguments)
        queries += 1
        items = response.get("Items", [])
        next_key = response.get("LastEvaluatedKey")
        read = 0
        while read < len(items):
            # What the page still needs, unless records were left out already (expired ones, under a status filter):
            # then larger parts, so that a partition of left-out records takes a few round trips, not one each.
            wanted = limit - len(records)
            part = items[read : read + (max(wanted, _FILTERED_PART) if status is not None or left_out else wanted)]
            read += len(part)
            listed = _records(client, table, part, status, now_epoch)
            left_out = left_out or len(listed) < len(part)
            for item, record in listed:
                records.append(record)
                if len(records) == limit:
                    last = item is items[-1] and not next_key and not _listed_after(client, table, owner, position)
                    return records, None if last else encode_cursor(_cursor_key(item, attribute))
        if not next_key:
            # This index is exhausted: the next one is read from its start (at most once per index per call).
            position, start_key = position + 1, None
        elif queries >= _MAX_LIST_QUERIES:
            # A partition full of expired or filtered records cannot stall the API: the cursor resumes here.
            return records, encode_cursor(next_key)
        else:
            start_key = next_key
    return records, None


def _listed_after(client: Any, table: str, owner: str, position: int) -> bool:
    """Whether a list after ``_LISTS[position]`` holds anything of ``owner``'s (then a page that ends where its index
    ends has a next page)."""
    for index, attribute in _LISTS[position + 1 :]:
        response = client.query(
            TableName=table,
            IndexName=index,
            KeyConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": attribute},
            ExpressionAttributeValues={":owner": serialize(owner)},
            Limit=1,
        )
        if response.get("Items"):
            return True
    return False


def _resume(cursor: str, owner: str) -> tuple[int, dict[str, Any]]:
    """Which of ``_LISTS`` a cursor of ``owner``'s resumes in, and the key it resumes after."""
    for position, (_, attribute) in enumerate(_LISTS):
        try:
            return position, decode_cursor(cursor, owner, attribute=attribute)
        except InvalidCursor:
            continue
    return 0, decode_cursor(cursor, owner, attribute=LISTED_FOR)  # raises: no list's cursor


def _cursor_key(item: dict[str, Any], attribute: str) -> dict[str, Any]:
    return {name: item[name] for name in ("pk", "sk", attribute, "created_at")}


def _read(client: Any, table: str, keys: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The items of ``keys`` (consistent ``BatchGetItem``s of 100 keys, their unprocessed keys asked again), by
    ``(pk, sk)``; ``StoreContention`` when some stay unread."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), _BATCH_KEYS):
        pending = keys[start : start + _BATCH_KEYS]
        for round_ in range(_MAX_BATCH_ROUNDS):
            if not pending:
                break
            if round_:
                _sleep(random.uniform(0, _BATCH_BACKOFF_SECONDS * 2 ** (round_ - 1)))
            response = client.batch_get_item(RequestItems={table: {"Keys": pending, "ConsistentRead": True}})
            for item in response.get("Responses", {}).get(table, []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if pending:
            raise StoreContention("the list's records could not all be read; try again")
    return found


def _records(
    client: Any, table: str, index_items: list[dict[str, Any]], status: Status | None, now_epoch: float
) -> list[tuple[dict[str, Any], RequestRecord]]:
    """Those of ``index_items`` whose records are listed, each with its record and webhook bookkeeping (read with
    BatchGetItems of 100 keys, their unprocessed keys asked again), in the index's order. The records are filtered
    as they are now (``status``, not expired): one that changed status, expired or was deleted since is left out."""
    wanted = [{"pk": item["pk"], "sk": item["sk"]} for item in index_items]
    # Each record's webhook bookkeeping too (its own item): two keys a record, at most 100 keys a call.
    found = _read(client, table, [k for key in wanted for k in (key, {"pk": key["pk"], "sk": {"S": WEBHOOK_STATE_SK}})])
    listed = []
    for item in index_items:
        pk = item["pk"]["S"]
        record_item = found.get((pk, REQUEST_SK))
        if record_item is None:
            continue
        record = record_of(record_item)
        if (status is None or record.status is status) and (record.expires_at is None or record.expires_at > now_epoch):
            listed.append((item, with_webhook_state(record_item, found.get((pk, WEBHOOK_STATE_SK)))))
    # Then the plans kept on their own items (``data.request_plans``) of the records listed.
    plan_keys = [
        {"pk": record_item["pk"], "sk": serialize(plan_sk(token))}
        for _, record_item in listed
        if (token := wants_plan(record_item))
    ]
    plans = _read(client, table, plan_keys) if plan_keys else {}

    def with_plan(record_item: dict[str, Any]) -> dict[str, Any]:
        token = wants_plan(record_item)
        plan = plans.get((record_item["pk"]["S"], plan_sk(token))) if token else None
        return {**record_item, "steps": plan["steps"]} if plan is not None else record_item

    return [(item, record_of(with_plan(record_item))) for item, record_item in listed]
