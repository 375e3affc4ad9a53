"""Request record items in the domain's words: a table item, or a stream image, without the table's keys."""

from __future__ import annotations

from typing import Any

from asyncagents.data.dynamo import from_item
from asyncagents.data.event_entries import entries_of
from asyncagents.data.table_keys import LISTED_FOR, REQUEST_SK, REQUESTER, WEBHOOK_STATE_SK, request_key_of
from asyncagents.domain.records import RequestRecord


def record_of(item: dict[str, Any]) -> RequestRecord:
    """A request record from a table item (the low-level ``{"S": ...}`` form)."""
    fields = from_item(item)
    if "events" in fields:
        fields["events"] = entries_of(fields["events"])
    return RequestRecord.model_validate({**fields, "request_key": request_key_of(str(fields["pk"]))})


def with_webhook_state(record: dict[str, Any], webhook: dict[str, Any] | None) -> dict[str, Any]:
    """A record item with its webhook bookkeeping (its own item, ``WEBHOOK_STATE_SK``) merged in, when that item
    belongs to this record (not to an expired request that had the same key)."""
    if webhook is None or webhook.get("of_created_at") != record.get("created_at"):
        return record
    return {**record, **{name: value for name, value in webhook.items() if name.startswith("webhook_")}}


def is_webhook_state(item: dict[str, Any]) -> bool:
    return item.get("sk", {}).get("S") == WEBHOOK_STATE_SK


def request_image(image: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stream image (deserialised) in the domain's words: ``request_key`` instead of the table's keys;
    ``None`` for anything that is not a request record (step checkpoints, keys, history)."""
    if not image or image.get("sk") != REQUEST_SK or "pk" not in image:
        return None
    fields = {name: value for name, value in image.items() if name not in {"pk", "sk", "owner", REQUESTER, LISTED_FOR}}
    if "events" in fields:
        fields["events"] = entries_of(fields["events"])
    return {**fields, "request_key": request_key_of(str(image["pk"]))}
