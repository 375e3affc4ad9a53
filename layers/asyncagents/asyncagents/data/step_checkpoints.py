"""Step checkpoints: the stored output of each finished step, beside its request in the requests table."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import CONDITION_FAILED, conditional_write, error_code, from_item, serialize, to_item
from asyncagents.data.table_keys import request_pk, step_prefix, step_sk
from asyncagents.domain.errors import StaleWrite


class StepCheckpoints:
    """Outputs of finished steps, per lineage of a request. ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put_output(self, request_key: str, lineage: str, index: int, output: dict[str, Any], *, ttl: int) -> None:
        """Store a step's output. A later attempt replaces an earlier one's output (it may have the user's
        answer); an earlier attempt that finishes late never replaces a later one's."""
        item = {**output, "pk": request_pk(request_key), "sk": step_sk(lineage, index), "ttl": ttl}
        try:
            with conditional_write("a later attempt stored its output"):
                self._client.put_item(
                    TableName=self._table,
                    Item=to_item(item),
                    ConditionExpression="attribute_not_exists(pk) OR attempts < :attempt",
                    ExpressionAttributeValues={":attempt": serialize(int(output.get("attempts", 1)))},
                )
        except StaleWrite:
            pass  # a later attempt of this step stored its output: that one stands

    def outputs(self, request_key: str, lineage: str) -> list[dict[str, Any]]:
        """Every stored step output of one lineage of a request (its first execution and any redrive)."""
        return [
            {name: value for name, value in fields.items() if name not in {"pk", "sk", "ttl"}}
            for fields in self._items(request_key, lineage)
        ]

    def stored_indexes(self, request_key: str, lineage: str) -> set[int]:
        """The steps of one lineage whose output is stored (what a query returns of them: their index alone)."""
        return {int(str(item["sk"]).rsplit("#", 1)[1]) for item in self._items(request_key, lineage, only="sk")}

    def keep(self, request_key: str, lineage: str, *, until: int) -> int:
        """Keep every stored output of one lineage until ``until`` at least (epoch seconds; never shortened, and an
        output that is gone is not written again). Returns how many were lengthened: one write each."""
        kept = 0
        for item in self._items(request_key, lineage, only="sk, #ttl"):
            if int(item.get("ttl", 0)) >= until:
                continue
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": serialize(request_pk(request_key)), "sk": serialize(item["sk"])},
                    UpdateExpression="SET #ttl = :until",
                    ConditionExpression="attribute_exists(pk) AND #ttl < :until",
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues={":until": serialize(until)},
                )
                kept += 1
            except ClientError as error:
                if error_code(error) != CONDITION_FAILED:  # swept meanwhile, or kept longer by another redrive
                    raise
        return kept

    def _items(self, request_key: str, lineage: str, *, only: str | None = None) -> list[dict[str, Any]]:
        """The lineage's checkpoint items (``only``: a projection, with ``#ttl`` for the reserved word ``ttl``)."""
        found: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": serialize(request_pk(request_key)),
                ":prefix": serialize(step_prefix(lineage)),
            },
            "ConsistentRead": True,
        }
        if only is not None:
            arguments["ProjectionExpression"] = only
            if "#ttl" in only:
                arguments["ExpressionAttributeNames"] = {"#ttl": "ttl"}
        while True:
            response = self._client.query(**arguments)
            found.extend(from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
