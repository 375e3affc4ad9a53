"""Domain errors. The API maps each to an HTTP status in one place (``asyncagents.api.errors``)."""

from __future__ import annotations

from typing import Any


class AsyncAgentsError(Exception):
    """Base class of every error this package raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ConfigError(AsyncAgentsError):
    """The formation file or the function environment is invalid."""

    code = "config_error"


class BadRequest(AsyncAgentsError):
    """The client sent something we cannot accept (names the field in ``details``)."""

    code = "bad_request"


class Unauthorized(AsyncAgentsError):
    code = "unauthorized"


class Forbidden(AsyncAgentsError):
    code = "forbidden"


class NotFound(AsyncAgentsError):
    code = "not_found"


class InvalidData(AsyncAgentsError):
    """Well-formed input that cannot be used (a trigger's data lacks a field its template needs): 422, with
    ``details.field`` naming it."""

    code = "validation_error"


class Conflict(AsyncAgentsError):
    """The request contradicts the stored state (reused id with another body, cancel after completion)."""

    code = "conflict"


class RequestExpired(Conflict):
    """A request id (or idempotency key) names a request that ended and whose result expired: it stays taken for
    the idempotency window, so a late retry never runs the work twice (``details.request_id`` names it)."""

    @classmethod
    def of(cls, request_id: str, taken_until: str) -> RequestExpired:
        return cls(
            f"request {request_id} ended and its result expired; its id stays taken until {taken_until} so that a "
            "retry never runs it twice",
            details={"request_id": request_id, "reason": "result_expired"},
        )


class TooManyRequests(AsyncAgentsError):
    """A limit of the caller's key is reached (``details.limit`` names it); ``retry_after_seconds`` says when to
    try again."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={**(details or {}), "retry_after_seconds": retry_after_seconds})
        self.retry_after_seconds = retry_after_seconds


class Unavailable(AsyncAgentsError):
    """A service we depend on failed after our own write succeeded; the same call, repeated, completes it."""

    code = "unavailable"


class CircuitOpen(Unavailable):
    """The model provider failed too many times in a row: no call is made until the breaker's cool-down ends
    (the workflow waits in Step Functions; a new request is refused when the formation says so)."""

    code = "model_unavailable"

    def __init__(self, message: str, *, retry_after_seconds: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after_seconds, **(details or {})})
        self.retry_after_seconds = retry_after_seconds


class StaleWrite(AsyncAgentsError):
    """A conditional write lost: the record is no longer in the status the writer expected.

    Workers treat this as "someone else (a cancel, a timeout) got there first" and stop quietly.
    """

    code = "stale_write"


class StoreContention(AsyncAgentsError):
    """A write collided with a concurrent transaction on the same item; retrying is safe and needed.

    The workflow's Retry lists this name (it is the Lambda error type the state machine sees).
    """

    code = "store_contention"


class BudgetExceeded(AsyncAgentsError):
    """A request reached one of its limits (model calls, tokens, wall time). Not retried; the steps that
    finished are kept."""

    code = "budget_exceeded"


class ProviderError(AsyncAgentsError):
    """An agent provider failed. ``retryable`` decides whether the workflow's Retry applies."""

    code = "provider_error"
    retryable = False


class TransientProviderError(ProviderError):
    """Throttling, 5xx, timeouts: worth retrying with backoff."""

    retryable = True


class PermanentProviderError(ProviderError):
    """Bad request, auth, content refused: retrying cannot help."""

    retryable = False


# The errors below are raised by workflow tasks on purpose: the state machine's Catch routes on their
# class names (the Lambda error type), so their names are part of the state machine's contract.


class ClarificationRequested(AsyncAgentsError):
    """A step (or the planner) asked the user a question: the workflow waits for the answer, then runs
    the step again."""

    code = "clarification_requested"


class ClarificationAnswered(AsyncAgentsError):
    """The question a wait was about is already closed (answered, or given up on): run the step again."""

    code = "clarification_answered"


class RequestEnded(AsyncAgentsError):
    """The request ended (cancelled, failed) or moved to another execution: nothing is worth waiting for."""

    code = "request_ended"


class QuestionTimedOut(AsyncAgentsError):
    """A question has been waited on for the whole clarification timeout: apply the formation's on_timeout."""

    code = "question_timed_out"


class RequestFailed(AsyncAgentsError):
    """A step failed for good; the failure is already recorded on the request (the execution ends failed)."""

    code = "request_failed"


class RunContinues(AsyncAgentsError):
    """The run has no time left for another attempt: the workflow runs again at once and resumes."""

    code = "run_continues"


class InvalidCursor(BadRequest):
    """A list cursor this API did not return (or one for another caller)."""
