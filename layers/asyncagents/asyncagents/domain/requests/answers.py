"""Answering the questions a request waits on, and resuming its workflow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import Conflict, StaleWrite, Unavailable
from asyncagents.domain.ports import RequestStore, WorkflowEngine
from asyncagents.domain.progress import EventType
from asyncagents.domain.questions import Clarification, Question, closing_fields
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.requests.operations import Lookup
from asyncagents.domain.retry import until_written
from asyncagents.domain.statuses import Status

logger = logging.getLogger(__name__)


class Answers:
    """Stores an answer first (a conditional write on the questions' version), then ends the wait."""

    def __init__(
        self, store: RequestStore, engine: WorkflowEngine, lookup: Lookup, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._engine = engine
        self._lookup = lookup
        self._clock = clock

    def answer(
        self, principal: Principal, request_id: str, answer: str, *, clarification_id: str | None = None
    ) -> RequestRecord:
        """Answer a question the request waits on and resume the workflow.

        ``clarification_id`` names the question; it may be left out while only one question is open.
        The answer is stored first, then the wait is ended with the task token kept on the record.
        Repeating the call with the same id and answer is safe: it stores nothing new and ends the wait
        again (that is the way to finish an answer whose resume failed, a 503). An answer stored after its
        wait timed out still counts: the timeout path finds it and the step runs with it.
        """
        record = self._lookup.get(principal, request_id)
        if clarification_id is not None:
            repeated = _already_answered(record, clarification_id, answer)
            if repeated is not None:
                self._resume(repeated.token, repeated.id)
                return record
        if record.status is not Status.AWAITING_CLARIFICATION:
            raise Conflict(
                f"request {request_id} is {record.status.value}, not awaiting_clarification",
                details={"request_id": request_id, "status": record.status.value},
            )
        current, question = record, _open_question(record, clarification_id)

        def store_answer() -> RequestRecord:
            nonlocal current, question
            status, fields, removals = closing_fields(current, question.key, answer=answer, now=self._clock())
            try:
                updated = self._store.transition(
                    current.request_key,
                    to=status,
                    allowed_from={Status.AWAITING_CLARIFICATION},
                    set_fields=fields,
                    remove_fields=removals,
                    generation=current.execution_name,
                    expected={"questions_version": current.questions_version},
                    event=EventType.ANSWERED,
                )
            except StaleWrite:
                # Another answer, question, timeout or cancel changed the record: the same question still?
                latest = self._lookup.get(principal, request_id)
                repeated = _already_answered(latest, question.id, answer)
                if repeated is not None:  # this very answer was stored (a lost response, or a twin POST)
                    self._resume(repeated.token, repeated.id)
                    return latest
                still_open = next((q for q in latest.questions.values() if q.id == question.id and q.token), None)
                if still_open is None or latest.status is not Status.AWAITING_CLARIFICATION:
                    raise Conflict(
                        f"clarification_request_id {question.id} is no longer open (request {latest.status.value})",
                        details={"request_id": request_id, "status": latest.status.value},
                    ) from None
                current, question = latest, still_open
                raise
            self._resume(question.token, question.id)
            return updated

        return until_written(
            store_answer,
            exhausted=lambda: Unavailable(
                f"request {request_id} changed while the answer was being stored; send it again",
                details={"request_id": request_id},
            ),
        )

    def _resume(self, token: str | None, question_id: str) -> None:
        """End the workflow's wait. A wait that is already over is fine (the timeout path or an earlier
        call used the answer); a failure to reach Step Functions is a 503 the client may repeat."""
        if not token:
            return
        try:
            resumed = self._engine.resume(token, {"answered": True, "clarification_request_id": question_id})
        except Exception:
            logger.exception("could not resume the wait for question %s", question_id)
            raise Unavailable(
                "the answer is stored but the workflow could not be resumed; send the same request again "
                "with clarification_request_id to resume it",
                details={"clarification_request_id": question_id},
            ) from None
        if not resumed:
            logger.info("question %s: the wait had already ended; the stored answer is used", question_id)


def _already_answered(record: RequestRecord, clarification_id: str, answer: str) -> Clarification | None:
    closed = next((c for c in record.clarifications if c.id == clarification_id), None)
    if closed is None:
        return None
    if closed.outcome != "answered" or closed.answer != answer:
        raise Conflict(
            f"clarification_request_id {clarification_id} was already closed ({closed.outcome})"
            + (" with another answer" if closed.outcome == "answered" else ""),
            details={"field": "clarification_request_id", "request_id": record.request_id},
        )
    return closed


def _open_question(record: RequestRecord, clarification_id: str | None) -> Question:
    waiting = [q for q in record.questions.values() if q.token]
    if clarification_id is None:
        if len(waiting) > 1:
            raise Conflict(
                f"{len(waiting)} questions are open: name the one you answer with clarification_request_id",
                details={"field": "clarification_request_id", "open": sorted(q.id for q in waiting)},
            )
        question = waiting[0] if waiting else None
    else:
        question = next((q for q in waiting if q.id == clarification_id), None)
    if question is None:
        raise Conflict(
            f"clarification_request_id {clarification_id} is not an open question of this request",
            details={"field": "clarification_request_id", "request_id": record.request_id},
        )
    return question
