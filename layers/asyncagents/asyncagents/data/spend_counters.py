"""The spend caps' counters in the requests table: one item per period and scope, ``pk=SPEND#<period id>`` (a UTC
day ``2026-12-01`` or month ``2026-12``), ``sk=FORMATION`` or ``sk=KEY#<key id>``, holding ``model_calls``,
``tokens`` and ``micro_usd`` (totals) and ``held_model_calls``, ``held_tokens``, ``held_micro_usd`` (of which what
calls in flight reserved); forgotten by TTL weeks after the period ends. A period's scopes share a partition,
so one query lists every key's spending for the admins."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asyncagents.data.dynamo import conditional_write, serialize
from asyncagents.domain.errors import StaleWrite
from asyncagents.domain.spend import FORMATION, MEASURES, NOTHING, Counted, Counter, Spent

_KEY_SCOPE = "KEY#"


def _sort_key(scope: str) -> str:
    return "FORMATION" if scope == FORMATION else _KEY_SCOPE + scope


def _scope_of(sort_key: str) -> str:
    return FORMATION if sort_key == "FORMATION" else sort_key.removeprefix(_KEY_SCOPE)


def _key(period_id: str, scope: str) -> dict[str, Any]:
    return {"pk": {"S": f"SPEND#{period_id}"}, "sk": {"S": _sort_key(scope)}}


def _counted(item: dict[str, Any]) -> Counted:
    def measures(prefix: str) -> Spent:
        return Spent(*(int(item.get(prefix + measure, {}).get("N", "0")) for measure in MEASURES))

    return Counted(total=measures(""), held=measures("held_"))


def _values(amount: Spent, held: Spent) -> dict[str, Any]:
    values = {f":{measure}": serialize(getattr(amount, measure)) for measure in MEASURES}
    values.update({f":held_{measure}": serialize(getattr(held, measure)) for measure in MEASURES})
    return values


class SpendCounterItems:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def reserve(self, counter: Counter, amount: Spent, *, room: dict[str, int]) -> bool:
        values = _values(amount, amount)
        conditions = []
        for measure, most in room.items():
            values[f":room_{measure}"] = serialize(most)
            conditions.append(f"(attribute_not_exists({measure}) OR {measure} <= :room_{measure})")
        try:
            with conditional_write("the spend cap has no room"):
                self._client.update_item(
                    TableName=self._table,
                    Key=_key(counter.period_id, counter.scope),
                    UpdateExpression=self._adding() + " SET #ttl = :forget",
                    ConditionExpression=" AND ".join(conditions),  # a counter exists only for a cap
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues={**values, ":forget": serialize(counter.forget_at)},
                )
        except StaleWrite:
            return False
        return True

    def add(self, counter: Counter, amount: Spent, *, held: Spent = NOTHING) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=_key(counter.period_id, counter.scope),
            UpdateExpression=self._adding() + " SET #ttl = :forget",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={**_values(amount, held), ":forget": serialize(counter.forget_at)},
        )

    def read(self, counters: Iterable[Counter]) -> dict[tuple[str, str], Counted]:
        wanted = {(c.period_id, c.scope) for c in counters}
        if not wanted:
            return {}
        keys = [_key(period_id, scope) for period_id, scope in sorted(wanted)]
        found: dict[tuple[str, str], Counted] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = self._client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table, []):
                found[(item["pk"]["S"].removeprefix("SPEND#"), _scope_of(item["sk"]["S"]))] = _counted(item)
            request = response.get("UnprocessedKeys") or {}
        return found

    def scopes(self, period_id: str) -> dict[str, Counted]:
        found: dict[str, Counted] = {}
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"SPEND#{period_id}"}},
        }
        while True:
            response = self._client.query(**query)
            for item in response.get("Items", []):
                found[_scope_of(item["sk"]["S"])] = _counted(item)
            if "LastEvaluatedKey" not in response:
                return found
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    @staticmethod
    def _adding() -> str:
        names = [*MEASURES, *(f"held_{measure}" for measure in MEASURES)]
        return "ADD " + ", ".join(f"{name} :{name}" for name in names)
