"""Questions put to the user: the record fields that open, wait on and close them.

A request may have several open questions (parallel steps can each ask one); it is
``awaiting_clarification`` while the workflow waits on any of them, and ``processing`` again once the
last is closed. Every change replaces the ``questions`` map and bumps ``questions_version``, with a
condition on the version it read, so concurrent askers and answerers never lose each other's writes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asyncagents.domain.statuses import Status
from asyncagents.domain.times import iso, parse_iso
from asyncagents.model_base import LazyModel

if TYPE_CHECKING:
    from asyncagents.domain.records import RequestRecord


class Question(LazyModel):
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


class Clarification(LazyModel):
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


def waiting_fields(record: RequestRecord, keys: str | Iterable[str], token: str, now: datetime) -> dict[str, Any]:
    """Fields for the workflow starting to wait on question ``keys`` (one, or several that share the wait)
    with ``token``; the request becomes (or stays) awaiting_clarification. A question waited on before keeps
    the time it was first asked."""
    chosen = [keys] if isinstance(keys, str) else list(keys)
    waiting = {
        key: record.questions[key].model_copy(
            update={"token": token, "asked_at": record.questions[key].asked_at or iso(now)}
        )
        for key in chosen
    }
    first = min(waiting.values(), key=lambda q: (q.asked_at or "", q.id))
    fields: dict[str, Any] = {
        "questions": _dump({**record.questions, **waiting}),
        "questions_version": record.questions_version + 1,
        "status_message": f"Waiting for the user's answer: {first.question}",
    }
    if record.status is not Status.AWAITING_CLARIFICATION:
        fields["awaiting_since"] = iso(now)
    return fields


def overdue(record: RequestRecord, timeout_seconds: float, now: datetime) -> list[str]:
    """Keys of the questions waited on for ``timeout_seconds`` or longer (a moment early counts: the wait that
    timed out started after they were first asked)."""
    limit = timeout_seconds - 1
    return sorted(
        key
        for key, question in record.questions.items()
        if question.token and question.asked_at and (now - parse_iso(question.asked_at)).total_seconds() >= limit
    )


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
    if any(q.token for q in remaining.values()):  # still waiting: the message names the question clients see now
        shown = oldest_waited_on(remaining.values())
        if shown is not None:
            fields["status_message"] = f"Waiting for the user's answer: {shown.question}"
        return Status.AWAITING_CLARIFICATION, fields, removals
    if record.awaiting_since:
        waited = now - parse_iso(record.awaiting_since)
        fields["waited_ms"] = record.waited_ms + max(0, int(waited.total_seconds() * 1000))
        removals.append("awaiting_since")
    what = "Answer received" if answer is not None else "No answer in time"
    fields["status_message"] = f"{what}; resuming"
    return Status.PROCESSING, fields, removals
