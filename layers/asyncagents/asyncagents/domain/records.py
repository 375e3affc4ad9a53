"""The request record, its statuses and the shapes the API returns (flat JSON, as seeds/000 shows)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    AWAITING_CLARIFICATION = "awaiting_clarification"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

# Every status write names the statuses it may come from; nothing leaves a terminal status.
ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.PROCESSING, Status.FAILED, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.AWAITING_CLARIFICATION}),
    Status.AWAITING_CLARIFICATION: frozenset({Status.PROCESSING, Status.FAILED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def sources_of(target: Status) -> frozenset[Status]:
    """The statuses from which ``target`` may be written."""
    return frozenset(source for source, targets in ALLOWED_TRANSITIONS.items() if target in targets)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 with microseconds and a Z: sorts lexically in time order (the GSI relies on it)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _digest(*parts: str, length: int = 32) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:length]


def owner_of(key_id: str, user_id: str) -> str:
    """Requests are scoped by API key and end user; the pair becomes one opaque partition value."""
    return f"OWNER#{_digest(key_id, user_id)}"


def record_key(key_id: str, user_id: str, request_id: str) -> str:
    """The table key of a request. Hashing keeps arbitrary user ids and request ids out of key syntax."""
    return f"REQ#{_digest(key_id, user_id, request_id)}"


class RequestError(BaseModel):
    type: str
    message: str
    retryable: bool = False


class RequestResult(BaseModel):
    text: str
    # Set when the text outgrew the table: ``text`` is a preview and the whole text is in the bucket.
    text_key: str | None = None
    artifacts: list[Any] = Field(default_factory=list)
    # Token usage of each step: ``{index, title, input_tokens, output_tokens}`` (the total is ``usage``).
    steps: list[dict[str, Any]] = Field(default_factory=list)


class PlannedStep(BaseModel):
    """One step of a plan. ``depends_on`` lists earlier steps (0-based) whose outputs it needs; ``None``
    (plans made before dependencies existed, or a model that did not say) means every earlier step.
    Steps with no dependency between them may run at once."""

    title: str
    instruction: str
    depends_on: list[int] | None = None

    def dependencies(self, index: int) -> list[int]:
        """The earlier steps this one (at ``index``) waits for; references to itself or later are ignored
        (a plan can never deadlock)."""
        if self.depends_on is None:
            return list(range(index))
        return sorted({d for d in self.depends_on if 0 <= d < index})


def plan_waves(steps: list[PlannedStep]) -> list[list[int]]:
    """Group step indexes into waves: every step runs in the wave after the last of its dependencies."""
    wave_of: list[int] = []
    for index, step in enumerate(steps):
        earlier = [wave_of[d] for d in step.dependencies(index)]
        wave_of.append(max(earlier) + 1 if earlier else 0)
    waves: list[list[int]] = [[] for _ in range(max(wave_of, default=-1) + 1)]
    for index, wave in enumerate(wave_of):
        waves[wave].append(index)
    return waves


def needed_steps(steps: list[PlannedStep], index: int) -> list[int]:
    """The earlier steps whose outputs step ``index`` sees: its dependencies and theirs, in plan order."""
    needed: set[int] = set()
    pending = steps[index].dependencies(index)
    while pending:
        step = pending.pop()
        if step not in needed:
            needed.add(step)
            pending.extend(steps[step].dependencies(step))
    return sorted(needed)


class Question(BaseModel):
    """A question a step (or the planner) put to the user. ``token`` (the workflow's task token) is set
    once the workflow waits for the answer; it never leaves the server."""

    id: str
    key: str  # "plan" or the step index
    question: str
    step_index: int | None = None
    step_title: str | None = None
    recorded_at: str
    asked_at: str | None = None
    token: str | None = None


def oldest_waited_on(questions: Iterable[Question]) -> Question | None:
    """Of the questions the workflow waits on (token set), the one asked first."""
    asked = [q for q in questions if q.token and q.asked_at]
    return min(asked, key=lambda q: (q.asked_at or "", q.id)) if asked else None


class Clarification(BaseModel):
    """A question that was closed: answered, or left without an answer when its wait timed out."""

    id: str
    question: str
    step_index: int | None = None
    answer: str | None = None
    outcome: str  # "answered" | "timed_out"
    asked_at: str | None = None
    closed_at: str
    # The wait's task token, kept (server side) so that a repeated answer can end the wait again.
    token: str | None = None


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class RequestRecord(BaseModel):
    """One request as stored. ``pk`` is derived; ``execution_name`` is fixed when the record is created."""

    model_config = ConfigDict(extra="ignore")

    pk: str
    request_id: str
    key_id: str
    user_id: str
    owner: str
    status: Status
    prompt: str
    fingerprint: str
    session_id: str | None = None
    webhook_url: str | None = None
    formation_id: str
    processing_mode: str = "async"
    mode_reason: str = "forced"
    execution_name: str
    # The first execution's name: step checkpoints live under it, so a redriven request (a new execution)
    # finds the steps that already finished.
    lineage: str = ""
    estimate: dict[str, Any] | None = None
    model_calls: int = 0
    tokens_used: int = 0
    redrive_count: int = 0
    redriven_error: RequestError | None = None
    created_at: str
    started_at: str | None = None
    ended_at: str | None = None
    total_steps: int = 0
    completed_steps: int = 0
    current_step: str | None = None
    status_message: str = "Request accepted"
    steps: list[PlannedStep] = Field(default_factory=list)
    step_attempts: dict[str, int] = Field(default_factory=dict)
    done_steps: set[int] = Field(default_factory=set)
    result: RequestResult | None = None
    usage: Usage | None = None
    error: RequestError | None = None
    duration_ms: int | None = None
    expires_at: float | None = None
    webhook_status: str | None = None
    webhook_attempts: int = 0
    webhook_event: str | None = None
    webhook_last_error: str | None = None
    webhook_delivery_id: str | None = None
    # Open questions by key ("plan" or a step index); the version guards every change to them.
    questions: dict[str, Question] = Field(default_factory=dict)
    questions_version: int = 0
    clarifications: list[Clarification] = Field(default_factory=list)
    awaiting_since: str | None = None
    waited_ms: int = 0

    def current_question(self) -> Question | None:
        """The question clients see: the oldest one the workflow is waiting on."""
        return oldest_waited_on(self.questions.values())

    @property
    def progress(self) -> int:
        """Percent done, derived from the step counters: planning is the first 5 %, the steps the next
        90 %, composing the answer the last 5 %. Only a completed request reports 100."""
        if self.status is Status.COMPLETED:
            return 100
        if self.total_steps == 0:
            return 0
        return 5 + (90 * self.completed_steps) // self.total_steps

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now.timestamp()

    def to_public(
        self,
        artifact_url: Callable[[str], str] | None = None,
        stored_text: Callable[[str], str] | None = None,
    ) -> dict[str, Any]:
        """The status shape of seeds/000: progress fields always, result or error when terminal.
        ``artifact_url`` turns a stored file's key into a (presigned) URL; ``stored_text`` reads a result
        text that outgrew the table."""
        body: dict[str, Any] = {
            "request_id": self.request_id,
            "status": self.status.value,
            "progress": self.progress,
            "current_step": self.current_step,
            "total_steps": self.total_steps,
            "completed_steps": self.completed_steps,
            "message": self.status_message,
            "created_at": self.created_at,
            "updated_at": self.ended_at or self.started_at or self.created_at,
            "processing_mode": self.processing_mode,
            "session_id": self.session_id,
            "key_id": self.key_id,
            "mode_reason": self.mode_reason,
        }
        if self.estimate:
            body["estimate"] = {
                "seconds": self.estimate.get("seconds"),
                "range": [self.estimate.get("low"), self.estimate.get("high")],
                "kind": self.estimate.get("kind"),
                "factors": self.estimate.get("factors", []),
                "history_samples": self.estimate.get("history_samples", 0),
                "complexity": self.estimate.get("complexity", 0.0),
            }
        if self.model_calls:
            body["model_calls"] = self.model_calls
            body["tokens_used"] = self.tokens_used
        if self.redrive_count:
            body["redrive"] = {
                "count": self.redrive_count,
                "previous_error": self.redriven_error.model_dump() if self.redriven_error else None,
            }
        question = self.current_question() if self.status is Status.AWAITING_CLARIFICATION else None
        if question is not None:
            body["clarification"] = {
                "clarification_request_id": question.id,
                "question": question.question,
                "step": question.step_title,
                "asked_at": question.asked_at,
            }
            # MUXI's flat names, as its webhook parser reads them.
            body["clarification_question"] = question.question
            body["clarification_request_id"] = question.id
            body["open_questions"] = sum(1 for q in self.questions.values() if q.token)
        if self.clarifications:
            body["clarifications"] = [
                {
                    "clarification_request_id": c.id,
                    "question": c.question,
                    "answer": c.answer,
                    "outcome": c.outcome,
                    "asked_at": c.asked_at,
                    "closed_at": c.closed_at,
                }
                for c in self.clarifications
            ]
        if self.status is Status.COMPLETED and self.result is not None:
            body["result"] = self.result.model_dump(exclude={"text_key"})
            if self.result.text_key and stored_text is not None:
                body["result"]["text"] = stored_text(self.result.text_key)
            body["result"]["artifacts"] = [
                {
                    "name": item.get("name"),
                    "url": artifact_url(str(item["key"])) if artifact_url and item.get("key") else None,
                    "content_type": item.get("content_type"),
                    "size": item.get("size"),
                }
                for item in self.result.artifacts
                if isinstance(item, dict)
            ]
            body["duration_ms"] = self.duration_ms
            if self.usage is not None:
                body["usage"] = self.usage.model_dump()
        elif self.status is Status.FAILED and self.error is not None:
            body["error"] = self.error.model_dump()
            body["duration_ms"] = self.duration_ms
        elif self.status is Status.CANCELLED:
            # seeds/003: no partial results, empty content.
            body["content"] = ""
        if self.ended_at:
            body["completed_at"] = self.ended_at
        body["delivery"] = "webhook" if self.webhook_url else "polling"
        if self.webhook_url:
            body["webhook"] = {
                # Until the sender reports, an event that will be sent is pending.
                "status": self.webhook_status or ("pending" if self.status.is_terminal else "none"),
                "event": self.webhook_event,
                "attempts": self.webhook_attempts,
                "last_error": self.webhook_last_error,
                "delivery_id": self.webhook_delivery_id,
            }
        return body


def fingerprint_of(payload: dict[str, Any]) -> str:
    """A stable digest of the fields that define a request, to tell a retry from a reused id."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
