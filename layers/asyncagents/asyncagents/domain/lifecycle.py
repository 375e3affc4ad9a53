"""Rules shared by every writer of a terminal status: when it ends, how long it stays readable, and the one
conditional write that ends a request."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from asyncagents.domain.ports import RequestStore
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import Status, sources_of
from asyncagents.domain.times import iso, parse_iso, utc_now

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


class Endings:
    """Ends requests: completed, failed or cancelled, conditionally, with the retention every reader checks."""

    def __init__(self, store: RequestStore, *, retention_seconds: int, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._retention_seconds = retention_seconds
        self._clock = clock

    def end(
        self,
        record: RequestRecord,
        to: Status,
        fields: dict[str, Any],
        *,
        allowed_from: Iterable[Status] | None = None,
        generation: str | None = None,
        expected: dict[str, Any] | None = None,
        increments: dict[str, int] | None = None,
    ) -> RequestRecord:
        """Move ``record`` to the terminal status ``to`` with ``fields`` (and counters ``increments``), from
        ``allowed_from`` (by default every status that may lead there). Raises ``StaleWrite`` when the request
        moved on first."""
        now = self._clock()
        ending = terminal_fields(record, now=now, retention_seconds=self._retention_seconds)
        if record.awaiting_since:  # a wait ends with the request: the user's time, counted as such
            waited = (now - parse_iso(record.awaiting_since)).total_seconds()
            ending["waited_ms"] = record.waited_ms + max(0, int(waited * 1000))
        return self._store.transition(
            record.request_key,
            to=to,
            allowed_from=sources_of(to) if allowed_from is None else allowed_from,
            set_fields={**fields, **ending},
            remove_fields=("current_step", "awaiting_since"),
            generation=generation,
            expected=expected,
            increments=increments,
        )
