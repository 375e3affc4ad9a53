"""The estimator's duration history: per formation and kind of request, how far off its estimates were."""

from __future__ import annotations

from typing import Any

from asyncagents.data.dynamo import from_item, serialize
from asyncagents.data.table_keys import history_key


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
