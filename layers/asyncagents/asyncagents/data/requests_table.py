"""The requests table: request records, their step checkpoints and API keys (one DynamoDB table).

Layout (single table, ``pk`` + ``sk``):

- request: ``pk=REQ#<hash>``, ``sk=REQUEST``, with ``owner`` + ``created_at`` for the ``ByOwner`` index;
- step checkpoint: ``pk=REQ#<hash>``, ``sk=STEP#0003`` (the output of one finished step);
- API key: ``pk=KEY#<sha256 of the secret>``, ``sk=KEY``; and ``pk=KEYID#<key id>``, ``sk=KEY`` pointing
  back to it so a key can be revoked by its id.

Every status write is conditional on the current status; a lost condition raises ``StaleWrite``
carrying the record as it is now, read from the same call.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import error_code, from_item, is_condition_failure, serialize, to_item
from asyncagents.domain.errors import BadRequest, Conflict, StaleWrite, StoreContention
from asyncagents.domain.records import RequestRecord, Status, parse_iso

REQUEST_SK = "REQUEST"
_LIST_PAGE_ITEMS = 100
_MAX_LIST_QUERIES = 5
KEY_SK = "KEY"
OWNER_INDEX = "ByOwner"


def step_sk(lineage: str, index: int) -> str:
    """Step checkpoints belong to one lineage of a request (its first execution and its redrives), so a
    request id reused after its retention never sees the old request's steps."""
    return f"STEP#{lineage}#{index:04d}"


def _record(item: dict[str, Any]) -> RequestRecord:
    return RequestRecord.model_validate(from_item(item))


def _item_of(error: ClientError) -> dict[str, Any] | None:
    """The item DynamoDB returns with a failed condition (``ReturnValuesOnConditionCheckFailure``)."""
    response: dict[str, Any] = dict(error.response)
    item = response.get("Item")
    return item if isinstance(item, dict) else None


# A write that collided with a transaction on the same item (API key writes are transactions).
_CONTENTION_CODES = {"TransactionConflictException", "TransactionInProgressException"}


def _raise_contention(error: ClientError) -> None:
    if error_code(error) in _CONTENTION_CODES:
        raise StoreContention(f"DynamoDB write contention ({error_code(error)}); retry") from None


def _encode_cursor(last_key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, owner: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor: not a cursor this API returned", details={"field": "cursor"}) from None
    if not _valid_cursor_key(key, owner):
        raise BadRequest("cursor: not a cursor this API returned", details={"field": "cursor"})
    return dict(key)


def _valid_cursor_key(key: Any, owner: str) -> bool:
    if not isinstance(key, dict) or set(key) != {"pk", "sk", "owner", "created_at"}:
        return False
    if not all(
        isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str) for value in key.values()
    ):
        return False
    try:
        parse_iso(key["created_at"]["S"])
    except ValueError:
        return False
    return (
        key["owner"]["S"] == owner
        and key["sk"]["S"] == REQUEST_SK
        and re.fullmatch(r"REQ#[0-9a-f]{32}", key["pk"]["S"]) is not None
    )


class RequestsTable:
    """Access to request records and step checkpoints. ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- request records -------------------------------------------------------------------------

    def create(self, fields: dict[str, Any], *, now_epoch: float) -> RequestRecord | None:
        """Write a new request unless a live one has the same key.

        Returns ``None`` when written, or the existing record (read by the same call) when the key is
        taken. A record past its retention may be replaced: its result is no longer readable anyway.
        """
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item({**fields, "sk": REQUEST_SK}),
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": serialize(now_epoch)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            current = _item_of(error)
            if is_condition_failure(error) and current:
                return _record(current)
            raise
        return None

    def get(self, pk: str) -> RequestRecord | None:
        response = self._client.get_item(TableName=self._table, Key=self._key(pk), ConsistentRead=True)
        item = response.get("Item")
        return _record(item) if item else None

    def transition(
        self,
        pk: str,
        *,
        to: Status,
        allowed_from: Iterable[Status],
        set_fields: dict[str, Any] | None = None,
        remove_fields: Iterable[str] = (),
        generation: str | None = None,
        expected: dict[str, Any] | None = None,
        increments: dict[str, int] | None = None,
    ) -> RequestRecord:
        """Move a request to ``to`` if its current status is one of ``allowed_from`` (and, for workflow
        writers, if it is still the ``generation`` they work for, and its ``expected`` attributes still
        have those values, a missing one counting as 0); ``increments`` are added atomically. Returns the
        new record."""
        sources = sorted(status.value for status in allowed_from)
        values: dict[str, Any] = {f":from{i}": serialize(value) for i, value in enumerate(sources)}
        condition = f"#status IN ({', '.join(values)})"
        if generation is not None:
            condition += " AND execution_name = :generation"
            values[":generation"] = serialize(generation)
        names: dict[str, str] = {}
        for i, (name, value) in enumerate((expected or {}).items()):
            names[f"#e{i}"] = name
            values[f":e{i}"] = serialize(value)
            if value == 0 and not isinstance(value, bool):
                # A counter that was never written is 0 (items older than the counter lack it).
                condition += f" AND (attribute_not_exists(#e{i}) OR #e{i} = :e{i})"
            else:
                condition += f" AND #e{i} = :e{i}"
        return self._update(
            pk,
            set_fields={**(set_fields or {}), "status": to.value},
            remove_fields=remove_fields,
            condition=condition,
            values=values,
            names=names,
            increments=increments,
        )

    def set_fields(self, pk: str, fields: dict[str, Any], *, only_in: Iterable[Status] = ()) -> RequestRecord:
        """Update descriptive attributes of an existing request (never its status), optionally only
        while it is in one of the statuses ``only_in``. Returns the updated record."""
        statuses = sorted(status.value for status in only_in)
        values: dict[str, Any] = {f":in{i}": serialize(value) for i, value in enumerate(statuses)}
        condition = f"#status IN ({', '.join(values)})" if values else "attribute_exists(pk)"
        return self._update(pk, set_fields=fields, condition=condition, values=values)

    def _update(
        self,
        pk: str,
        *,
        set_fields: dict[str, Any],
        condition: str,
        values: dict[str, Any],
        remove_fields: Iterable[str] = (),
        names: dict[str, str] | None = None,
        increments: dict[str, int] | None = None,
    ) -> RequestRecord:
        names = {**(names or {}), **({"#status": "status"} if "#status" in condition else {})}
        clauses: list[str] = []
        assignments = []
        for i, (name, value) in enumerate(set_fields.items()):
            names[f"#s{i}"] = name
            values[f":s{i}"] = serialize(value)
            assignments.append(f"#s{i} = :s{i}")
        if assignments:
            clauses.append("SET " + ", ".join(assignments))
        removals = []
        for i, name in enumerate(remove_fields):
            names[f"#r{i}"] = name
            removals.append(f"#r{i}")
        if removals:
            clauses.append("REMOVE " + ", ".join(removals))
        additions = []
        for i, (name, amount) in enumerate((increments or {}).items()):
            names[f"#a{i}"] = name
            values[f":a{i}"] = serialize(amount)
            additions.append(f"#a{i} :a{i}")
        if additions:
            clauses.append("ADD " + ", ".join(additions))
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(pk),
            "UpdateExpression": " ".join(clauses),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if values:
            arguments["ExpressionAttributeValues"] = values
        try:
            response = self._client.update_item(**arguments)
        except ClientError as error:
            if is_condition_failure(error):
                item = _item_of(error)
                current = _record(item) if item else None
                raise StaleWrite("the request changed before this write", details={"current": current}) from None
            _raise_contention(error)
            raise
        return _record(response["Attributes"])

    def list_for_owner(
        self, owner: str, *, limit: int, cursor: str | None, status: Status | None, now_epoch: float
    ) -> tuple[list[RequestRecord], str | None]:
        """The owner's requests, newest first. Expired records and other statuses are filtered out.

        DynamoDB applies ``Limit`` before the filter, so this reads index pages until the page is full,
        the index is exhausted, or a few pages were read; the cursor resumes just after what was read.
        """
        names = {"#owner": "owner", "#expires": "expires_at"}
        values: dict[str, Any] = {":owner": serialize(owner), ":now": serialize(now_epoch)}
        filters = ["(attribute_not_exists(#expires) OR #expires > :now)"]
        if status is not None:
            names["#status"] = "status"
            values[":status"] = serialize(status.value)
            filters.append("#status = :status")
        start_key = _decode_cursor(cursor, owner) if cursor else None
        records: list[RequestRecord] = []
        next_key: dict[str, Any] | None = None
        # Read whole index pages (filtered items cost a page, not a round trip each), at most a few per
        # call so a partition full of expired items cannot stall the API; the cursor then resumes there.
        for _ in range(_MAX_LIST_QUERIES):
            arguments: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": OWNER_INDEX,
                "KeyConditionExpression": "#owner = :owner",
                "FilterExpression": " AND ".join(filters),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ScanIndexForward": False,
                "Limit": _LIST_PAGE_ITEMS,
            }
            if start_key:
                arguments["ExclusiveStartKey"] = start_key
            response = self._client.query(**arguments)
            items = response.get("Items", [])
            for position, item in enumerate(items):
                records.append(_record(item))
                if len(records) == limit:
                    more = position < len(items) - 1 or "LastEvaluatedKey" in response
                    return records, self._cursor_after(records[-1], owner) if more else None
            start_key = response.get("LastEvaluatedKey")
            if not start_key:
                return records, None
            next_key = start_key
        return records, _encode_cursor(next_key) if next_key else None

    @staticmethod
    def _cursor_after(record: RequestRecord, owner: str) -> str:
        return _encode_cursor(
            {
                "pk": {"S": record.pk},
                "sk": {"S": REQUEST_SK},
                "owner": {"S": owner},
                "created_at": {"S": record.created_at},
            }
        )

    # -- step checkpoints ------------------------------------------------------------------------

    def start_step(self, pk: str, index: int, *, generation: str, title: str, message: str) -> RequestRecord:
        """Mark step ``index`` as running and count the attempt, while the request is processing (or
        waiting for an answer to another step's question) and the step has not finished. Raises
        ``StaleWrite`` (carrying the current record) otherwise."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._key(pk),
                UpdateExpression="SET #current = :title, #message = :message ADD #attempts.#step :one",
                ConditionExpression=(
                    "#status IN (:processing, :awaiting) AND execution_name = :generation"
                    " AND NOT contains(#done, :index)"
                ),
                ExpressionAttributeNames={
                    "#current": "current_step",
                    "#message": "status_message",
                    "#attempts": "step_attempts",
                    "#step": str(index),
                    "#status": "status",
                    "#done": "done_steps",
                },
                ExpressionAttributeValues={
                    ":title": serialize(title),
                    ":message": serialize(message),
                    ":one": serialize(1),
                    ":processing": serialize(Status.PROCESSING.value),
                    ":awaiting": serialize(Status.AWAITING_CLARIFICATION.value),
                    ":index": serialize(index),
                    ":generation": serialize(generation),
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if is_condition_failure(error):
                item = _item_of(error)
                current = _record(item) if item else None
                raise StaleWrite("the step cannot start", details={"current": current}) from None
            _raise_contention(error)
            raise
        return _record(response["Attributes"])

    def finish_step(
        self,
        pk: str,
        index: int,
        *,
        generation: str,
        lineage: str,
        output: dict[str, Any],
        message: str,
        ttl: int,
        tokens: int = 0,
        calls: int = 1,
    ) -> None:
        """Store a step's output, then count it done (and its ``calls`` model calls and tokens) while the request is
        still processing and the step has no open question.

        The checkpoint after the model call. Two writes, not a transaction: transactions on the request
        item would collide when steps run in parallel (and moto copies the whole table for each one). A
        request cancelled meanwhile gets no progress and no result; the step's output may remain as an
        internal checkpoint until TTL removes it. Storing the output first means a step counted done
        always has its output.
        """
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item({**output, "pk": pk, "sk": step_sk(lineage, index), "ttl": ttl}),
                # A later attempt replaces an earlier one's output (it may have the user's answer); an
                # earlier attempt that finishes late never replaces a later one's.
                ConditionExpression="attribute_not_exists(pk) OR attempts < :attempt",
                ExpressionAttributeValues={":attempt": serialize(int(output.get("attempts", 1)))},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                _raise_contention(error)
                raise
            # A later attempt of this step stored its output: that one stands.
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(pk),
                UpdateExpression=(
                    "SET #message = :message"
                    " ADD #done :index_set, #completed :one, model_calls :calls, tokens_used :tokens"
                ),
                ConditionExpression=(
                    "#status IN (:processing, :awaiting) AND execution_name = :generation"
                    " AND NOT contains(#done, :index)"
                    # A step that asked the user is done only when it runs again with the answer (an
                    # earlier attempt of it that outlived its timeout cannot finish it meanwhile).
                    " AND attribute_not_exists(#questions.#step)"
                ),
                ExpressionAttributeNames={
                    "#message": "status_message",
                    "#done": "done_steps",
                    "#completed": "completed_steps",
                    "#status": "status",
                    "#questions": "questions",
                    "#step": str(index),
                },
                ExpressionAttributeValues={
                    ":message": serialize(message),
                    ":index_set": {"NS": [str(index)]},
                    ":index": serialize(index),
                    ":one": serialize(1),
                    ":processing": serialize(Status.PROCESSING.value),
                    ":awaiting": serialize(Status.AWAITING_CLARIFICATION.value),
                    ":generation": serialize(generation),
                    ":tokens": serialize(tokens),
                    ":calls": serialize(calls),
                },
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise StaleWrite("the step's result was not counted: the request moved on") from None
            _raise_contention(error)
            raise

    def step_outputs(self, pk: str, lineage: str) -> list[dict[str, Any]]:
        """Every stored step output of one lineage of a request (its first execution and any redrive)."""
        outputs: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": serialize(pk), ":prefix": serialize(f"STEP#{lineage}#")},
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**arguments)
            outputs.extend(from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return outputs
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- duration history (the estimator's) ------------------------------------------------------

    def get_history(self, formation_id: str, kind: str) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=self._history_key(formation_id, kind))
        item = response.get("Item")
        return from_item(item) if item else None

    def add_history(self, formation_id: str, kind: str, log_ratio: float) -> None:
        """Count one finished request of this kind. ADD is atomic and commutative: concurrent
        completions never lose a sample."""
        self._client.update_item(
            TableName=self._table,
            Key=self._history_key(formation_id, kind),
            UpdateExpression="ADD samples :one, sum_log_ratio :ratio, sum_sq_log_ratio :square",
            ExpressionAttributeValues={
                ":one": serialize(1),
                ":ratio": serialize(round(log_ratio, 6)),
                ":square": serialize(round(log_ratio * log_ratio, 6)),
            },
        )

    @staticmethod
    def _history_key(formation_id: str, kind: str) -> dict[str, Any]:
        return {"pk": {"S": f"HIST#{formation_id}#{kind}"}, "sk": {"S": "HIST"}}

    # -- API keys --------------------------------------------------------------------------------

    def put_key(self, *, secret_hash: str, key_id: str, kind: str, label: str, created_at: str) -> None:
        attributes = {"key_id": key_id, "kind": kind, "label": label, "created_at": created_at}
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item({**attributes, "pk": f"KEY#{secret_hash}", "sk": KEY_SK}),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(
                                {
                                    **attributes,
                                    "pk": f"KEYID#{key_id}",
                                    "sk": KEY_SK,
                                    "secret_hash": secret_hash,
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if error_code(error) == "TransactionCanceledException":
                raise Conflict(f"key {key_id} already exists") from None
            raise

    def get_key(self, secret_hash: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"KEY#{secret_hash}"}, "sk": {"S": KEY_SK}}
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def revoke_key(self, key_id: str, *, revoked_at: str) -> bool:
        """Mark a key revoked by its id. Returns False when no such key exists."""
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"KEYID#{key_id}"}, "sk": {"S": KEY_SK}},
            ConsistentRead=True,
        )
        pointer = response.get("Item")
        if not pointer:
            return False
        secret_hash = from_item(pointer)["secret_hash"]
        for pk in (f"KEY#{secret_hash}", f"KEYID#{key_id}"):
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": pk}, "sk": {"S": KEY_SK}},
                UpdateExpression="SET revoked_at = :at",
                ExpressionAttributeValues={":at": {"S": revoked_at}},
            )
        return True

    @staticmethod
    def _key(pk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": REQUEST_SK}}
