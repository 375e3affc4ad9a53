"""Response bodies as the OpenAPI document describes them (the views build the bodies themselves). Imported
only when the document is generated: their models cost nothing on the request path."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from asyncagents.model_base import LazyModel


class ErrorBody(LazyModel):
    """Every error: ``{code, message, details}``; 422 details list ``errors[] {field, reason, type}``."""

    code: str
    message: str
    details: dict[str, object] = Field(default_factory=dict)


class RequestView(LazyModel):
    """A request as ``GET /v1/requests/{id}`` shows it (seeds/000); completed adds ``result``, failed adds
    ``error``, a cancelled one has ``content: ""``."""

    model_config = ConfigDict(extra="allow")
    request_id: str
    status: str = Field(
        json_schema_extra={
            "enum": ["pending", "processing", "awaiting_clarification", "completed", "failed", "cancelled"]
        }
    )
    progress: int
    current_step: str | None = None
    total_steps: int
    completed_steps: int
    message: str
    created_at: str
    updated_at: str
    processing_mode: str
    delivery: str = Field(json_schema_extra={"enum": ["polling", "webhook"]})
    result: dict[str, object] | None = None
    error: dict[str, object] | None = None
    duration_ms: int | None = None
    clarification: dict[str, object] | None = None


class AcceptedView(LazyModel):
    """The 202 answer: the request is accepted and runs in the background."""

    model_config = ConfigDict(extra="allow")
    request_id: str
    status: str
    delivery: str = Field(json_schema_extra={"enum": ["polling", "webhook"]})
    poll_url: str
    estimated_seconds: float | None = None
    estimated_time: str | None = None


class RequestList(LazyModel):
    requests: list[RequestView]
    count: int
    next_cursor: str | None = None


class TriggerList(LazyModel):
    """``GET /v1/triggers`` (as MUXI answers it)."""

    formation_id: str
    triggers: list[str]
    count: int


class TriggerView(LazyModel):
    """``GET /v1/triggers/{name}``: MUXI's ``name``, ``content`` (the template) and ``data_fields``, and how
    the trigger is called (``authentication``: client_key, github, stripe, slack, standard-webhooks, hmac)."""

    model_config = ConfigDict(extra="allow")
    name: str
    content: str
    data_fields: list[str]
    authentication: str
    accepts_client_key: bool
    description: str = ""


class TriggerFire(LazyModel):
    """The body of ``POST /v1/triggers/{name}`` from a client, as MUXI has it. Any other JSON (or a form) is
    the event's data itself: a provider's own delivery."""

    data: object = Field(description="The event's data, which the trigger's template reads.")
    session_id: str | None = Field(None, min_length=1, max_length=256)
    use_async: bool | None = Field(None, description="false: wait like a sync chat (default: the trigger's)")


# Every model the routes name in their ``responses`` (and the trigger body, described by hand).
class ProgressEventView(LazyModel):
    """One event of a request, numbered from 1; the request's last event, once it ended, carries its outcome
    (``result``/``error``, ``usage``, ``duration_ms``). As SSE: ``id:`` is the number, ``event:`` the type."""

    model_config = ConfigDict(extra="allow")
    id: int
    type: str = Field(
        json_schema_extra={
            "enum": [
                "accepted",
                "planned",
                "step_started",
                "step_completed",
                "question",
                "waiting",
                "answered",
                "redriven",
                "status",
                "completed",
                "failed",
                "cancelled",
            ]
        }
    )
    request_id: str
    at: str
    status: str
    progress: int
    total_steps: int
    completed_steps: int
    current_step: str | None = None
    message: str
    step: int | None = None


class EventPage(LazyModel):
    """``GET /v1/requests/{id}/events`` as JSON: the events after ``after``; ``finished`` when none will follow."""

    request_id: str
    status: str
    events: list[ProgressEventView]
    last_event_id: int
    finished: bool


class KeyView(LazyModel):
    """An API key as the listing shows it: never its secret."""

    key_id: str
    kind: str = Field(json_schema_extra={"enum": ["client", "admin"]})
    label: str
    created_at: str
    user_id: str | None = None
    expires_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = Field(None, description="To the hour.")
    signs_webhooks: bool = Field(False, description="Its requests' webhooks are signed with a secret of its own.")
    requests_per_second: int | None = Field(None, description="Its own limit (unset: the formation's).")
    max_active_requests: int | None = Field(None, description="Its own limit (unset: the formation's).")


class CapCounter(LazyModel):
    """One capped scope in one period: its caps, what was spent, held and left (usd estimated from
    spend.prices)."""

    scope: str = Field(description='"formation", or a key id')
    period: str = Field(json_schema_extra={"enum": ["daily", "monthly"]})
    period_id: str = Field(description="The UTC day (2026-12-01) or month (2026-12).")
    resets_at: str
    caps: dict[str, float] = Field(description="model_calls, tokens, usd: the capped ones.")
    spent: dict[str, float] = Field(description="What calls used (settled).")
    held: dict[str, float] = Field(description="What calls in flight reserved (a call that died keeps its own).")
    remaining: dict[str, float]


class SpendReport(LazyModel):
    capped: bool = Field(description="False: the formation has no spend caps (nothing is counted).")
    counters: list[CapCounter]
    count: int


class KeyList(LazyModel):
    keys: list[KeyView]
    count: int
    next_cursor: str | None = None


class AuditEntryView(LazyModel):
    """One call an admin key made: who, what, when, and the answer."""

    entry_id: str
    at: str
    key_id: str
    action: str = Field(description="The method and the path, with its query string.")
    status: int
    request_id: str


class AuditList(LazyModel):
    entries: list[AuditEntryView]
    count: int
    next_cursor: str | None = None


class RequestCountsView(LazyModel):
    accepted: int
    completed: int
    failed: int
    timed_out: int
    cancelled: int
    throttled: int


class WebhookCountsView(LazyModel):
    attempts: int
    delivered: int
    retried: int
    dead: int


class QueueDepthView(LazyModel):
    unfinished_requests: int = Field(description="Requests pending, processing or awaiting an answer, now.")
    webhook_backlog: int = Field(description="Webhook events not yet delivered, now (retries waiting included).")
    webhook_in_flight: int = Field(description="Of those, the ones being delivered or waiting for a retry.")
    webhook_dead_letters: int


class MonitoringView(LazyModel):
    """The seed's four figures (average duration, success rate, webhook delivery success, queue depth)."""

    window: str
    start: str
    end: str
    average_duration_seconds: float | None = Field(description="Of the requests that ended in the window.")
    success_rate: float | None = Field(description="completed / (completed + failed + timed out), 0 to 1.")
    webhook_delivery_success_rate: float | None = Field(description="delivered / (delivered + dead-lettered).")
    queue_depth: QueueDepthView
    requests: RequestCountsView
    webhooks: WebhookCountsView


DOCUMENTED = (
    ErrorBody,
    RequestView,
    AcceptedView,
    RequestList,
    TriggerList,
    TriggerView,
    TriggerFire,
    ProgressEventView,
    EventPage,
    KeyView,
    KeyList,
    SpendReport,
    AuditEntryView,
    AuditList,
    MonitoringView,
)
