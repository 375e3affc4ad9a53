"""EventBridge Scheduler for a schedule group, emulated: moto stores schedules but never fires them.

Every ``interval`` seconds the emulator reads the group's schedules from moto, computes with the same code as
the API (``domain.schedules.timing``: the expression, in the schedule's time zone) which slots fell due since
it last looked, and delivers each to the schedule's target with the schedule's ``Input``, the scheduled time
filled in as Scheduler does. ``deliveries`` counts what it delivered; ``deliver_again`` repeats a slot (at
least once delivery, as Scheduler's retries can).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncagents.domain.schedules.timing import parse_timing
from asyncagents.local.pollers import _Every

logger = logging.getLogger(__name__)
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


def slot_text(slot: datetime) -> str:
    """The scheduled time as Scheduler writes it into a target's input."""
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GroupScheduler(_Every):
    def __init__(
        self,
        client: Any,
        group: str,
        targets: Mapping[str, Callable[[dict[str, Any]], Any]],
        *,
        interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(f"asyncagents-scheduler-{group}", interval)
        self._client = client
        self._group = group
        self._targets = targets
        self._clock = clock
        self._looked: dict[str, datetime] = {}
        self.deliveries: list[tuple[str, str]] = []  # (schedule, scheduled time)

    def tick(self) -> None:
        now = self._clock()
        for summary in self._client.list_schedules(GroupName=self._group).get("Schedules", []):
            name = summary["Name"]
            detail = self._client.get_schedule(Name=name, GroupName=self._group)
            created = _aware(detail.get("CreationDate")) or now
            changed = _aware(detail.get("LastModificationDate")) or created
            # Just before its creation the first time: a rate schedule runs at once, as on AWS.
            since = max(self._looked.get(name, created - timedelta(milliseconds=1)), changed)
            self._looked[name] = now
            if detail.get("State") != "ENABLED":
                continue
            timing = parse_timing(detail["ScheduleExpression"], detail.get("ScheduleExpressionTimezone") or "UTC")
            for slot in timing.runs_between(since, now, anchor=created):
                self._deliver(name, detail["Target"], slot_text(slot))

    def deliver_again(self, name: str, scheduled_time: str) -> None:
        """Deliver a slot that was already delivered (Scheduler delivers at least once)."""
        detail = self._client.get_schedule(Name=name, GroupName=self._group)
        self._deliver(name, detail["Target"], scheduled_time)

    def _deliver(self, name: str, target: dict[str, Any], scheduled_time: str) -> None:
        invoke = self._targets.get(target["Arn"])
        if invoke is None:
            logger.warning("schedule %s targets %s, which is not a function of this stack", name, target["Arn"])
            return
        payload = json.loads(str(target.get("Input") or "{}").replace(SCHEDULED_TIME, scheduled_time))
        self.deliveries.append((name, scheduled_time))
        invoke(payload)


def _aware(moment: Any) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
