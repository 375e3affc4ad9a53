"""MarkFailed and Reconcile: a failure the state machine caught, or an execution that ended without the
workflow recording it, ends the request as failed, so that none stays processing."""

from __future__ import annotations

import json
from typing import Any

from asyncagents.domain.errors import StaleWrite
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import Status
from asyncagents.domain.workflow.context import RequestsContext

# Error names the state machine raises itself, mapped to the error types clients see.
_STATES_ERRORS = {
    "States.Timeout": ("timeout", True),
    "Sandbox.Timedout": ("timeout", True),
    "States.HeartbeatTimeout": ("timeout", True),
    "States.TaskFailed": ("task_failed", True),
    "States.Runtime": ("internal_error", False),
}
_PROVIDER_ERRORS = {
    "BudgetExceeded": ("budget_exceeded", False),
    "TransientProviderError": ("provider_error", True),
    "PermanentProviderError": ("provider_error", False),
    "ProviderError": ("provider_error", False),
}


def describe_failure(error: str, cause: str, *, task_timeout: int) -> dict[str, Any]:
    """Turn a Step Functions ``{Error, Cause}`` into the client's ``{type, message, retryable}``."""
    message = cause
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            message = str(parsed["errorMessage"])
    except (TypeError, ValueError):
        pass
    if error in {"States.Timeout", "Sandbox.Timedout"}:
        return {"type": "timeout", "message": f"Task exceeded timeout ({task_timeout}s)", "retryable": True}
    if error in _PROVIDER_ERRORS:
        kind, retryable = _PROVIDER_ERRORS[error]
        return {"type": kind, "message": message or error, "retryable": retryable}
    kind, retryable = _STATES_ERRORS.get(error, ("internal_error", error.startswith("Lambda.")))
    # Anything else is ours or AWS's internals: say what kind, not the raw text (it is in the logs).
    return {"type": kind, "message": f"the workflow failed ({error})", "retryable": retryable}


def fail(
    context: RequestsContext,
    record: RequestRecord,
    execution_name: str,
    failure: dict[str, Any],
    *,
    extra_fields: dict[str, Any] | None = None,
    expected: dict[str, Any] | None = None,
) -> tuple[str, bool]:
    """End the request as failed (conditionally); returns its status after, and whether this call did it."""
    fields = {**(extra_fields or {}), "error": failure, "status_message": f"Failed: {failure['message']}"}
    try:
        failed = context.endings.end(record, Status.FAILED, fields, generation=execution_name, expected=expected)
    except StaleWrite as stale:
        current = stale.details.get("current")
        return (current.status.value if current else "unknown"), False
    return failed.status.value, True


class Failures:
    def __init__(self, context: RequestsContext) -> None:
        self._context = context

    def mark_failed(self, request_key: str, execution_name: str, error: str, cause: str) -> dict[str, Any]:
        """Record a failure caught by the state machine, unless the request already ended."""
        record = self._context.require(request_key)
        if record.status.is_terminal or record.execution_name != execution_name:
            return {"status": record.status.value}
        task_timeout = self._context.formation.overlord.workflow.timeouts.task_timeout
        status, _ = fail(
            self._context, record, execution_name, describe_failure(error, cause, task_timeout=task_timeout)
        )
        return {"status": status}

    def reconcile(
        self, request_key: str, execution_name: str, execution_status: str, error: str = "", cause: str = ""
    ) -> dict[str, Any]:
        """An execution ended without the workflow recording it (workflow timeout, a stop that was not
        a cancel, a failure no Catch could take): end the request as failed, so none stays processing."""
        record = self._context.records.get(request_key)
        if record is None:
            return {"status": "unknown", "reconciled": False}
        if record.status.is_terminal or record.execution_name != execution_name:
            return {"status": record.status.value, "reconciled": False}
        timeouts = self._context.formation.overlord.workflow.timeouts
        if execution_status == "TIMED_OUT":
            failure = {
                "type": "timeout",
                "message": f"Workflow exceeded timeout ({timeouts.workflow_timeout}s)",
                "retryable": True,
            }
        elif execution_status == "ABORTED":
            failure = {"type": "aborted", "message": "the workflow was stopped before it finished", "retryable": True}
        elif execution_status == "SUCCEEDED":  # every path that ends well records the result first
            failure = {
                "type": "internal_error",
                "message": "the workflow ended without recording its outcome",
                "retryable": True,
            }
        else:
            failure = describe_failure(error or "States.Runtime", cause, task_timeout=timeouts.task_timeout)
        status, reconciled = fail(self._context, record, execution_name, failure)
        return {"status": status, "reconciled": reconciled}
