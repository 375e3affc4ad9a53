"""Which table changes produce webhooks: a request whose status changed to one of ``WEBHOOK_STATUSES``,
and each new question a request waiting for answers puts to the user.

Fed by the table's stream, so every writer of a terminal status (the workflow, a cancel, the
reconciler) is covered without having to remember to notify; the stream is at-least-once, and the
delivery id makes a duplicate recognisable to receivers.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import Status
from asyncagents.domain.webhooks.delivery import WebhookMessage
from asyncagents.domain.webhooks.payload import WEBHOOK_STATUSES, current_question_of, delivery_id, snapshot_of


def webhook_message_for(old_image: dict[str, Any] | None, new_image: dict[str, Any] | None) -> WebhookMessage | None:
    """The webhook event a change to a request record stands for, if any. The images are the record's
    attributes before and after (plain values, with ``request_key``; see ``data.request_records``)."""
    if not new_image or not new_image.get("webhook_url"):
        return None
    new_status = new_image.get("status")
    try:
        status = Status(str(new_status))
    except ValueError:
        return None
    if status not in WEBHOOK_STATUSES:
        return None
    event_time = str(new_image.get("ended_at") or new_image.get("started_at") or new_image.get("created_at"))
    if status is Status.AWAITING_CLARIFICATION:
        # Each question the user is asked is an event of its own, even while another one waits.
        asked = current_question_of(new_image.get("questions"))
        if asked is None:
            return None
        old = old_image or {}
        if old.get("status") == new_status and current_question_of(old.get("questions")) == asked:
            return None
        event_time = asked[1]
    elif new_status == (old_image or {}).get("status"):
        return None
    key = str(new_image["request_key"])
    return WebhookMessage(
        request_key=key,
        status=status.value,
        delivery_id=delivery_id(key, status.value, event_time),
        event_time=event_time,
        webhook_url=str(new_image["webhook_url"]),
        snapshot=_snapshot(new_image),
        created_at=str(new_image["created_at"]) if new_image.get("created_at") else None,
        key_id=str(new_image["key_id"]) if new_image.get("key_id") else None,
    )


def _snapshot(image: dict[str, Any]) -> dict[str, Any] | None:
    """The body as of the event, kept with it: delivered even after the request's retention has passed and its
    record is gone. An image that is not a whole record (none from the table's stream) gets none."""
    try:
        return snapshot_of(RequestRecord.model_validate(image))
    except ValidationError:
        return None
