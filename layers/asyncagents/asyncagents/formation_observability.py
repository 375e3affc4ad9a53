"""The ``observability`` section of the formation: the seed's ``track_async_tasks``, and what the template's
monitoring is built with (README, "Monitoring")."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from asyncagents.formation_base import StrictModel


class WorkflowLogLevel(StrEnum):
    ALL = "ALL"
    ERROR = "ERROR"
    FATAL = "FATAL"
    OFF = "OFF"


class Observability(StrictModel):
    track_async_tasks: bool = Field(
        True, description="Emit the request metrics (accepted, outcomes, duration, steps, model calls, tokens)."
    )
    tracing: bool = Field(True, description="X-Ray active tracing on the functions and the state machine.")
    workflow_log_level: WorkflowLogLevel = Field(
        WorkflowLogLevel.ERROR, description="Step Functions execution logging (execution data is never logged)."
    )
    alarm_email: str | None = Field(
        None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Subscribe this address to the stack's alarm topic (it must confirm the subscription).",
    )
    webhook_success_alarm_percent: float = Field(
        90.0, ge=1, le=100, description="Alarm when fewer webhooks than this (percent) are delivered in an hour."
    )
    api_p99_alarm_milliseconds: int | None = Field(
        None,
        ge=100,
        le=30000,
        description="Alarm when the API's p99 latency stays above this (default: the sync wait plus 3 s, since a "
        "sync request holds its call for up to async.sync_wait_seconds by design).",
    )
