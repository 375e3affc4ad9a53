"""The request record as the domain sees it, and the identity of a request."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from asyncagents.domain.plans import PlannedStep
from asyncagents.domain.questions import Clarification, Question, oldest_waited_on
from asyncagents.domain.statuses import Status
from asyncagents.model_base import LazyModel


def _digest(*parts: str, length: int = 32) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:length]


# The request ids clients may choose (and the ones we generate): safe in paths and logs.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


def request_key(key_id: str, user_id: str, request_id: str) -> str:
    """The opaque key of a request: requests are scoped by API key and end user, and hashing keeps arbitrary
    user ids and request ids out of every name derived from it (execution names, object keys)."""
    return _digest(key_id, user_id, request_id)


# Release 0.1 named a request, in execution inputs, webhook messages and delivery ids, by "REQ#" + its key.
LEGACY_KEY_PREFIX = "REQ#"


def bare_request_key(value: str) -> str:
    """A request key from a message or an execution input, which may have been written by release 0.1
    (``REQ#<key>``): work in flight across an upgrade still finds its request."""
    return value.removeprefix(LEGACY_KEY_PREFIX)


def execution_name_for(key: str, now: datetime, *, redrive: int = 0) -> str:
    """A new execution's name: derived from the request and the moment, so a retried start cannot start
    two, and a redrive never reuses an earlier execution's name (StartExecution would answer with that one)."""
    name = f"{key}-{int(now.timestamp() * 1000)}"
    return f"{name}-r{redrive}" if redrive else name


class RequestError(LazyModel):
    type: str
    message: str
    retryable: bool = False
    step: int | None = None  # the step (0-based) whose failure ended the request, when one did


class RequestResult(LazyModel):
    text: str
    # Set when the text outgrew the table: ``text`` is a preview and the whole text is in the bucket.
    text_key: str | None = None
    artifacts: list[Any] = Field(default_factory=list)
    # Token usage of each step: ``{index, title, input_tokens, output_tokens}`` (the total is ``usage``).
    steps: list[dict[str, Any]] = Field(default_factory=list)


class Usage(LazyModel):
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class RequestRecord(LazyModel):
    """One request as stored. ``request_key`` is derived from its owner and id (``request_key()``);
    ``execution_name`` is fixed when the record is created and changes only on a redrive."""

    model_config = ConfigDict(extra="ignore")

    request_key: str
    request_id: str
    key_id: str
    user_id: str
    status: Status
    prompt: str  # the message, or its preview when it is in the bucket (``prompt_key``: ``domain.messages``)
    prompt_key: str | None = None
    fingerprint: str
    session_id: str | None = None
    trigger: str | None = None  # the trigger that fired the request
    schedule: str | None = None  # the scheduled job that made it
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
    # The Run invocation (its token) whose last step's done write counted the answer's model call already: that
    # invocation composes the answer next without counting it again. Any other invocation (a retry, the next run)
    # counts its own call: a call counted and then made, or made and then retried, is never left uncounted.
    answer_counted: str | None = None
    # The token of the planner's write that stored the plan: a write whose answer was lost knows it was applied.
    planned_by: str | None = None
    tokens_used: int = 0
    # Every call's tokens, kept result or not (an abandoned or cancelled attempt's were paid too): the
    # completed request's ``usage`` is made from them.
    input_tokens_used: int = 0
    output_tokens_used: int = 0
    redrive_count: int = 0
    redriven_error: RequestError | None = None
    # When the current execution's generation began: the creation, or the latest redrive.
    generation_started_at: str | None = None
    created_at: str
    started_at: str | None = None
    ended_at: str | None = None
    total_steps: int = 0
    completed_steps: int = 0
    current_step: str | None = None
    status_message: str = "Request accepted"
    steps: list[PlannedStep] = Field(default_factory=list)
    step_attempts: dict[str, int] = Field(default_factory=dict)
    # The attempts made before the latest redrive: each execution has the whole retry budget for a step.
    attempts_before_redrive: dict[str, int] = Field(default_factory=dict)
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
    # What clients following the request see, one entry per write they care about (``domain.progress``).
    events: list[dict[str, Any]] = Field(default_factory=list)

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

    @property
    def checkpoint_lineage(self) -> str:
        """The name step checkpoints and stored texts live under: the first execution's, so that a redriven
        request (a new execution) finds the steps that already finished."""
        return self.lineage or self.execution_name

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now.timestamp()


def usage_increments(usage: Usage) -> dict[str, int]:
    """The counters one model call's tokens add to (atomically), kept result or not."""
    return {
        "tokens_used": usage.input_tokens + usage.output_tokens,
        "input_tokens_used": usage.input_tokens,
        "output_tokens_used": usage.output_tokens,
    }


def fingerprint_of(payload: dict[str, Any]) -> str:
    """A stable digest of the fields that define a request, to tell a retry from a reused id: 128 bits of SHA-256
    (plenty to tell two requests apart; every write of the record pays for its size)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def same_request(stored: str, fingerprint: str) -> bool:
    """Whether a stored fingerprint is ``fingerprint``'s: records written before it was shortened hold all 256
    bits, which start with the same 128."""
    return stored.startswith(fingerprint)
