"""Plan: move the request to processing with its plan (the steps, and which earlier steps each depends on)."""

from __future__ import annotations

import secrets
from typing import Any

from asyncagents.config import MAX_RESULT_RETENTION_SECONDS
from asyncagents.domain.errors import ClarificationRequested, StaleWrite, StoreContention
from asyncagents.domain.lifecycle import checkpoint_ttl
from asyncagents.domain.plans import PlannedStep, plan_waves
from asyncagents.domain.progress import EventType, entry, planned_message, step_started_message
from asyncagents.domain.questions import PLAN_KEY, new_question, questions_left, with_question
from asyncagents.domain.records import RequestRecord, usage_increments
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import iso
from asyncagents.domain.workflow.context import WorkflowContext, answers_for, text_bytes
from asyncagents.domain.workflow.schedule import breaker_closed
from asyncagents.domain.workflow.texts import LargeTexts


class Planner:
    def __init__(self, context: WorkflowContext, texts: LargeTexts) -> None:
        self._context = context
        self._texts = texts

    def plan(self, request_key: str, execution_name: str) -> dict[str, Any]:
        """Move the request to processing with its plan. Returns ``{proceed, waves}``: the steps
        (``{index, title}``) grouped into waves, each step after the steps it depends on."""
        record = self.planned(request_key, execution_name)
        if record is None:
            return {"proceed": False, "waves": []}
        waves = [[{"index": i, "title": record.steps[i].title} for i in wave] for wave in plan_waves(record.steps)]
        return {"proceed": True, "waves": waves}

    def planned(self, request_key: str, execution_name: str) -> RequestRecord | None:
        return self.planned_and_started(request_key, execution_name)[0]

    def planned_and_started(
        self, request_key: str, execution_name: str, *, start_first: int = 0
    ) -> tuple[RequestRecord | None, list[int]]:
        """``planned``, and the steps the plan's write started: when it plans now, up to ``start_first`` of the
        steps that need no other (the run's first wave) start in that same write (their attempts and model calls
        counted, each with its started entry), while the model's breaker is closed.

        The request with its plan, planned now if it was not yet; ``None`` when the request is no longer
        this execution's to work on (ended, or redriven into another execution).

        A retried run whose first attempt already stored the plan reuses it (never plans twice). The
        planner may ask the user a question first: then the question is recorded and
        ``ClarificationRequested`` raised (the workflow waits for the answer and plans again).
        """
        record = self._context.require(request_key)
        if record.execution_name != execution_name:
            return None, []
        # A plan stored once (``planned_by``) is never made again, even if it could not be read: another call would be
        # paid for a write that is refused.
        unplanned = not record.steps and not record.planned_by
        needs_plan = record.status is Status.PENDING or (record.status is Status.PROCESSING and unplanned)
        started: list[int] = []
        if needs_plan:
            record, started = self._make_plan(record, execution_name, start_first)
        if record.status.is_terminal or record.execution_name != execution_name:
            return None, []
        if not record.steps:
            if PLAN_KEY in record.questions:  # an earlier attempt asked (it outlived its timeout), or a re-run
                raise ClarificationRequested("the planner's question is not answered yet")
            if record.planned_by:
                raise StoreContention("the stored plan could not be read; retry")
            # Never end the execution with a request that is still ours and unplanned: plan again.
            raise StoreContention("the plan was not stored; retry")
        return record, started

    def _make_plan(
        self, record: RequestRecord, execution_name: str, start_first: int
    ) -> tuple[RequestRecord, list[int]]:
        context = self._context
        if PLAN_KEY in record.questions:  # asked already; the wait picks it up
            raise ClarificationRequested("the planner's question is not answered yet")
        if record.model_calls:
            context.check_budget(record)
        settings = context.formation.overlord.workflow
        may_ask = settings.clarification.enabled and questions_left(record, settings.clarification.max_questions) > 0
        answers = answers_for(record)
        message = self._texts.message(record)
        sent = text_bytes(message, *(f"{a.question} {a.answer}" for a in answers))
        context.before_model_call(record, input_bytes=sent)
        context.count_model_call(record.request_key)
        plan = context.provider.plan(message, max_steps=settings.max_steps, clarifications=answers, may_ask=may_ask)
        now = context.clock()
        fields: dict[str, Any] = {}
        if record.status is Status.PENDING:
            fields["started_at"] = iso(now)
        question = plan.clarification_question if may_ask else None
        first: list[int] = []
        # Names this write: one refused because the SDK's retry met it (its answer was lost) was applied all the same.
        token = secrets.token_hex(6)
        if question:
            asked = new_question(question, step_index=None, step_title="Planning", now=now)
            fields.update(with_question(record, asked))
            fields["status_message"] = "Planning: a question for the user"
        else:
            # (The record's text, a preview when the message is in the bucket: the step gets the whole message.)
            planned = plan.steps or [PlannedStep(title="Answer", instruction=record.prompt)]
            steps = [s.model_dump(exclude_defaults=True) for s in planned]  # every write pays for the record's size
            if start_first and breaker_closed(context):
                first = [i for i, step in enumerate(planned) if not step.dependencies(i)][:start_first]
            fields.update(
                {
                    "steps": steps,
                    "total_steps": len(steps),
                    "step_attempts": {str(i): int(i in first) for i in range(len(steps))},
                    "status_message": planned_message(len(steps)),
                    "planned_by": token,
                }
            )
            if first:
                fields["current_step"] = planned[first[-1]].title
                fields["status_message"] = step_started_message(first[-1], planned[first[-1]].title)
        try:
            record = context.records.transition(
                record.request_key,
                to=Status.PROCESSING,
                allowed_from={record.status},
                set_fields=fields,
                generation=execution_name,
                expected={"questions_version": record.questions_version},
                increments={**usage_increments(plan.usage), **({"model_calls": len(first)} if first else {})},
                event=EventType.QUESTION if question else EventType.PLANNED,
                then_events=[entry(EventType.STEP_STARTED, now, step=i) for i in first],
                absent=() if question else ("planned_by",),  # a plan is stored once
                # Every reader of the record needs its plan: kept past the longest retention the record may get (an
                # operator may lengthen it before the request ends), a little storage, never a write more.
                plan_ttl=checkpoint_ttl(
                    now,
                    workflow_timeout=settings.timeouts.workflow_timeout,
                    retention_seconds=MAX_RESULT_RETENTION_SECONDS,
                ),
            )
        except StaleWrite as stale:
            current: RequestRecord | None = stale.details.get("current")
            if not question and current is not None and current.planned_by == token:
                return current, first  # applied; only its answer was lost: the steps it started are this run's
            # Another attempt planned first (or the request ended): this call was paid.
            context.records.add_usage(record.request_key, calls=0, usage=plan.usage)
            return current or record, []
        if question:
            raise ClarificationRequested(f"the planner asks: {question}")
        return record, first
