"""A long plan kept on its own item beside its request record.

A request record is billed by its whole size on every write, and a request is written about n + 3 times after it is
planned: a plan carried in the record is paid again by each of those writes (20 steps of 250-character
instructions: 5 KB and more, as many units more on each write). A plan over ``PLAN_INLINE_BYTES`` is written once, on
``pk=REQ#<request key>``, ``sk=REQUEST#PLAN#<token>`` (the token of the planner's write, ``planned_by``: an attempt
whose write lost never overwrites the plan that won), and the record keeps ``plan_apart``. Carried in the record, a
plan of P bytes costs about (n + 3) * P / 1 KB units; apart, a unit per KB once and a read: apart wins above about
256 bytes for one step, less for more; 512 leaves a margin for that read. Plans never change once stored, so a
container keeps the ones it read, or wrote. A plan item is forgotten (its ``ttl``) with the step checkpoints of the
run that made it; a redrive keeps it as long as the new run needs it (``PlanReader.keep``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from cachetools import LRUCache

from asyncagents.data.dynamo import CONDITION_FAILED, error_code, serialize
from asyncagents.data.table_keys import REQUEST_SK, request_pk

# Above this (the steps as JSON), the plan is kept apart: carried in the record by the n + 3 writes after the plan,
# it would cost more than the one write of its own item and a read (chosen by cost, as ``domain.messages`` did).
PLAN_INLINE_BYTES = 512
logger = logging.getLogger(__name__)
PLAN_APART = "plan_apart"  # the record's mark: its steps are on the plan item named by its ``planned_by``
_PLAN_SK_PREFIX = REQUEST_SK + "#PLAN#"  # sorts between the record and its webhook bookkeeping (``REQUEST#WEBHOOK``)


def plan_sk(token: str) -> str:
    return _PLAN_SK_PREFIX + token


def kept_apart(steps: list[dict[str, Any]]) -> bool:
    """Whether a plan of ``steps`` (as stored) is kept on its own item."""
    return len(json.dumps(steps, separators=(",", ":"))) > PLAN_INLINE_BYTES


def plan_item(request_key: str, token: str, steps: list[dict[str, Any]], *, ttl: int) -> dict[str, Any]:
    """The plan's own item, forgotten at ``ttl`` (the step checkpoints'; ``PlanReader.keep`` lengthens it)."""
    return {
        "pk": serialize(request_pk(request_key)),
        "sk": serialize(plan_sk(token)),
        "steps": serialize(steps),
        "ttl": serialize(ttl),
    }


def wants_plan(item: dict[str, Any]) -> str | None:
    """The token of the plan item a record item's steps are on, if they are kept apart."""
    if PLAN_APART not in item or "steps" in item:
        return None
    token = item.get("planned_by", {}).get("S")
    return str(token) if token else None


class PlanReader:
    """Reads the plans kept apart, once per container (``client``: boto3 DynamoDB). Thread-safe."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._plans: LRUCache[tuple[str, str], dict[str, Any]] = LRUCache(maxsize=64)
        self._lock = threading.Lock()

    def keep(self, request_key: str, token: str, *, until: int) -> None:
        """Keep the plan item of ``token`` (if the plan is kept apart) until ``until`` at least (epoch seconds)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": serialize(request_pk(request_key)), "sk": serialize(plan_sk(token))},
                UpdateExpression="SET #ttl = :until",
                ConditionExpression="attribute_exists(pk) AND #ttl < :until",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":until": serialize(until)},
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:  # no such item (the plan is in the record), or kept longer
                raise

    def written(self, plan: dict[str, Any]) -> None:
        """A plan item this container wrote (``plan_item``): the records it names read it from here."""
        with self._lock:
            self._plans[(str(plan["pk"]["S"]), str(plan["sk"]["S"]).removeprefix(_PLAN_SK_PREFIX))] = plan["steps"]

    def with_plan(
        self, item: dict[str, Any], found: Callable[[str], dict[str, Any] | None] | None = None
    ) -> dict[str, Any]:
        """A record item with its steps, read from the plan item if they are kept apart (``found``: the plan items a
        read returned already, by sort key). A plan item that is gone (past its ttl) leaves the steps out."""
        token = wants_plan(item)
        if token is None:
            return item
        pk = str(item["pk"]["S"])
        with self._lock:
            steps = self._plans.get((pk, token))
        if steps is None:
            if found is not None:  # the read that found the record read its plan item too, if there is one
                plan = found(plan_sk(token))
            else:
                plan = self._client.get_item(
                    TableName=self._table, Key={"pk": item["pk"], "sk": serialize(plan_sk(token))}, ConsistentRead=True
                ).get("Item")
            if plan is None:  # forgotten past its ttl, or deleted: the record is read without its steps
                logger.error("the plan %s of request %s is gone: its record is read without steps", token, pk)
                return item
            steps = plan["steps"]
            with self._lock:
                self._plans[(pk, token)] = steps
        return {**item, "steps": steps}
