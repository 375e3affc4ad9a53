"""The webhook body for a request that reached a status, and the delivery id that stays the same on retries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from asyncagents.domain.questions import Question, oldest_waited_on
from asyncagents.domain.records import LEGACY_KEY_PREFIX, RequestRecord, bare_request_key
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import parse_iso

# The statuses a webhook is sent for.
WEBHOOK_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.AWAITING_CLARIFICATION})


def delivery_id(request_key: str, status: str, event_time: str) -> str:
    """Stable per event: the same on every retry, if the event is enqueued twice, and across an upgrade (it
    hashes the request's name as release 0.1 did)."""
    named = LEGACY_KEY_PREFIX + bare_request_key(request_key)
    return "whd_" + hashlib.sha256(f"{named}|{status}|{event_time}".encode()).hexdigest()[:32]


def current_question_of(questions: Any) -> tuple[str, str] | None:
    """``(id, asked_at)`` of the question a request shows, from the raw ``questions`` attribute of a
    stream image; ``None`` when no question is waited on."""
    if not isinstance(questions, dict):
        return None
    try:
        parsed = [Question.model_validate(q) for q in questions.values()]
    except ValidationError:
        return None
    question = oldest_waited_on(parsed)
    return (question.id, question.asked_at or "") if question else None


def event_time_of(record: RequestRecord) -> str:
    """When the event a webhook reports happened; for a question, when it was asked."""
    question = record.current_question() if record.status is Status.AWAITING_CLARIFICATION else None
    if question is not None and question.asked_at:
        return question.asked_at
    return record.ended_at or record.started_at or record.created_at


def snapshot_of(record: RequestRecord) -> dict[str, Any]:
    """The webhook body for the record's current status, taken when the event happens and kept with the event
    until it is delivered (its content mirrors ``GET /v1/requests/{id}``). A text too large for the table and
    the produced files are references here (``text_key``, ``file.key``): ``render`` resolves them at delivery,
    so the snapshot stays small and the file URLs are fresh."""
    response: list[dict[str, Any]] = []
    if record.status is Status.COMPLETED and record.result is not None:
        text: dict[str, Any] = {"type": "text", "text": record.result.text}
        if record.result.text_key:
            text["text_key"] = record.result.text_key
        response.append(text)
        for artifact in record.result.artifacts:
            if isinstance(artifact, dict) and artifact.get("key"):
                response.append({"type": "file", "file": {"name": artifact.get("name"), "key": artifact["key"]}})
    error = None
    if record.status is Status.FAILED and record.error is not None:
        error = {
            "code": record.error.type,
            "type": record.error.type,
            "message": record.error.message,
            "retryable": record.error.retryable,
        }
    body: dict[str, Any] = {
        "id": record.request_id,
        "request_id": record.request_id,
        "status": record.status.value,
        "timestamp": int(parse_iso(event_time_of(record)).timestamp()),
        "response": response,
        "error": error,
        "formation_id": record.formation_id,
        "user_id": record.user_id,
        "processing_time": round(record.duration_ms / 1000, 3) if record.duration_ms is not None else None,
        "processing_mode": record.processing_mode,
    }
    question = record.current_question() if record.status is Status.AWAITING_CLARIFICATION else None
    if question is not None:
        # seeds/000's ``clarification`` object, and the flat names MUXI's webhook parser reads.
        body["clarification"] = {"clarification_request_id": question.id, "question": question.question}
        body["clarification_question"] = question.question
        body["clarification_request_id"] = question.id
        body["original_message"] = record.prompt
        if record.prompt_key:  # the record holds a preview: ``render`` reads the whole message
            body["original_message_key"] = record.prompt_key
    return body


def render(
    snapshot: dict[str, Any],
    artifact_url: Callable[[str], str] | None = None,
    stored_text: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The body sent: the snapshot with its whole text read from the bucket and presigned URLs for its files
    (files are left out where the function has no bucket)."""
    response: list[dict[str, Any]] = []
    for item in snapshot.get("response", []):
        if item.get("type") == "text":
            text = item.get("text", "")
            if item.get("text_key") and stored_text is not None:
                text = stored_text(str(item["text_key"]))  # the whole text, however large
            response.append({"type": "text", "text": text})
        elif item.get("type") == "file" and artifact_url is not None:
            file = item.get("file") or {}
            if file.get("key"):
                response.append(
                    {"type": "file", "file": {"name": file.get("name"), "url": artifact_url(str(file["key"]))}}
                )
    sent = {**snapshot, "response": response}
    message_key = sent.pop("original_message_key", None)
    if message_key and stored_text is not None:
        sent["original_message"] = stored_text(str(message_key))
    return sent


def build_payload(
    record: RequestRecord,
    artifact_url: Callable[[str], str] | None = None,
    stored_text: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The webhook body for the record's current status, as sent now."""
    return render(snapshot_of(record), artifact_url, stored_text)


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
