"""``X-Muxi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">``, as seeds/000 specifies.

During a secret rotation the header carries one ``v1`` per live secret. ``verify_signature`` accepts any
matching entry. MUXI's own helper reads only the last ``v1``, so the previous secret's signature is put
last: receivers that have not switched yet keep working with either helper.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SIGNATURE_HEADER = "X-Muxi-Signature"


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str], *, timestamp: int | None = None) -> str:
    """The signature header for ``body``: one ``v1`` per secret, in the order given."""
    if not secrets:
        raise ValueError("at least one signing secret is required")
    moment = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={moment}", *(f"v1={_mac(secret, moment, body)}" for secret in secrets)])


def verify_signature(
    body: bytes | str,
    header: str | None,
    secret: str,
    tolerance_seconds: int = 300,
    *,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs exactly ``body`` with ``secret`` within ``tolerance_seconds`` of now.

    Constant-time comparison; any ``v1`` entry may match; a malformed header is simply ``False``.
    """
    if not header or not secret:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    payload = body.encode() if isinstance(body, str) else body
    expected = _mac(secret, timestamp, payload)
    matched = False
    for candidate in candidates:  # no early exit: the time taken does not depend on which entry matched
        matched |= hmac.compare_digest(expected, candidate)
    return matched


class ContentItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None
    file: dict[str, Any] | None = None


class WebhookError(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str
    retryable: bool = False


class WebhookEvent(BaseModel):
    """A webhook as we send it (seeds/000 "Webhook Payload Structure")."""

    model_config = ConfigDict(extra="allow")
    id: str
    status: str
    timestamp: int
    response: list[ContentItem] = Field(default_factory=list)
    error: WebhookError | None = None
    clarification: dict[str, Any] | None = None
    formation_id: str | None = None
    user_id: str | None = None
    processing_time: float | None = None
    processing_mode: str = "async"


def parse(body: bytes | str | dict[str, Any]) -> WebhookEvent:
    """Parse a webhook body into a typed ``WebhookEvent`` (raises ``ValueError`` on a bad body)."""
    data = body if isinstance(body, dict) else json.loads(body)
    return WebhookEvent.model_validate(data)
