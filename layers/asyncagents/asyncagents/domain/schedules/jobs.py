"""Scheduled jobs as MUXI's scheduler API shows them: created over HTTP, or defined in the formation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict

from asyncagents.domain.schedules.timing import Timing, parse_timing
from asyncagents.model_base import LazyModel
from asyncagents.schedule_definitions import ScheduleDefinition

FORMATION_PREFIX = "formation-"
JobType = Literal["one_time", "recurring"]


class JobRun(LazyModel):
    """One slot that fired: when it was due, the request it made, when it arrived."""

    scheduled_time: str
    request_id: str
    fired_at: str


class ScheduledJob(LazyModel):
    """A schedule and what it sends. ``source``: ``api`` (created over HTTP) or ``formation`` (read-only here,
    changed by editing the formation and deploying). ``schedule`` is as written; ``expression`` is the
    EventBridge Scheduler form it runs as."""

    model_config = ConfigDict(extra="ignore")

    id: str
    type: JobType
    schedule: str
    expression: str
    timezone: str = "UTC"
    message: str
    title: str = ""
    user_id: str = "default"
    session_id: str | None = None
    webhook_url: str | None = None
    flexible_window_minutes: int = 0
    enabled: bool = True
    source: Literal["api", "formation"] = "api"
    created_at: str | None = None
    updated_at: str | None = None
    version: int = 0

    def timing(self) -> Timing:
        return parse_timing(self.schedule, self.timezone)


@dataclass(frozen=True)
class NewJob:
    """``POST /v1/scheduler/jobs``, validated at the edge."""

    type: JobType
    schedule: str
    message: str
    user_id: str
    timezone: str = "UTC"
    title: str = ""
    session_id: str | None = None
    webhook_url: str | None = None
    flexible_window_minutes: int = 0
    enabled: bool = True


def job_type_of(timing: Timing) -> JobType:
    return "one_time" if timing.kind == "at" else "recurring"


def formation_job(name: str, definition: ScheduleDefinition) -> ScheduledJob:
    """A formation schedule as a job (its id is the schedule's name in the stack's group)."""
    timing = definition.timing()
    return ScheduledJob(
        id=FORMATION_PREFIX + name,
        type=job_type_of(timing),
        schedule=definition.schedule,
        expression=timing.expression,
        timezone=definition.timezone,
        message=definition.message,
        title=definition.title or name,
        user_id=definition.user_id,
        session_id=definition.session_id,
        webhook_url=definition.webhook_url,
        flexible_window_minutes=definition.flexible_window_minutes,
        enabled=definition.enabled,
        source="formation",
    )


def schedule_input(job_id: str) -> dict[str, Any]:
    """What the schedule sends its target: the job, and the slot (Scheduler fills in the time it was due)."""
    return {"job_id": job_id, "scheduled_time": "<aws.scheduler.scheduled-time>"}
