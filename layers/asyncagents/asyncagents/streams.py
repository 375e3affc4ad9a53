"""Stream adapter: the changes the table's stream delivers, turned into the webhook events they stand for."""

from __future__ import annotations

from typing import Any

from asyncagents.data.request_records import request_image
from asyncagents.domain.webhooks.delivery import WebhookMessage
from asyncagents.domain.webhooks.events import webhook_message_for


def webhook_event_of(old_image: dict[str, Any] | None, new_image: dict[str, Any] | None) -> WebhookMessage | None:
    """The webhook event a change on the table's stream stands for (images as the stream delivers them,
    deserialised), if any."""
    return webhook_message_for(request_image(old_image), request_image(new_image))
