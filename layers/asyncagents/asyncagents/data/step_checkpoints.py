"""Step checkpoints: the stored output of each finished step, beside its request in the requests table."""

from __future__ import annotations

from typing import Any

from asyncagents.data.dynamo import conditional_write, from_item, serialize, to_item
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
        while True:
            response = self._client.query(**arguments)
            for item in response.get("Items", []):
                fields = from_item(item)
                found.append({name: value for name, value in fields.items() if name not in {"pk", "sk", "ttl"}})
            if "LastEvaluatedKey" not in response:
                return found
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
