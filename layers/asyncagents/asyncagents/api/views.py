"""Records as clients see them: the flat JSON shapes of seeds/000 (the status body and the 202 answer).

The domain never builds HTTP bodies; this module turns its records into them. ``artifact_url`` turns a
stored file's key into a (presigned) URL and ``stored_text`` reads a text that outgrew the table; both are
``None`` where the function has no bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asyncagents.domain.estimator import Estimate
from asyncagents.domain.progress import ProgressEvent
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import Status

UrlOf = Callable[[str], str]
TextOf = Callable[[str], str]
CostOf = Callable[[int, int], float | None]  # input and output tokens -> estimated dollars (None: no price)


def poll_url(request_id: str) -> str:
    return f"/v1/requests/{request_id}"


def accepted_body(record: RequestRecord) -> dict[str, Any]:
    """The 202 answer of seeds/000: polling delivery with a poll URL, or webhook delivery with the
    estimated time; ``estimated_seconds`` always."""
    status = record.status.value if record.status.is_terminal else Status.PROCESSING.value
    body: dict[str, Any] = {
        "request_id": record.request_id,
        "status": status,
        "delivery": "webhook" if record.webhook_url else "polling",
        "poll_url": poll_url(record.request_id),
    }
    if record.estimate:
        estimate = Estimate.model_validate(record.estimate)
        if record.webhook_url:
            body["estimated_time"] = estimate.range_text()
        body["estimated_seconds"] = estimate.seconds
    return body


def request_body(
    record: RequestRecord,
    artifact_url: UrlOf | None = None,
    stored_text: TextOf | None = None,
    cost_of: CostOf | None = None,
) -> dict[str, Any]:
    """The status shape of seeds/000: progress fields always, result or error when terminal; ours besides (the
    steps and their states, usage and its estimated cost when the formation prices the model)."""
    body: dict[str, Any] = {
        "request_id": record.request_id,
        "status": record.status.value,
        "progress": record.progress,
        "current_step": record.current_step,
        "total_steps": record.total_steps,
        "completed_steps": record.completed_steps,
        "message": record.status_message,
        "created_at": record.created_at,
        "updated_at": record.ended_at or record.started_at or record.created_at,
        "processing_mode": record.processing_mode,
        "session_id": record.session_id,
        "key_id": record.key_id,
        "mode_reason": record.mode_reason,
        **_estimate(record),
        **_usage_and_redrive(record, cost_of),
        **_steps(record),
        **_questions(record),
        **_outcome(record, artifact_url, stored_text),
    }
    if record.ended_at:
        body["completed_at"] = record.ended_at
    if record.trigger:
        body["trigger"] = record.trigger
    if record.schedule:
        body["schedule_job_id"] = record.schedule
    body["delivery"] = "webhook" if record.webhook_url else "polling"
    if record.webhook_url:
        body["webhook"] = {
            # Until the sender reports, an event that will be sent is pending.
            "status": record.webhook_status or ("pending" if record.status.is_terminal else "none"),
            "event": record.webhook_event,
            "attempts": record.webhook_attempts,
            "last_error": record.webhook_last_error,
            "delivery_id": record.webhook_delivery_id,
        }
    return body


def _estimate(record: RequestRecord) -> dict[str, Any]:
    if not record.estimate:
        return {}
    estimate = record.estimate
    return {
        "estimate": {
            "seconds": estimate.get("seconds"),
            "range": [estimate.get("low"), estimate.get("high")],
            "kind": estimate.get("kind"),
            "factors": estimate.get("factors", []),
            # The factors' sum: ``seconds`` above it is the text model's reading of the words (and history's).
            "factors_seconds": estimate.get("factors_seconds", estimate.get("analytic_seconds")),
            "history_samples": estimate.get("history_samples", 0),
        }
    }


def _usage_and_redrive(record: RequestRecord, cost_of: CostOf | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if record.model_calls:
        body["model_calls"] = record.model_calls
        body["tokens_used"] = record.tokens_used
        cost = cost_of(record.input_tokens_used, record.output_tokens_used) if cost_of else None
        if cost is not None:
            body["estimated_cost_usd"] = round(cost, 6)
    if record.redrive_count:
        previous = record.redriven_error.model_dump(exclude_none=True) if record.redriven_error else None
        body["redrive"] = {"count": record.redrive_count, "previous_error": previous}
    return body


def _steps(record: RequestRecord) -> dict[str, Any]:
    """The planned steps, each with its state and attempts. While the request works: ``done``, ``waiting`` (its
    question is open), ``running`` (attempted in this execution) or ``pending``. Once it ended: ``done``,
    ``failed`` (the step whose failure ended it), ``stopped`` (attempted, then ended by something else: a cancel,
    another step's failure, a timeout) or ``not_run``."""
    if not record.steps:
        return {}
    working = not record.status.is_terminal
    failed_step = record.error.step if record.status is Status.FAILED and record.error is not None else None
    steps = []
    for index, step in enumerate(record.steps):
        key = str(index)
        attempts = record.step_attempts.get(key, 0)
        if index in record.done_steps:
            state = "done"
        elif working:
            in_this_execution = attempts - record.attempts_before_redrive.get(key, 0)
            state = "waiting" if key in record.questions else "running" if in_this_execution > 0 else "pending"
        elif index == failed_step:
            state = "failed"
        else:
            state = "stopped" if attempts else "not_run"
        steps.append({"index": index, "title": step.title, "state": state, "attempts": attempts})
    return {"steps": steps}


def _questions(record: RequestRecord) -> dict[str, Any]:
    """The open question (while awaiting an answer) and every closed one."""
    body: dict[str, Any] = {}
    question = record.current_question() if record.status is Status.AWAITING_CLARIFICATION else None
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
        body["open_questions"] = sum(1 for q in record.questions.values() if q.token)
    if record.clarifications:
        body["clarifications"] = [
            {
                "clarification_request_id": c.id,
                "question": c.question,
                "answer": c.answer,
                "outcome": c.outcome,
                "asked_at": c.asked_at,
                "closed_at": c.closed_at,
            }
            for c in record.clarifications
        ]
    return body


def _outcome(record: RequestRecord, artifact_url: UrlOf | None, stored_text: TextOf | None) -> dict[str, Any]:
    """The result of a completed request, the error of a failed one, the empty content of a cancelled one."""
    if record.status is Status.COMPLETED and record.result is not None:
        result = record.result.model_dump(exclude={"text_key"})
        if record.result.text_key and stored_text is not None:
            result["text"] = stored_text(record.result.text_key)
        result["artifacts"] = [
            {
                "name": item.get("name"),
                "url": artifact_url(str(item["key"])) if artifact_url and item.get("key") else None,
                "content_type": item.get("content_type"),
                "size": item.get("size"),
            }
            for item in record.result.artifacts
            if isinstance(item, dict)
        ]
        body: dict[str, Any] = {"result": result, "duration_ms": record.duration_ms}
        if record.usage is not None:
            body["usage"] = record.usage.model_dump()
        return body
    if record.status is Status.FAILED and record.error is not None:
        return {"error": record.error.model_dump(exclude_none=True), "duration_ms": record.duration_ms}
    if record.status is Status.CANCELLED:
        return {"content": ""}  # seeds/003: no partial results, empty content
    return {}


def event_body(request_id: str, event: ProgressEvent, public_body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One progress event as clients see it; the request's last event, once it ended, carries its outcome
    (``public_body``: the request as ``request_body`` shows it)."""
    body = {"request_id": request_id, **event.model_dump()}
    if public_body is not None:
        for name in ("result", "error", "usage", "duration_ms", "completed_at", "content"):
            if name in public_body:
                body[name] = public_body[name]
    return body
