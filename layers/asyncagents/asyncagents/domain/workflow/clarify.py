"""The workflow's side of a question to the user: start waiting on it (AwaitAnswer, with the task token),
and decide what happens when no answer came in time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asyncagents.domain.errors import ClarificationAnswered, QuestionTimedOut, RequestEnded, StaleWrite
from asyncagents.domain.progress import EventType
from asyncagents.domain.questions import PLAN_KEY, closing_fields, overdue, question_key, waiting_fields
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.retry import until_written
from asyncagents.domain.statuses import WORKING, Status
from asyncagents.domain.workflow.context import WorkflowContext
from asyncagents.domain.workflow.failures import fail


class AnswerWaits:
    def __init__(self, context: WorkflowContext) -> None:
        self._context = context

    def await_answer(
        self, request_key: str, execution_name: str, step_index: int | None, task_token: str
    ) -> dict[str, Any]:
        """The workflow starts waiting for the answer to one question: keep its task token (server side
        only) and show the request as awaiting_clarification. Raises ``ClarificationAnswered`` when the
        question is already closed and ``RequestEnded`` when the request is over: both end the wait."""
        key = question_key(step_index)
        return self._wait(
            request_key, execution_name, task_token, lambda record: [key] if key in record.questions else []
        )

    def await_open(self, request_key: str, execution_name: str, task_token: str) -> dict[str, Any]:
        """The workflow starts waiting for the answers to every open question (the planner's, or the steps'
        that asked while the run went on): they share the task token, and any answer ends the wait (the run
        then goes on with it and waits again for the others). Raises ``QuestionTimedOut`` when a question
        has been waited on for the whole timeout already (in an earlier wait)."""
        settings = self._context.formation.overlord.workflow.clarification

        def open_questions(record: RequestRecord) -> list[str]:
            late = overdue(record, settings.timeout_seconds, self._context.clock())
            if late:
                raise QuestionTimedOut(f"{len(late)} question(s) unanswered for {settings.timeout_seconds}s")
            return sorted(record.questions)

        return self._wait(request_key, execution_name, task_token, open_questions)

    def _wait(
        self,
        request_key: str,
        execution_name: str,
        task_token: str,
        keys_of: Callable[[RequestRecord], list[str]],
    ) -> dict[str, Any]:
        context = self._context

        def keep_token() -> dict[str, Any]:
            record = context.require(request_key)
            if record.status not in WORKING or record.execution_name != execution_name:
                raise RequestEnded(f"the request is {record.status.value}; no answer is awaited")
            keys = keys_of(record)
            if not keys:
                raise ClarificationAnswered("the question was already closed")
            context.records.transition(
                request_key,
                to=Status.AWAITING_CLARIFICATION,
                allowed_from=WORKING,
                set_fields=waiting_fields(record, keys, task_token, context.clock()),
                generation=execution_name,
                expected={"questions_version": record.questions_version},
                event=EventType.WAITING,
            )
            return {"waiting": True}

        return until_written(keep_token)

    def answer_timed_out(self, request_key: str, execution_name: str, step_index: int | None) -> dict[str, Any]:
        """No answer came in time. ``on_timeout: fail`` fails the request (``clarification_timeout``);
        ``continue`` closes the question unanswered so the step runs on without it. Returns
        ``{"continue": bool}``; an answer that won the race counts (continue)."""
        context = self._context
        key = question_key(step_index)
        settings = context.formation.overlord.workflow.clarification

        def close_unanswered() -> dict[str, Any]:
            record = context.require(request_key)
            if record.status not in WORKING or record.execution_name != execution_name:
                return {"continue": False}
            question = record.questions.get(key)
            if question is None:
                return {"continue": True}
            status, fields, removals = closing_fields(record, key, answer=None, now=context.clock())
            expected = {"questions_version": record.questions_version}
            if settings.on_timeout == "fail":
                failure = {
                    "type": "clarification_timeout",
                    "message": f"no answer within {settings.timeout_seconds}s to: {question.question}",
                    "retryable": False,
                }
                # Conditional on the questions as read: an answer stored meanwhile wins (and is used).
                extra = {k: v for k, v in fields.items() if k != "status_message"}
                _, failed = fail(context, record, execution_name, failure, extra_fields=extra, expected=expected)
                if not failed:
                    raise StaleWrite("the request changed while the timeout was decided")
                return {"continue": False}
            context.records.transition(
                request_key,
                to=status,
                allowed_from=WORKING,
                set_fields=fields,
                remove_fields=removals,
                generation=execution_name,
                expected=expected,
                event=EventType.ANSWERED,
            )
            return {"continue": True}

        return until_written(close_unanswered)

    def open_timed_out(self, request_key: str, execution_name: str, *, whole_wait: bool) -> dict[str, Any]:
        """The shared wait timed out (``whole_wait``: every question it waited on has waited the timeout, whenever
        the wait's Lambda stamped it), or found a question overdue: close those, each with the formation's
        ``on_timeout``. Returns ``{"continue": bool}``."""
        context = self._context
        settings = context.formation.overlord.workflow.clarification
        record = context.require(request_key)
        if record.status not in WORKING or record.execution_name != execution_name:
            return {"continue": False}
        waited = sorted(key for key, question in record.questions.items() if question.token)
        for key in waited if whole_wait else overdue(record, settings.timeout_seconds, context.clock()):
            outcome = self.answer_timed_out(request_key, execution_name, None if key == PLAN_KEY else int(key))
            if not outcome["continue"]:
                return outcome
        return {"continue": True}
