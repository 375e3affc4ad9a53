"""Audit records of admin calls in the requests table (listed newest first through the ``ByOwner`` index)."""

from __future__ import annotations

from typing import Any

from asyncagents.data.dynamo import to_item
from asyncagents.data.table_keys import AUDIT_OWNER, AUDIT_PK_PATTERN, AUDIT_SK, audit_key


class AuditLog:
    """Writes and lists audit records. ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def append(self, entry: dict[str, Any], *, forget_at: int) -> None:
        """Write one record (its ``entry_id`` and ``at`` among ``entry``); the table's TTL removes it at
        ``forget_at`` (epoch seconds)."""
        key = {name: value["S"] for name, value in audit_key(str(entry["entry_id"])).items()}
        item = {**entry, **key, "owner": AUDIT_OWNER, "created_at": entry["at"], "ttl": forget_at}
        self._client.put_item(TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        from asyncagents.data.index_pages import newest_first

        items, next_cursor = newest_first(
            self._client, self._table, AUDIT_OWNER, limit=limit, cursor=cursor, sk=AUDIT_SK, pk_pattern=AUDIT_PK_PATTERN
        )
        hidden = {"pk", "sk", "owner", "created_at", "ttl"}
        return [{name: value for name, value in item.items() if name not in hidden} for item in items], next_cursor
