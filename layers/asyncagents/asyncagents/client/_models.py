"""What the API answers, typed. Models keep fields they do not know (``extra="allow"``): a newer server's
fields reach the caller instead of failing validation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")

    def get(self, name: str, default: Any = None) -> Any:
        """A field by name, as MUXI's SDK answers (dicts): ``status.get("status")`` works on both."""
        if name in type(self).model_fields:
            value = getattr(self, name)
            return default if value is None else value
        return (self.model_extra or {}).get(name, default)

    def __getitem__(self, name: str) -> Any:
        if name not in type(self).model_fields and name not in (self.model_extra or {}):
            raise KeyError(name)
        return self.get(name)


class Result(_Open):
    """A completed request's answer (seed 000's ``result.text``)."""

    text: str = ""
    artifacts: list[dict[str, Any]] = Field(default_factory=list)
    request_id: str | None = None


class ErrorInfo(_Open):
    type: str
    message: str
    retryable: bool = False


class Request(_Open):
    """A request as ``GET /v1/requests/{id}`` shows it."""

    request_id: str
    status: str
    progress: int = 0
    current_step: str | None = None
    total_steps: int = 0
    completed_steps: int = 0
    message: str = ""
    created_at: str | None = None
    result: Result | None = None
    error: ErrorInfo | None = None
    duration_ms: int | None = None
    clarification: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def raise_for_status(self) -> Request:
        """This request, if it completed; else ``RequestFailed`` (failed or cancelled)."""
        from asyncagents.client._errors import RequestFailed

        if self.finished and self.status != "completed":
            raise RequestFailed(self)
        return self


class Accepted(_Open):
    """The 202 answer: the request runs in the background."""

    request_id: str
    status: str
    delivery: str = "polling"
    poll_url: str | None = None
    estimated_seconds: float | None = None
    estimated_time: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


class ProgressEvent(_Open):
    """One numbered event of a request; the last one of an ended request carries its ``result`` or ``error``."""

    id: int
    type: str
    request_id: str
    at: str
    status: str
    progress: int = 0
    total_steps: int = 0
    completed_steps: int = 0
    current_step: str | None = None
    message: str = ""
    step: int | None = None
    result: Result | None = None
    error: ErrorInfo | None = None

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL_STATUSES


class EventPage(_Open):
    request_id: str
    status: str
    events: list[ProgressEvent]
    last_event_id: int
    finished: bool


class RequestPage(_Open):
    requests: list[Request]
    count: int
    next_cursor: str | None = None


class Trigger(_Open):
    name: str


class Job(_Open):
    """A scheduled job (``/v1/scheduler/jobs``)."""

    id: str
    type: str = "recurring"
    schedule: str | None = None
    message: str | None = None
    enabled: bool = True
