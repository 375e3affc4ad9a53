"""Questions put to the user: the record fields that open, wait on and close them.

A request may have several open questions (parallel steps can each ask one); it is
``awaiting_clarification`` while the workflow waits on any of them, and ``processing`` again once the
last is closed. Every change replaces the ``questions`` map and bumps ``questions_version``, with a
condition on the version it read, so concurrent askers and answerers never lose each other's writes.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from asyncagents.domain.records import Clarification, Question, RequestRecord, Status, iso, parse_iso

PLAN_KEY = "plan"
QUESTION_CHARS = 1000


def question_key(step_index: int | None) -> str:
    return PLAN_KEY if step_index is None else str(step_index)


def new_question(text: str, *, step_index: int | None, step_title: str | None, now: datetime) -> Question:
    return Question(
        id="clr_" + secrets.token_hex(8),
        key=question_key(step_index),
        question=text.strip()[:QUESTION_CHARS],
        step_index=step_index,
        step_title=step_title,
        recorded_at=iso(now),
    )


def questions_left(record: RequestRecord, max_questions: int) -> int:
    return max(0, max_questions - len(record.clarifications) - len(record.questions))


def _dump(questions: dict[str, Question]) -> dict[str, Any]:
    return {key: question.model_dump() for key, question in questions.items()}


def with_question(record: RequestRecord, question: Question) -> dict[str, Any]:
    """Fields that add ``question`` (not yet waited on) to the record."""
    return {
        "questions": _dump({**record.questions, question.key: question}),
        "questions_version": record.questions_version + 1,
    }


def waiting_fields(record: RequestRecord, key: str, token: str, now: datetime) -> dict[str, Any]:
    """Fields for the workflow starting to wait on question ``key`` with ``token``; the request becomes
    (or stays) awaiting_clarification."""
    question = record.questions[key]
    waiting = question.model_copy(update={"token": token, "asked_at": question.asked_at or iso(now)})
    fields: dict[str, Any] = {
        "questions": _dump({**record.questions, key: waiting}),
        "questions_version": record.questions_version + 1,
        "status_message": f"Waiting for the user's answer: {waiting.question}",
    }
    if record.status is not Status.AWAITING_CLARIFICATION:
        fields["awaiting_since"] = iso(now)
    return fields


def closing_fields(
    record: RequestRecord, key: str, *, answer: str | None, now: datetime
) -> tuple[Status, dict[str, Any], list[str]]:
    """The status, fields to set and fields to remove that close question ``key`` (answered, or timed
    out when ``answer`` is ``None``). The request goes back to processing when no other question is
    waited on."""
    question = record.questions[key]
    remaining = {k: q for k, q in record.questions.items() if k != key}
    closed = Clarification(
        id=question.id,
        question=question.question,
        step_index=question.step_index,
        answer=answer,
        outcome="answered" if answer is not None else "timed_out",
        asked_at=question.asked_at,
        closed_at=iso(now),
        token=question.token,
    )
    fields: dict[str, Any] = {
        "questions": _dump(remaining),
        "questions_version": record.questions_version + 1,
        "clarifications": [c.model_dump() for c in [*record.clarifications, closed]],
    }
    removals: list[str] = []
    still_waiting = any(q.token for q in remaining.values())
    if still_waiting:
        return Status.AWAITING_CLARIFICATION, fields, removals
    if record.awaiting_since:
        waited = now - parse_iso(record.awaiting_since)
        fields["waited_ms"] = record.waited_ms + max(0, int(waited.total_seconds() * 1000))
        removals.append("awaiting_since")
    what = "Answer received" if answer is not None else "No answer in time"
    fields["status_message"] = f"{what}; resuming"
    return Status.PROCESSING, fields, removals
