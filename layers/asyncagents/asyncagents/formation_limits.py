"""The ``limits`` section of the formation: what one API key may ask of the stack, and the concurrency that keeps
a flood from starving the parts that must keep running (README, "Limits")."""

from __future__ import annotations

from pydantic import Field

from asyncagents.formation_base import StrictModel


class Limits(StrictModel):
    requests_per_second: int = Field(
        50,
        ge=0,
        le=1000,
        description="New requests (POST /v1/chat, trigger fires) one API key may make per second; 0: no limit.",
    )
    max_active_requests: int = Field(
        200,
        ge=0,
        le=1000,
        description="Requests of one API key that have not ended; past it a new one is a 429. 0: no limit.",
    )
    max_sync_waits: int = Field(
        50,
        ge=0,
        le=5000,
        description="Sync requests waiting for their answer at once, all keys together; past it a sync request "
        "answers 202 at once and goes on in the background. 0: no cap.",
    )
    api_reserved_concurrency: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Lambda concurrency reserved for the API function (and its ceiling); unset: none reserved.",
    )
    recovery_reserved_concurrency: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Concurrency reserved for each recovery function (sweeper, reconciler, failure marker).",
    )
