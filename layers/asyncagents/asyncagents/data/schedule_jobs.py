"""Scheduled jobs and their runs in the requests table (key formats in ``table_keys``)."""

from __future__ import annotations

from typing import Any

from asyncagents.data.dynamo import conditional_write, from_item, to_item
from asyncagents.data.table_keys import JOB_SK_PREFIX, JOBS_PK, job_key, run_key, run_prefix
from asyncagents.domain.errors import Conflict, StaleWrite

_KEY_FIELDS = ("pk", "sk", "ttl")


def _plain(key: dict[str, Any]) -> dict[str, str]:
    return {name: value["S"] for name, value in key.items()}


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in from_item(item).items() if name not in _KEY_FIELDS}


class ScheduleJobs:
    """Implements ``JobStore``. ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create_job(self, job: dict[str, Any]) -> None:
        try:
            with conditional_write(f"job {job['id']} exists"):
                self._client.put_item(
                    TableName=self._table,
                    Item=to_item({**job, **_plain(job_key(job["id"]))}),
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except StaleWrite:
            raise Conflict(f"job {job['id']} already exists") from None

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(TableName=self._table, Key=job_key(job_id), ConsistentRead=True).get("Item")
        return _fields(item) if item else None

    def list_jobs(self) -> list[dict[str, Any]]:
        return self._query(JOB_SK_PREFIX, forward=True)

    def replace_job(self, job: dict[str, Any], *, expected_version: int) -> None:
        with conditional_write(f"job {job['id']} changed meanwhile"):
            self._client.put_item(
                TableName=self._table,
                Item=to_item({**job, **_plain(job_key(job["id"]))}),
                ConditionExpression="attribute_exists(pk) AND version = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )

    def delete_job(self, job_id: str) -> bool:
        response = self._client.delete_item(TableName=self._table, Key=job_key(job_id), ReturnValues="ALL_OLD")
        return bool(response.get("Attributes"))

    def record_run(self, job_id: str, run: dict[str, Any], *, ttl: int) -> bool:
        try:
            with conditional_write(f"the run of {job_id} at {run['scheduled_time']} is recorded"):
                self._client.put_item(
                    TableName=self._table,
                    Item=to_item({**run, **_plain(run_key(job_id, run["scheduled_time"])), "ttl": ttl}),
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except StaleWrite:
            return False
        return True

    def get_run(self, job_id: str, scheduled_time: str) -> dict[str, Any] | None:
        key = run_key(job_id, scheduled_time)
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        return _fields(item) if item else None

    def runs(self, job_id: str, *, limit: int) -> list[dict[str, Any]]:
        return self._query(run_prefix(job_id), forward=False, limit=limit)

    def _query(self, prefix: str, *, forward: bool, limit: int | None = None) -> list[dict[str, Any]]:
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": JOBS_PK}, ":prefix": {"S": prefix}},
            "ScanIndexForward": forward,
            "ConsistentRead": True,
        }
        found: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                arguments["Limit"] = limit - len(found)
            page = self._client.query(**arguments)
            found.extend(_fields(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page or (limit is not None and len(found) >= limit):
                return found
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
