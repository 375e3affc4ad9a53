"""Stream adapter: the changes the table's stream delivers, turned into the webhook events they stand for and the
ends of requests (which free their slots of ``domain.limits``)."""

from __future__ import annotations

from typing import Any

from asyncagents.data.request_items import request_image
from asyncagents.domain.statuses import Status
from asyncagents.domain.telemetry import Telemetry, request_change
from asyncagents.domain.webhooks.delivery import WebhookMessage
from asyncagents.domain.webhooks.events import webhook_message_for
from asyncagents.formation_notifications import Notifications


def webhook_event_of(old_image: dict[str, Any] | None, new_image: dict[str, Any] | None) -> WebhookMessage | None:
    """The webhook event a change on the table's stream stands for (images as the stream delivers them,
    deserialised), if any."""
    return webhook_message_for(request_image(old_image), request_image(new_image))


def notices_of(
    old_image: dict[str, Any] | None, new_image: dict[str, Any] | None, settings: Notifications
) -> list[WebhookMessage]:
    """The completion notices (``notifications`` in the formation) a change on the table's stream stands for."""
    from asyncagents.domain.webhooks.notices import notices_for

    return notices_for(request_image(old_image), request_image(new_image), settings)


def ended_request(old_image: dict[str, Any] | None, new_image: dict[str, Any] | None) -> tuple[str, str] | None:
    """``(key id, request key)`` of a request this change ended, if it ended one."""
    old, new = request_image(old_image) or {}, request_image(new_image)
    if not new or not new.get("key_id") or new.get("status") not in _TERMINAL or old.get("status") in _TERMINAL:
        return None
    return str(new["key_id"]), str(new["request_key"])


def measure_change(old_image: dict[str, Any] | None, new_image: dict[str, Any] | None, telemetry: Telemetry) -> None:
    """Emit what this change of a request measures (its end, or the start of a wait for an answer), if anything."""
    new = request_image(new_image)
    measures = request_change(request_image(old_image), new)
    if measures and new:
        telemetry.emit(measures, metadata={"request_id": new.get("request_id"), "status": new.get("status")})


_TERMINAL = frozenset(status.value for status in Status if status.is_terminal)
