"""Small helpers shared by the DynamoDB access classes: (de)serialisation and error codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


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


def is_condition_failure(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"
