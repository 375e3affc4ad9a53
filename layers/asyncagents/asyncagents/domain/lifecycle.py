"""Rules shared by every writer of a terminal status: when it ends, how long it stays readable."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from asyncagents.domain.records import RequestRecord, iso, parse_iso

# Step checkpoints and key items outlive nothing they belong to by more than a day.
_SWEEP_MARGIN_SECONDS = 86_400


def terminal_fields(record: RequestRecord, *, now: datetime, retention_seconds: int) -> dict[str, Any]:
    """Attributes every terminal write sets: end time, duration, and the retention deadline.

    ``expires_at`` is exact and checked on every read; ``ttl`` only lets DynamoDB sweep the item
    later (its deletion lags by up to days, which the read path makes invisible).
    """
    expires_at = now.timestamp() + retention_seconds
    started = parse_iso(record.created_at)
    return {
        "ended_at": iso(now),
        "duration_ms": max(0, int((now - started).total_seconds() * 1000)),
        "expires_at": expires_at,
        "ttl": math.ceil(expires_at),
    }


def checkpoint_ttl(now: datetime, *, workflow_timeout: int, retention_seconds: int) -> int:
    """When DynamoDB may sweep a step checkpoint: after the request can no longer be running or read."""
    return math.ceil(now.timestamp()) + workflow_timeout + retention_seconds + _SWEEP_MARGIN_SECONDS
