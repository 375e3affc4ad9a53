"""The seed's four monitoring figures for a window (README, "Monitoring"): average async task duration, async task
success rate, webhook delivery success, queue depth; computed from the metrics the functions emit
(``domain.telemetry``) and from the live depth of the work still waiting."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from asyncagents.domain import telemetry as names
from asyncagents.domain.errors import BadRequest

# 1m to 14d, exactly (the API's schema says the same, so a schema-valid window is never refused).
WINDOW_PATTERN = (
    r"^(?:(?:[1-9][0-9]{0,3}|1[0-9]{4}|20(?:0[0-9]{2}|1[0-5][0-9])|20160)m"
    r"|(?:[1-9][0-9]?|[12][0-9]{2}|3[0-2][0-9]|33[0-6])h|(?:[1-9]|1[0-4])d)$"
)
_WINDOW = re.compile(r"^([0-9]+)([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 60, 14 * 86400  # CloudWatch keeps one-minute points for 15 days


class MetricTotals(Protocol):
    def totals(
        self, wanted: Sequence[tuple[str, str]], start: datetime, end: datetime
    ) -> dict[tuple[str, str], float]: ...


class WorkDepth(Protocol):
    def unfinished_requests(self) -> int: ...

    def webhook_backlog(self) -> tuple[int, int]: ...

    def webhook_dead_letters(self) -> int: ...


@dataclass(frozen=True)
class RequestCounts:
    accepted: int
    completed: int
    failed: int
    timed_out: int
    cancelled: int
    throttled: int


@dataclass(frozen=True)
class WebhookCounts:
    attempts: int
    delivered: int
    retried: int
    dead: int


@dataclass(frozen=True)
class QueueDepth:
    """Work waiting now (not over the window): requests not finished, webhook events not yet delivered (of them,
    ``webhook_in_flight`` are being delivered or waiting for a retry), dead-lettered webhook events."""

    unfinished_requests: int
    webhook_backlog: int
    webhook_in_flight: int
    webhook_dead_letters: int


@dataclass(frozen=True)
class MonitoringFigures:
    window: str
    start: str
    end: str
    average_duration_seconds: float | None  # of the requests that ended in the window (None: none ended)
    success_rate: float | None  # completed / (completed + failed + timed out); cancelled ones are left out
    webhook_delivery_success_rate: float | None  # delivered / (delivered + dead-lettered)
    queue_depth: QueueDepth
    requests: RequestCounts
    webhooks: WebhookCounts


def window_seconds(window: str) -> int:
    """``15m``, ``1h``, ``7d`` → seconds, between a minute and 14 days."""
    match = _WINDOW.match(window)
    if not match or not re.match(WINDOW_PATTERN, window):
        raise BadRequest(
            "window: must be a number and a unit, m, h or d (e.g. 15m, 1h, 7d)", details={"field": "window"}
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:  # the pattern says so too: kept as the rule
        raise BadRequest("window: must be between 1m and 14d", details={"field": "window"})
    return seconds


_COUNTED = (
    names.REQUESTS_ACCEPTED,
    names.REQUESTS_COMPLETED,
    names.REQUESTS_FAILED,
    names.REQUESTS_TIMED_OUT,
    names.REQUESTS_CANCELLED,
    names.REQUESTS_THROTTLED,
    names.WEBHOOK_ATTEMPTS,
    *names.WEBHOOK_OUTCOMES.values(),
)


class Monitoring:
    def __init__(self, metrics: MetricTotals, depth: WorkDepth, *, clock: Callable[[], datetime]) -> None:
        self._metrics = metrics
        self._depth = depth
        self._clock = clock

    def figures(self, window: str) -> MonitoringFigures:
        end = self._clock().replace(microsecond=0) + timedelta(seconds=1)  # what was emitted this second counts
        start = end - timedelta(seconds=window_seconds(window))
        wanted = [(name, "Sum") for name in _COUNTED] + [
            (names.REQUEST_DURATION, "Sum"),
            (names.REQUEST_DURATION, "SampleCount"),
        ]
        totals = self._metrics.totals(wanted, start, end)

        def count(name: str) -> int:
            return round(totals[(name, "Sum")])

        requests = RequestCounts(
            accepted=count(names.REQUESTS_ACCEPTED),
            completed=count(names.REQUESTS_COMPLETED),
            failed=count(names.REQUESTS_FAILED),
            timed_out=count(names.REQUESTS_TIMED_OUT),
            cancelled=count(names.REQUESTS_CANCELLED),
            throttled=count(names.REQUESTS_THROTTLED),
        )
        webhooks = WebhookCounts(
            attempts=count(names.WEBHOOK_ATTEMPTS),
            delivered=count(names.WEBHOOK_OUTCOMES["delivered"]),
            retried=count(names.WEBHOOK_OUTCOMES["retry"]),
            dead=count(names.WEBHOOK_OUTCOMES["dead"]),
        )
        durations = totals[(names.REQUEST_DURATION, "SampleCount")]
        backlog, in_flight = self._depth.webhook_backlog()
        return MonitoringFigures(
            window=window,
            start=start.isoformat().replace("+00:00", "Z"),
            end=end.isoformat().replace("+00:00", "Z"),
            average_duration_seconds=(
                round(totals[(names.REQUEST_DURATION, "Sum")] / durations / 1000, 3) if durations else None
            ),
            success_rate=_rate(requests.completed, requests.completed + requests.failed + requests.timed_out),
            webhook_delivery_success_rate=_rate(webhooks.delivered, webhooks.delivered + webhooks.dead),
            queue_depth=QueueDepth(
                unfinished_requests=self._depth.unfinished_requests(),
                webhook_backlog=backlog,
                webhook_in_flight=in_flight,
                webhook_dead_letters=self._depth.webhook_dead_letters(),
            ),
            requests=requests,
            webhooks=webhooks,
        )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
