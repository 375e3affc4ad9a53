"""What the application measures, named once: each fact (a request accepted or ended, a model call, a webhook
delivery outcome, a trigger or schedule firing, a sweep) becomes a set of measures that a ``Telemetry`` port
publishes (CloudWatch metrics from EMF log lines on Lambda; README, "Monitoring").

Dimensions stay low-cardinality (the stack, set by the adapter); what names one request (its id) goes in the
metadata, which CloudWatch keeps in the log line and never turns into a metric dimension.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

COUNT, MILLISECONDS = "Count", "Milliseconds"

# The request outcomes, each a metric of its own; a timed-out request is not counted as failed as well.
REQUESTS_ACCEPTED = "RequestsAccepted"
REQUESTS_COMPLETED = "RequestsCompleted"
REQUESTS_FAILED = "RequestsFailed"
REQUESTS_TIMED_OUT = "RequestsTimedOut"
REQUESTS_CANCELLED = "RequestsCancelled"
REQUESTS_THROTTLED = "RequestsThrottled"
REQUEST_DURATION = "RequestDuration"
TIME_TO_FIRST_PROGRESS = "TimeToFirstProgress"
CLARIFICATIONS = "Clarifications"
UNFINISHED_REQUESTS = "UnfinishedRequests"
# The Run task's errors that route the workflow (a question, a run that goes on, a failure recorded): Lambda counts
# them as errors, the run function's alarm takes them off.
RUN_HANDOVERS = "RunHandovers"
WEBHOOK_ATTEMPTS = "WebhookAttempts"
WEBHOOK_OUTCOMES = {"delivered": "WebhookDelivered", "retry": "WebhookRetried", "dead": "WebhookDead"}
MODEL_CALLS, MODEL_LATENCY, MODEL_THROTTLES, MODEL_ERRORS = (
    "ModelCalls",
    "ModelLatency",
    "ModelThrottles",
    "ModelErrors",
)

Measures = dict[str, tuple[float, str]]
# Bedrock's ThrottlingException / TooManyRequestsException, an OpenAI-style 429 or "rate limit" answer.
_THROTTLING = re.compile(r"throttl|too ?many ?requests|rate[ _-]?limit|\b(?:http|status)[ :]*429\b", re.IGNORECASE)


class Telemetry(Protocol):
    """Publishes measures (name → value and unit); ``metadata`` travels with them, never as a dimension."""

    def emit(self, measures: Mapping[str, tuple[float, str]], *, metadata: Mapping[str, Any] | None = None) -> None: ...


class NoTelemetry:
    """Measures nothing (``observability.track_async_tasks: false`` for the request metrics; unit tests)."""

    def emit(self, measures: Mapping[str, tuple[float, str]], *, metadata: Mapping[str, Any] | None = None) -> None:
        return None


NO_TELEMETRY = NoTelemetry()


MODEL_CIRCUIT_OPENED, MODEL_CIRCUIT_CLOSED = "ModelCircuitOpened", "ModelCircuitClosed"


def breaker_change(*, opened: bool) -> Measures:
    return {MODEL_CIRCUIT_OPENED if opened else MODEL_CIRCUIT_CLOSED: (1, COUNT)}


SPEND_CAP_REACHED = "SpendCapReached"


def spend_cap_reached() -> Measures:
    return {SPEND_CAP_REACHED: (1, COUNT)}


def run_handover() -> Measures:
    return {RUN_HANDOVERS: (1, COUNT)}


def request_accepted() -> Measures:
    return {REQUESTS_ACCEPTED: (1, COUNT)}


def request_change(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> Measures:
    """The measures of one change of a request record (its images, as the table's stream has them): an end
    (the outcome, the duration, the time until the work began, the steps, the model calls and tokens) or the
    start of a wait for a person's answer. Anything else measures nothing."""
    if not new:
        return {}
    status, before = str(new.get("status")), str((old or {}).get("status"))
    if status == before:
        return {}
    if status == "awaiting_clarification":
        return {CLARIFICATIONS: (1, COUNT)}
    if status not in ("completed", "failed", "cancelled") or before in ("completed", "failed", "cancelled"):
        return {}
    error = new.get("error") or {}
    outcome = {
        "completed": REQUESTS_COMPLETED,
        "cancelled": REQUESTS_CANCELLED,
        "failed": REQUESTS_TIMED_OUT if error.get("type") == "timeout" else REQUESTS_FAILED,
    }[status]
    measures: Measures = {outcome: (1, COUNT)}
    created, started, ended = (_time(new.get(name)) for name in ("created_at", "started_at", "ended_at"))
    if created and ended:
        duration = new.get("duration_ms")
        measures[REQUEST_DURATION] = (
            float(duration) if duration is not None else (ended - created) * 1000,
            MILLISECONDS,
        )
    if created and started:
        measures[TIME_TO_FIRST_PROGRESS] = (max(0.0, (started - created) * 1000), MILLISECONDS)
    measures["RequestSteps"] = (float(new.get("total_steps") or 0), COUNT)
    measures["RequestModelCalls"] = (float(new.get("model_calls") or 0), COUNT)
    tokens = int(new.get("input_tokens_used") or 0) + int(new.get("output_tokens_used") or 0)
    measures["RequestTokens"] = (float(tokens or new.get("tokens_used") or 0), COUNT)
    return measures


def model_call(latency_seconds: float, *, tokens: int = 0, error: BaseException | None = None) -> Measures:
    """One call to the model: its latency, tokens, and whether it was throttled or failed."""
    measures: Measures = {MODEL_CALLS: (1, COUNT), MODEL_LATENCY: (latency_seconds * 1000, MILLISECONDS)}
    if tokens:
        measures["ModelTokens"] = (float(tokens), COUNT)
    if error is not None:
        measures[MODEL_THROTTLES if is_throttling(error) else MODEL_ERRORS] = (1, COUNT)
    return measures


def is_throttling(error: BaseException) -> bool:
    """Whether a provider's error says the model's quota was hit (Bedrock's ThrottlingException, HTTP 429)."""
    return bool(_THROTTLING.search(f"{type(error).__name__} {error}"))


NOTICE_OUTCOMES = {"delivered": "NoticesSent", "dead": "NoticesDead"}


def webhook_outcome(kind: str, channel: str = "webhook") -> Measures:
    """One delivery attempt and how it ended (delivered, to be retried, dead-lettered; skipped is no attempt). A
    notice (Slack, e-mail) has metrics of its own: a broken Slack URL says nothing of the webhooks' health."""
    if channel != "webhook":
        return {NOTICE_OUTCOMES[kind]: (1, COUNT)} if kind in NOTICE_OUTCOMES else {}
    if kind not in WEBHOOK_OUTCOMES:
        return {}
    return {WEBHOOK_ATTEMPTS: (1, COUNT), WEBHOOK_OUTCOMES[kind]: (1, COUNT)}


def trigger_fired() -> Measures:
    return {"TriggerFires": (1, COUNT)}


def trigger_signature_rejected() -> Measures:
    return {"TriggerSignatureRejections": (1, COUNT)}


def schedule_slot(*, duplicate: bool) -> Measures:
    """A scheduled slot that submitted its request, or one delivered again and suppressed."""
    return {"ScheduleDuplicateSlots" if duplicate else "ScheduleFires": (1, COUNT)}


def sweep(checked: int, repaired: int, unfinished: int) -> Measures:
    """A sweep's findings, and the requests not finished at that moment (the dashboard's queue depth)."""
    return {
        "SweeperChecked": (float(checked), COUNT),
        "SweeperRepairs": (float(repaired), COUNT),
        UNFINISHED_REQUESTS: (float(unfinished), COUNT),
    }


def _time(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
