"""RunStep: one planned step, checkpointed before the model call (the write that marks it running) and after
it (its output stored, then the write that counts it done). A step may ask the user a question instead."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from asyncagents.domain.agents import StepContext, StepOutput
from asyncagents.domain.errors import BudgetExceeded, CircuitOpen, ClarificationRequested, RunContinues, StaleWrite
from asyncagents.domain.lifecycle import checkpoint_ttl
from asyncagents.domain.plans import needed_steps
from asyncagents.domain.progress import EventType, step_finished_message, step_started_message
from asyncagents.domain.questions import new_question, question_key, questions_left, with_question
from asyncagents.domain.records import RequestRecord, usage_increments
from asyncagents.domain.retry import until_written
from asyncagents.domain.statuses import WORKING
from asyncagents.domain.times import iso
from asyncagents.domain.workflow.context import WorkflowContext, answers_for, text_bytes
from asyncagents.domain.workflow.schedule import Schedule, Started, give_back
from asyncagents.domain.workflow.texts import LargeTexts

_SPEND_WAIT_MARGIN_SECONDS = 5
# How long the step that may be the last waits for the other done writes in flight: a DynamoDB write takes
# milliseconds, and an attempt's call ends a second before the run's deadline, which waits one more second for its
# writes (``run._WRITE_MARGIN_SECONDS``, ``run._ABANDON_AFTER_SECONDS``): half a second leaves room for both writes.
_DONE_WRITE_WAIT_SECONDS = 0.5


def _step_bytes(record: RequestRecord, index: int, context: StepContext) -> int:
    """What a step's call sends: the request, its instruction, its dependencies' outputs, its questions."""
    asked = (f"{a.question} {a.answer}" for a in context.clarifications)
    return text_bytes(context.message, record.steps[index].instruction, *context.previous_outputs.values(), *asked)


class StepRunner:
    def __init__(self, context: WorkflowContext, texts: LargeTexts) -> None:
        self._context = context
        self._texts = texts

    def run_step(
        self,
        request_key: str,
        execution_name: str,
        index: int,
        title: str,
        *,
        deadline: float | None = None,
        outputs: dict[int, str] | None = None,
        started: Started | None = None,
        schedule: Schedule | None = None,
    ) -> dict[str, Any]:
        """Run one planned step. Returns ``{index, done}``, or ``{index, skipped}`` when the step finished
        already or the request moved on; raises ``ClarificationRequested`` when the step asks the user.
        ``deadline`` (epoch seconds) is when this attempt's function is stopped: the provider never waits past it.
        ``outputs`` holds the outputs of steps finished by this run (a step's is added when it is counted done):
        a step whose dependencies are all there reads none back from the table. ``started``: another write started
        this attempt already (a wave's, or the done write of the step before). ``schedule``: the run's, whose
        waiting steps this step's done write may start."""
        context = self._context
        if started is None:
            context.before_model_call()  # CircuitOpen: no attempt counted, no call
            try:
                record = context.records.start_step(
                    request_key,
                    index,
                    generation=execution_name,
                    title=title,
                    message=step_started_message(index, title),
                    derived=True,
                )
            except StaleWrite as stale:
                context.model_call_not_made()
                current: RequestRecord | None = stale.details.get("current")
                reason = "already_done" if current and index in current.done_steps else "not_processing"
                return {"index": index, "skipped": reason}
        else:
            record = started.record
            try:
                context.before_model_call()
            except BaseException:  # CircuitOpen: the attempt and the call counted for it are given back
                give_back(context, request_key, index)
                raise
        # The start counted the call this attempt is about to make (before it is made: a call an attempt makes and
        # never reports, because it was stopped, is paid all the same). Not made after all: uncounted. A start
        # written with other steps' also counted theirs: the budget check counts those started before this one.
        counted_after = started.counted_after if started is not None else 0
        before = record.model_copy(update={"model_calls": record.model_calls - 1 - counted_after})
        try:
            if question_key(index) in record.questions:  # asked already (a retried task); the wait picks it up
                raise ClarificationRequested(f"step {index + 1}'s question is not answered yet")
            context.check_budget(before)
            step_context = self._step_context(before, index, deadline, outputs or {})
            # A wait for calls in flight ends early enough that a cap reached is not mistaken for a timeout.
            wait_until = deadline - _SPEND_WAIT_MARGIN_SECONDS if deadline is not None else None
            context.reserve_spend(before, input_bytes=_step_bytes(record, index, step_context), wait_until=wait_until)
        except Exception:
            context.model_call_not_made()
            with contextlib.suppress(StaleWrite):
                context.records.add_usage(request_key, calls=-1)
            raise
        began = context.clock()
        output = context.provider.run_step(record.steps[index], step_context)
        if output.clarification_question:
            if step_context.may_ask:
                outcome = self.ask(record, execution_name, index, output)
                if outcome == "asked":
                    raise ClarificationRequested(f"step {index + 1} asks: {output.clarification_question}")
                if outcome == "ended":
                    self._discard(record, execution_name, output)
                    return {"index": index, "skipped": "not_processing"}
            output = self._without_asking(record, index, step_context, output)
        return self._checkpoint(
            record,
            execution_name,
            index,
            output,
            attempt=step_context.attempt,
            started=began,
            schedule=schedule,
            outputs=outputs,
        )

    def _step_context(
        self, record: RequestRecord, index: int, deadline: float | None, known: dict[int, str]
    ) -> StepContext:
        """What the step sees: the outputs of the steps it depends on (and theirs), its questions so far."""
        context = self._context
        needed = set(needed_steps(record.steps, index))
        previous = {i: known[i] for i in needed if i in known}
        if len(previous) < len(needed):  # finished in an earlier run (or attempt): read back
            for item in context.checkpoints.outputs(record.request_key, record.checkpoint_lineage):
                if int(item.get("index", -1)) in needed - set(previous):
                    previous[int(item["index"])] = self._texts.full_text(item)
        if len(previous) < len(needed):  # gone meanwhile (never without its output): the next run makes it again
            raise RunContinues(f"the stored outputs of steps {sorted(needed - set(previous))} are gone")
        clarification = context.formation.overlord.workflow.clarification
        return StepContext(
            request_id=record.request_id,
            message=self._texts.message(record),
            index=index,
            total=len(record.steps),
            attempt=record.step_attempts.get(str(index), 1),
            previous_outputs=dict(sorted(previous.items())),
            clarifications=answers_for(record, index),
            may_ask=clarification.enabled and questions_left(record, clarification.max_questions) > 0,
            deadline=deadline,
        )

    def _without_asking(
        self, record: RequestRecord, index: int, step_context: StepContext, asked: StepOutput
    ) -> StepOutput:
        """No question may be asked any more (parallel steps used the last ones): do the step without. The
        call that asked counts (budget, usage) like any other, and so do other steps' calls meanwhile."""
        context = self._context
        spent = asked.usage
        latest = context.require(record.request_key)  # its calls include the one that asked
        context.check_budget(
            latest.model_copy(update={"tokens_used": latest.tokens_used + spent.input_tokens + spent.output_tokens})
        )
        try:
            context.before_model_call(record, input_bytes=_step_bytes(record, index, step_context))
        except (CircuitOpen, BudgetExceeded):
            self._discard(record, "", asked)  # the call that asked was paid
            raise
        context.count_model_call(record.request_key)
        output = context.provider.run_step(record.steps[index], step_context.model_copy(update={"may_ask": False}))
        return output.model_copy(update={"usage": spent + output.usage})

    def _checkpoint(
        self,
        record: RequestRecord,
        execution_name: str,
        index: int,
        output: StepOutput,
        *,
        attempt: int,
        started: Any,
        schedule: Schedule | None = None,
        outputs: dict[int, str] | None = None,
    ) -> dict[str, Any]:
        """Store the step's output, then count it done while the request is still this execution's (starting, in
        the same write, the waiting steps its being done makes ready: ``schedule`` hands them over); a step counted
        done puts its text in ``outputs`` before its successors can run."""
        context = self._context
        step = record.steps[index]
        now = context.clock()
        stored = {
            "index": index,
            "title": step.title,
            **self._texts.fields(record, f"steps/{index:04d}.txt", output.text or output.clarification_question or ""),
            "usage": output.usage.model_dump(),
            "attempts": attempt,
            "started_at": iso(started),
            "finished_at": iso(now),
        }
        ttl = checkpoint_ttl(
            now,
            workflow_timeout=context.formation.overlord.workflow.timeouts.workflow_timeout,
            retention_seconds=context.formation.async_.result_retention_seconds,
        )
        # The output first: a step counted done always has its output.
        context.checkpoints.put_output(record.request_key, record.checkpoint_lineage, index, stored, ttl=ttl)
        successors = schedule.claim_after(index) if schedule is not None else []
        # The last step's done write counts the answer's call too (one write less), when this run composes the answer
        # next; the step that may be the last waits a moment for the other done writes in flight to know it is.
        with _done_write(schedule, index) as last:
            count_answer = last and not successors and len(record.steps) > 1
            try:
                written = context.records.count_step_done(
                    record.request_key,
                    index,
                    generation=execution_name,
                    message=step_finished_message(index, len(record.steps), step.title),
                    derived=True,
                    usage=output.usage,
                    then_start=[(i, record.steps[i].title) for i in successors],
                    start_message=step_started_message(successors[-1], record.steps[successors[-1]].title)
                    if successors
                    else "",
                    count_answer=schedule.run_token if count_answer and schedule is not None else None,
                )
            except BaseException as error:
                current = context.records.get(record.request_key) if isinstance(error, StaleWrite) else None
                if successors and current is not None and _applied(current, record, index, successors):
                    # The write happened and only its answer was lost (the SDK's retry then met its own write): the
                    # successors are started, once.
                    return self._counted(record, index, output, current, successors, schedule, outputs)
                if schedule is not None:
                    schedule.release(successors)
                if not isinstance(error, StaleWrite):
                    raise
                self._discard(record, execution_name, output)  # its result is not kept; its call was paid
                if (
                    current is not None
                    and current.status in WORKING
                    and current.execution_name == execution_name
                    and index not in current.done_steps
                    and question_key(index) in current.questions
                ):
                    # An attempt of this step that outlived its timeout asked meanwhile: wait for that answer,
                    # then run the step again (its output then replaces this one).
                    raise ClarificationRequested(f"step {index + 1} has an open question") from None
                if current is not None and current.execution_name == execution_name and index in current.done_steps:
                    return {"index": index, "skipped": "already_done"}  # another attempt of it counted it first
                return {"index": index, "skipped": "not_processing"}
            return self._counted(record, index, output, written, successors, schedule, outputs)

    def _counted(
        self,
        record: RequestRecord,
        index: int,
        output: StepOutput,
        written: RequestRecord,
        successors: list[int],
        schedule: Schedule | None,
        outputs: dict[int, str] | None,
    ) -> dict[str, Any]:
        """Step ``index`` is counted done (``written``): its text for its successors, which it hands over."""
        if outputs is not None:
            outputs[index] = output.text
        if schedule is not None:
            schedule.counted(index, answer=written.answer_counted == schedule.run_token)
        if schedule is not None and successors and not schedule.hand_over(successors, written):
            for successor in successors:  # the run stopped meanwhile: their starts go back
                give_back(self._context, record.request_key, successor)
        return {"index": index, "done": True}

    def _discard(self, record: RequestRecord, execution_name: str, output: StepOutput) -> None:
        """A call whose result is not kept was paid all the same: its tokens count (whatever execution the
        request is in by now; only a request that no longer exists has nowhere to count them)."""
        with contextlib.suppress(StaleWrite):
            self._context.records.add_usage(record.request_key, calls=0, usage=output.usage)

    def ask(self, record: RequestRecord, execution_name: str, index: int, output: StepOutput) -> str:
        """Record the step's question (and its model call): ``"asked"``; ``"limit"`` when the request has
        no question left (checked again under the write's own condition); ``"ended"`` when it moved on."""
        context = self._context
        question = new_question(
            output.clarification_question or "",
            step_index=index,
            step_title=record.steps[index].title,
            now=context.clock(),
        )
        limit = context.formation.overlord.workflow.clarification.max_questions
        current = record

        def record_question() -> str:
            nonlocal current
            if current.status not in WORKING or current.execution_name != execution_name:
                return "ended"
            if questions_left(current, limit) <= 0:
                return "limit"
            try:
                context.records.transition(
                    current.request_key,
                    to=current.status,
                    allowed_from={current.status},
                    set_fields=with_question(current, question),
                    generation=execution_name,
                    expected={"questions_version": current.questions_version},
                    increments=usage_increments(output.usage),
                    event=EventType.QUESTION,
                )
            except StaleWrite as stale:
                current = stale.details.get("current") or context.require(current.request_key)
                mine = current.questions.get(question.key)
                if mine is not None and mine.id == question.id:
                    return "asked"  # the write was applied; only its answer was lost (and retried)
                raise
            return "asked"

        return until_written(record_question)


@contextlib.contextmanager
def _done_write(schedule: Schedule | None, index: int) -> Iterator[bool]:
    """Around step ``index``'s done write: whether it is the run's last (``Schedule.begin_done_write``)."""
    if schedule is None:
        yield False
        return
    last = schedule.begin_done_write(index, wait=_DONE_WRITE_WAIT_SECONDS)
    try:
        yield last
    finally:
        schedule.end_done_write(index)


def _applied(current: RequestRecord, before: RequestRecord, index: int, successors: list[int]) -> bool:
    """Whether a refused done write that also started ``successors`` had in fact been applied: the step is done and
    each successor has exactly one attempt more than when this attempt began (only this write starts them)."""
    return index in current.done_steps and all(
        current.step_attempts.get(str(j), 0) == before.step_attempts.get(str(j), 0) + 1 for j in successors
    )
