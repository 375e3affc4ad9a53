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


def notices_for(
    old_image: dict[str, Any] | None, new_image: dict[str, Any] | None, settings: Notifications
) -> list[WebhookMessage]:
    """The notices a change to a request record stands for: it ended in one of ``settings.on`` (one per channel:
    the Slack incoming webhook, the e-mail topic)."""
    channels = [("slack", settings.slack_webhook_url), ("email", None if settings.email is None else "sns:")]
    wanted = [(channel, target) for channel, target in channels if target]
    if not wanted or not new_image or new_image.get("status") not in settings.on:
        return []
    event = webhook_message_for(old_image, {**new_image, "webhook_url": "notice"})
    if event is None or event.status not in {status.value for status in Status if status.is_terminal}:
        return []
    return [
        event.model_copy(
            update={
                "channel": channel,
                "delivery_id": f"{event.delivery_id}-{channel}",
                "webhook_url": target if channel == "slack" else None,
            }
        )
        for channel, target in wanted
    ]


def slack_body(event: dict[str, Any], link: str | None) -> dict[str, Any]:
    """Slack's incoming-webhook message for a rendered event body (``payload.render``)."""
    lines = _lines(event)
    if link:
        lines.append(f"<{link.replace('{request_id}', str(event.get('request_id', '')))}|Read the result>")
    return {"text": "\n".join(lines)}


def email_notice(event: dict[str, Any], link: str | None) -> tuple[str, str]:
    """The subject and text of the e-mail for a rendered event body."""
    lines = _lines(event)
    if link:
        lines.append("Read the result: " + link.replace("{request_id}", str(event.get("request_id", ""))))
    return lines[0][:100], "\n\n".join(lines)


def _lines(event: dict[str, Any]) -> list[str]:
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
    return lines


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
