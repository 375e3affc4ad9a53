"""Completion notices people read (``notifications`` in the formation): a request that ends becomes one message to
a Slack incoming webhook, queued and delivered like a webhook event (the same retries and dead letters), saying
what finished, how long it took, and where to read the result."""

from __future__ import annotations

from typing import Any

from asyncagents.domain.statuses import Status
from asyncagents.domain.webhooks.delivery import WebhookMessage
from asyncagents.domain.webhooks.events import webhook_message_for
from asyncagents.formation_notifications import Notifications

PREVIEW_CHARS = 300
_VERBS = {"completed": "completed", "failed": "failed", "cancelled": "was cancelled"}


def notice_for(
    old_image: dict[str, Any] | None, new_image: dict[str, Any] | None, settings: Notifications
) -> WebhookMessage | None:
    """The notice a change to a request record stands for: it ended in one of ``settings.on``."""
    if not settings.slack_webhook_url or not new_image or new_image.get("status") not in settings.on:
        return None
    event = webhook_message_for(old_image, {**new_image, "webhook_url": settings.slack_webhook_url})
    if event is None or event.status not in {status.value for status in Status if status.is_terminal}:
        return None
    return event.model_copy(update={"channel": "slack", "delivery_id": f"{event.delivery_id}-slack"})


def slack_body(event: dict[str, Any], link: str | None) -> dict[str, Any]:
    """Slack's incoming-webhook message for a rendered event body (``payload.render``)."""
    request_id = str(event.get("request_id", ""))
    status = str(event.get("status", ""))
    took = event.get("processing_time")
    line = f"Request {request_id} {_VERBS.get(status, status)}"
    if took is not None:
        line += f" in {_duration(float(took))}"
    if event.get("error"):
        line += f": {event['error'].get('type')}, {event['error'].get('message')}"
    text = next((part.get("text", "") for part in event.get("response") or [] if part.get("type") == "text"), "")
    lines = [line]
    if text:
        lines.append("> " + (text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")).replace("\n", "\n> "))
    if link:
        lines.append(f"<{link.replace('{request_id}', request_id)}|Read the result>")
    return {"text": "\n".join(lines)}


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
