"""Schedules defined in the formation (``schedules:``): reports that run on EventBridge Scheduler.

Each becomes a schedule in the stack's schedule group when the stack is deployed (``make build`` writes one
``AWS::Scheduler::Schedule`` per entry into the built template), and leaves it when removed from the file.
"""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field, model_validator

from asyncagents.domain.schedules.timing import Timing, parse_timing
from asyncagents.model_base import LazyModel

SCHEDULE_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,48}$"
USER_PATTERN = r"^[^\x00-\x1f]+$"
MAX_SCHEDULED_MESSAGE = 32 * 1024


class ScheduleDefinition(LazyModel):
    """One entry of ``schedules:``; its name is its key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str = Field(
        min_length=1,
        max_length=256,
        description="cron (0 9 * * *), cron(0 9 * * ? *), rate(1 hour), or an ISO 8601 time for one run",
    )
    timezone: str = Field("UTC", description="IANA time zone the schedule's times are in (Europe/Paris)")
    message: str = Field(min_length=1, max_length=MAX_SCHEDULED_MESSAGE)
    title: str = Field("", max_length=200)
    user_id: str = Field("default", min_length=1, max_length=256, pattern=USER_PATTERN)
    session_id: str | None = Field(None, min_length=1, max_length=256)
    webhook_url: str | None = Field(None, max_length=2048, pattern=r"^[hH][tT][tT][pP][sS]?://[^/?#@\s]+")
    flexible_window_minutes: int = Field(0, ge=0, le=1440, description="Let Scheduler run it up to this late.")
    enabled: bool = True

    @model_validator(mode="after")
    def _valid_timing(self) -> ScheduleDefinition:
        self.timing()  # raises ValueError naming what is wrong
        return self

    def timing(self) -> Timing:
        return parse_timing(self.schedule, self.timezone)


def logical_id(name: str) -> str:
    """``daily-report`` → ``FormationScheduleDailyReport``: the schedule's resource in the built template
    (letters and digits only, as CloudFormation wants)."""
    return "FormationSchedule" + "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)
