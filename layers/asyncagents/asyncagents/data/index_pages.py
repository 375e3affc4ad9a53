"""Pages of one partition of the ``ByOwner`` index, newest first: the API keys' and the audit records' listings."""

from __future__ import annotations

import re
from typing import Any

from asyncagents.data.cursors import decode_cursor, encode_cursor
from asyncagents.data.dynamo import from_item, serialize
from asyncagents.data.table_keys import OWNER_INDEX


def newest_first(
    client: Any, table: str, owner: str, *, limit: int, cursor: str | None, sk: str, pk_pattern: re.Pattern[str]
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` items of ``owner``'s partition (plain values), and the cursor of the next page."""
    arguments: dict[str, Any] = {
        "TableName": table,
        "IndexName": OWNER_INDEX,
        "KeyConditionExpression": "#owner = :owner",
        "ExpressionAttributeNames": {"#owner": "owner"},
        "ExpressionAttributeValues": {":owner": serialize(owner)},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if cursor:
        arguments["ExclusiveStartKey"] = decode_cursor(cursor, owner, sk=sk, pk_pattern=pk_pattern, attribute="owner")
    response = client.query(**arguments)
    last = response.get("LastEvaluatedKey")
    return [from_item(item) for item in response.get("Items", [])], encode_cursor(last) if last else None
