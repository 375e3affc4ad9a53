"""Helpers shared by the DynamoDB access classes: (de)serialisation, and AWS error codes turned into
domain errors in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from asyncagents.domain.errors import StaleWrite, StoreContention

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

CONDITION_FAILED = "ConditionalCheckFailedException"
# A write that collided with a transaction on the same item (API key writes are transactions).
_CONTENTION_CODES = frozenset({"TransactionConflictException", "TransactionInProgressException"})


def _to_dynamo_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _to_dynamo_value(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo_value(item) for item in value]
    return value


def _from_dynamo_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _from_dynamo_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_dynamo_value(item) for item in value]
    if isinstance(value, set):
        return {_from_dynamo_value(item) for item in value}
    return value


def serialize(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (floats become exact decimals, None is dropped)."""
    serialized: dict[str, Any] = dict(_serializer.serialize(_to_dynamo_value(value)))
    return serialized


def to_item(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: serialize(value) for name, value in fields.items() if value is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _from_dynamo_value(_deserializer.deserialize(value)) for name, value in item.items()}


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def conditional_write(stale_message: str, current: Callable[[dict[str, Any]], Any] | None = None) -> Iterator[None]:
    """Run one conditional write. A failed condition raises ``StaleWrite`` carrying ``current(item)``, the
    item as it is now (returned by the same call with ``ReturnValuesOnConditionCheckFailure``); a collision
    with a transaction raises ``StoreContention`` (retrying is safe); anything else propagates."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        if code == CONDITION_FAILED:
            item = dict(error.response).get("Item")
            now = current(item) if current is not None and isinstance(item, dict) and item else None
            raise StaleWrite(stale_message, details={"current": now}) from None
        if code in _CONTENTION_CODES:
            raise StoreContention(f"DynamoDB write contention ({code}); retry") from None
        raise


def update_arguments(
    *,
    set_fields: dict[str, Any],
    remove_fields: Iterable[str] = (),
    increments: dict[str, int] | None = None,
    extra_adds: Sequence[str] = (),
    extra_sets: Sequence[str] = (),
    extra_deletes: Sequence[str] = (),
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``UpdateExpression`` with its names and values for SET, REMOVE, ADD and DELETE clauses (placeholders, so
    any attribute name works). ``extra_adds``, ``extra_sets`` and ``extra_deletes`` are terms written out (a nested
    counter, a set, a ``list_append``, elements taken out of a set), whose names and values the caller supplies."""
    names = dict(names or {})
    values = dict(values or {})
    clauses: list[str] = []
    assignments = []
    for i, (name, value) in enumerate(set_fields.items()):
        names[f"#s{i}"] = name
        values[f":s{i}"] = serialize(value)
        assignments.append(f"#s{i} = :s{i}")
    assignments.extend(extra_sets)
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
    additions.extend(extra_adds)
    if additions:
        clauses.append("ADD " + ", ".join(additions))
    if extra_deletes:
        clauses.append("DELETE " + ", ".join(extra_deletes))
    arguments: dict[str, Any] = {"UpdateExpression": " ".join(clauses), "ExpressionAttributeNames": names}
    if values:
        arguments["ExpressionAttributeValues"] = values
    return arguments
