"""The model provider's circuit breaker in the requests table: one item per provider and model
(``pk=BREAKER#<provider>#<model>``), read before each model call and written only when a call fails or the first
call after failures succeeds."""

from __future__ import annotations

from typing import Any

from asyncagents.data.dynamo import conditional_write, serialize
from asyncagents.domain.breaker import BreakerState
from asyncagents.domain.errors import StaleWrite


class ModelBreakerItem:
    def __init__(self, client: Any, table_name: str, provider: str, model: str) -> None:
        self._client = client
        self._table = table_name
        self._key = {"pk": {"S": f"BREAKER#{provider}#{model}"}, "sk": {"S": "BREAKER"}}

    def read(self) -> BreakerState:
        item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True).get("Item", {})
        return BreakerState(
            failures=int(item.get("failures", {}).get("N", "0")),
            opened_at=float(item["opened_at"]["N"]) if "opened_at" in item else None,
            probe_until=float(item["probe_until"]["N"]) if "probe_until" in item else None,
        )

    def add_failure(self, *, threshold: int, now: float) -> bool:
        counted = self._client.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="ADD failures :one",
            ExpressionAttributeValues={":one": serialize(1)},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        if int(counted["failures"]["N"]) < threshold:
            return False
        # Opened by exactly one caller: the one that finds it closed, or finds its probe failed (a failure while
        # half open opens it again for a whole cool-down).
        try:
            with conditional_write("the breaker was opened by another call"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._key,
                    UpdateExpression="SET opened_at = :now REMOVE probe_until",
                    ConditionExpression="attribute_not_exists(opened_at) OR attribute_exists(probe_until)",
                    ExpressionAttributeValues={":now": serialize(now)},
                )
        except StaleWrite:
            return False
        return True

    def take_probe(self, *, now: float, lease_seconds: float) -> bool:
        try:
            with conditional_write("another call probes the model provider"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._key,
                    UpdateExpression="SET probe_until = :until",
                    ConditionExpression="attribute_exists(opened_at) AND "
                    "(attribute_not_exists(probe_until) OR probe_until < :now)",
                    ExpressionAttributeValues={":until": serialize(now + lease_seconds), ":now": serialize(now)},
                )
        except StaleWrite:
            return False
        return True

    def release_probe(self, *, lease_until: float) -> None:
        try:
            with conditional_write("another call holds the probe"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._key,
                    UpdateExpression="REMOVE probe_until",
                    ConditionExpression="probe_until = :mine",
                    ExpressionAttributeValues={":mine": serialize(lease_until)},
                )
        except StaleWrite:
            pass

    def reset(self) -> bool:
        try:
            with conditional_write("the breaker was already closed"):
                before = self._client.update_item(
                    TableName=self._table,
                    Key=self._key,
                    UpdateExpression="SET failures = :zero REMOVE opened_at, probe_until",
                    ConditionExpression="failures > :zero OR attribute_exists(opened_at)",
                    ExpressionAttributeValues={":zero": serialize(0)},
                    ReturnValues="ALL_OLD",
                )
        except StaleWrite:
            return False
        return "opened_at" in before.get("Attributes", {})
