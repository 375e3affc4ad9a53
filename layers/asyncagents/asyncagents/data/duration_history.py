"""The estimator's duration history: per formation and kind of request, how far off its estimates were."""

from __future__ import annotations

from typing import Any

from asyncagents.data.dynamo import from_item, serialize
from asyncagents.data.table_keys import HISTORY_KIND_PREFIX, history_key, history_partition

_DELETE_BATCH = 25  # BatchWriteItem's limit


class DurationHistory:
    """Aggregates in the requests table. ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get_history(self, formation_id: str, kind: str) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=history_key(formation_id, kind))
        item = response.get("Item")
        if not item:
            return None
        return {name: value for name, value in from_item(item).items() if name not in {"pk", "sk"}}

    def add_history(self, formation_id: str, kind: str, log_ratio: float) -> None:
        """Count one finished request of this kind. ADD is atomic and commutative: concurrent
        completions never lose a sample."""
        self._client.update_item(
            TableName=self._table,
            Key=history_key(formation_id, kind),
            UpdateExpression="ADD samples :one, sum_log_ratio :ratio, sum_sq_log_ratio :square",
            ExpressionAttributeValues={
                ":one": serialize(1),
                ":ratio": serialize(round(log_ratio, 6)),
                ":square": serialize(round(log_ratio * log_ratio, 6)),
            },
        )

    def learned(self, formation_id: str) -> list[dict[str, Any]]:
        """Every kind this formation has history for: ``{kind, samples, sum_log_ratio, sum_sq_log_ratio}``."""
        found = []
        for item in self._items(formation_id):
            fields = from_item(item)
            kind = str(fields.pop("sk"))[len(HISTORY_KIND_PREFIX) :]
            fields.pop("pk", None)
            found.append({**fields, "kind": kind})
        return found

    def forget(self, formation_id: str) -> int:
        """Delete what this formation learned; returns how many kinds were forgotten."""
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in self._items(formation_id, keys_only=True)]
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + _DELETE_BATCH]]
            pending: dict[str, Any] = {self._table: batch}
            while pending:
                pending = self._client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        return len(keys)

    def _items(self, formation_id: str, *, keys_only: bool = False) -> list[dict[str, Any]]:
        values = {":pk": history_partition(formation_id), ":kind": serialize(HISTORY_KIND_PREFIX)}
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :kind)",
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        if keys_only:
            arguments["ProjectionExpression"] = "pk, sk"
        items: list[dict[str, Any]] = []
        while True:
            response = self._client.query(**arguments)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
