"""Which completion notices were sent (``pk=NOTICE#<delivery id>``), kept a week by TTL: longer than a notice is
ever redelivered (the webhook queue's retry window is three days at most)."""

from __future__ import annotations

import time
from typing import Any

from asyncagents.data.dynamo import serialize

_KEEP_SECONDS = 7 * 86_400


class SentNoticeMarks:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, delivery_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"NOTICE#{delivery_id}"}, "sk": {"S": "NOTICE"}}

    def was_sent(self, delivery_id: str) -> bool:
        found = self._client.get_item(TableName=self._table, Key=self._key(delivery_id), ConsistentRead=True)
        return "Item" in found

    def mark_sent(self, delivery_id: str) -> None:
        item = {**self._key(delivery_id), "ttl": serialize(int(time.time()) + _KEEP_SECONDS)}
        self._client.put_item(TableName=self._table, Item=item)
