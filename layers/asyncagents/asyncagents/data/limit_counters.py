"""The counters behind ``domain.limits``, in the requests table: a key's calls per second, and pools of slots."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import CONDITION_FAILED, error_code
from asyncagents.data.table_keys import rate_window_key, slot_pool_key


def _condition_failed(error: ClientError) -> bool:
    return error_code(error) == CONDITION_FAILED


class RateWindows:
    """One item per key and second, counted up by a conditional ``ADD``; TTL removes it afterwards."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def hit(self, key_id: str, window: int, *, limit: int, forget_after: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=rate_window_key(key_id, window),
                UpdateExpression="ADD calls :one SET #ttl = :forget",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ConditionExpression="attribute_not_exists(calls) OR calls < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":forget": {"N": str(forget_after)},
                },
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True


class SlotPools:
    """One item per pool holding its members in a string set: ``ADD`` and ``DELETE`` of a member are idempotent,
    and a write costs by the members held (about 30 per KB), not by the pool's limit."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def claim(self, pool: str, member: str, *, most: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=slot_pool_key(pool),
                UpdateExpression="ADD held :member",
                ConditionExpression="attribute_not_exists(held) OR size(held) < :most OR contains(held, :name)",
                ExpressionAttributeValues={
                    ":member": {"SS": [member]},
                    ":name": {"S": member},
                    ":most": {"N": str(most)},
                },
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def release(self, pool: str, member: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=slot_pool_key(pool),
                UpdateExpression="DELETE held :member",
                # Without it, a release in a pool never claimed from would write an empty item.
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":member": {"SS": [member]}},
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise

    def members(self, pool: str) -> set[str]:
        response = self._client.get_item(
            TableName=self._table, Key=slot_pool_key(pool), ConsistentRead=True, ProjectionExpression="held"
        )
        return set((response.get("Item") or {}).get("held", {}).get("SS", []))

    def start_check(self, pool: str, *, now: int, every: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=slot_pool_key(pool),
                UpdateExpression="SET checked_at = :now",
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(checked_at) OR checked_at <= :due)",
                ExpressionAttributeValues={":now": {"N": str(now)}, ":due": {"N": str(now - every)}},
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True
