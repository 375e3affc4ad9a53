"""The workflow's side of the lifecycle: the work done by each Task of the state machine.

Plan → run the steps in waves (Map of Maps) → Finish, and MarkFailed from every Catch. The planner or a
step may ask the user a question; the workflow then waits on a task token (AwaitAnswer) and runs the
planner or the step again with the answer. Each function checks the
request's status before it works (a checkpoint) and writes only with a condition on the status, so a
cancelled or timed-out request is never resurrected and a finished step is never run twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from asyncagents.config import FormationConfig
from asyncagents.domain.errors import (
    BudgetExceeded,
    ClarificationAnswered,
    ClarificationRequested,
    RequestEnded,
    StaleWrite,
    StoreContention,
)
from asyncagents.domain.estimator import Estimator
from asyncagents.domain.lifecycle import checkpoint_ttl, terminal_fields
from asyncagents.domain.ports import RequestStore
from asyncagents.domain.questions import (
    PLAN_KEY,
    closing_fields,
    new_question,
    question_key,
    questions_left,
    waiting_fields,
    with_question,
)
from asyncagents.domain.records import (
    PlannedStep,
    RequestRecord,
    Status,
    Usage,
    iso,
    needed_steps,
    parse_iso,
    plan_waves,
    sources_of,
    utc_now,
)
from asyncagents.providers.base import AgentProvider, Artifact, QuestionAndAnswer, StepContext, StepOutput

logger = logging.getLogger(__name__)


class ArtifactSink(Protocol):
    def put(self, key: str, content: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...


# Texts larger than this live in the bucket; the table keeps a preview and the key (items stop at 400 KB).
INLINE_TEXT_BYTES = 64 * 1024
PREVIEW_CHARS = 2000


# Statuses in which the workflow works (a step may run while another step's question waits).
_WORKING = frozenset({Status.PROCESSING, Status.AWAITING_CLARIFICATION})
_QUESTION_WRITE_ATTEMPTS = 5


class IncompleteSteps(Exception):
    """Finish found steps that did not finish (should not happen: the Map ends only when all have)."""


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


def answers_for(record: RequestRecord, step_index: int | None = None) -> list[QuestionAndAnswer]:
    """The questions (and answers) the planner, Finish, or step ``step_index`` sees: the planner's concern
    the whole request, a step's only that step."""
    return [
        QuestionAndAnswer(question=c.question, answer=c.answer, step_index=c.step_index)
        for c in record.clarifications
        if c.step_index is None or (step_index is not None and c.step_index == step_index)
    ]


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


class WorkflowSteps:
    """The domain logic behind the workflow's Lambda tasks."""

    def __init__(
        self,
        store: RequestStore,
        provider: AgentProvider,
        formation: FormationConfig,
        *,
        clock: Callable[[], datetime] = utc_now,
        estimator: Estimator | None = None,
        artifacts: ArtifactSink | None = None,
    ) -> None:
        self._estimator = estimator
        self._artifacts = artifacts
        self._store = store
        self._provider = provider
        self._formation = formation
        self._clock = clock

    def plan(self, request_key: str, execution_name: str) -> dict[str, Any]:
        """Move the request to processing with its plan. Returns ``{proceed, waves}``: the steps
        (``{index, title}``) grouped into waves that run one after the other, each step after the steps
        it depends on.

        A retried Plan whose first attempt already stored the plan reuses it (never plans twice). The
        planner may ask the user a question first: then the question is recorded and
        ``ClarificationRequested`` raised (the workflow waits for the answer and plans again).
        """
        record = self._require(request_key)
        if record.execution_name != execution_name:
            return {"proceed": False, "waves": []}
        needs_plan = record.status is Status.PENDING or (record.status is Status.PROCESSING and not record.steps)
        if needs_plan:
            record = self._make_plan(record, execution_name)
        if record.status.is_terminal or record.execution_name != execution_name:
            return {"proceed": False, "waves": [], "steps": []}
        if not record.steps:
            if PLAN_KEY in record.questions:  # an earlier attempt of this task asked (it outlived its timeout)
                raise ClarificationRequested("the planner's question is not answered yet")
            # Never end the execution with a request that is still ours and unplanned: plan again.
            raise StoreContention("the plan was not stored; retry")
        waves = [[{"index": i, "title": record.steps[i].title} for i in wave] for wave in plan_waves(record.steps)]
        # "steps" for executions started under the previous definition (one Map over all steps).
        return {"proceed": True, "waves": waves, "steps": [step for wave in waves for step in wave]}

    def _make_plan(self, record: RequestRecord, execution_name: str) -> RequestRecord:
        if PLAN_KEY in record.questions:  # asked already; the wait picks it up
            raise ClarificationRequested("the planner's question is not answered yet")
        if record.model_calls:
            self._check_budget(record)
        settings = self._formation.overlord.workflow
        may_ask = settings.clarification.enabled and questions_left(record, settings.clarification.max_questions) > 0
        plan = self._provider.plan(
            record.prompt,
            max_steps=settings.max_steps,
            clarifications=answers_for(record),
            may_ask=may_ask,
        )
        now = self._clock()
        fields: dict[str, Any] = {"usage": ((record.usage or Usage()) + plan.usage).model_dump()}
        if record.status is Status.PENDING:
            fields["started_at"] = iso(now)
        question = plan.clarification_question if may_ask else None
        if question:
            asked = new_question(question, step_index=None, step_title="Planning", now=now)
            fields.update(with_question(record, asked))
            fields["status_message"] = "Planning: a question for the user"
        else:
            steps = [
                step.model_dump() for step in plan.steps or [PlannedStep(title="Answer", instruction=record.prompt)]
            ]
            fields.update(
                {
                    "steps": steps,
                    "total_steps": len(steps),
                    "step_attempts": {str(i): 0 for i in range(len(steps))},
                    "status_message": f"Planned {len(steps)} step{'s' if len(steps) != 1 else ''}",
                }
            )
        try:
            record = self._store.transition(
                record.pk,
                to=Status.PROCESSING,
                allowed_from={record.status},
                set_fields=fields,
                generation=execution_name,
                expected={"questions_version": record.questions_version},
                increments={"model_calls": 1, "tokens_used": plan.usage.input_tokens + plan.usage.output_tokens},
            )
        except StaleWrite as stale:
            return stale.details.get("current") or record
        if question:
            raise ClarificationRequested(f"the planner asks: {question}")
        return record

    def run_step(self, request_key: str, execution_name: str, index: int, title: str) -> dict[str, Any]:
        """Run one planned step, checkpointing before the model call and after it. A step may ask the
        user a question instead: it is recorded and ``ClarificationRequested`` raised."""
        try:
            record = self._store.start_step(
                request_key,
                index,
                generation=execution_name,
                title=title,
                message=f"Working on step {index + 1}: {title}",
            )
        except StaleWrite as stale:
            current: RequestRecord | None = stale.details.get("current")
            reason = "already_done" if current and index in current.done_steps else "not_processing"
            return {"index": index, "skipped": reason}
        if question_key(index) in record.questions:  # asked already (a retried task); the wait picks it up
            raise ClarificationRequested(f"step {index + 1}'s question is not answered yet")
        self._check_budget(record)
        step = record.steps[index]
        lineage = record.lineage or record.execution_name
        # A step sees the outputs of the steps it depends on (the demo ignores them; real models use them).
        needed = set(needed_steps(record.steps, index))
        earlier = self._store.step_outputs(request_key, lineage) if needed else []
        clarification = self._formation.overlord.workflow.clarification
        may_ask = clarification.enabled and questions_left(record, clarification.max_questions) > 0
        context = StepContext(
            request_id=record.request_id,
            message=record.prompt,
            index=index,
            total=len(record.steps),
            attempt=record.step_attempts.get(str(index), 1),
            previous_outputs={
                int(item["index"]): self._full_text(item) for item in earlier if int(item.get("index", -1)) in needed
            },
            clarifications=answers_for(record, index),
            may_ask=may_ask,
        )
        started = self._clock()
        output = self._provider.run_step(step, context)
        if output.clarification_question and may_ask:
            outcome = self._ask(record, execution_name, index, step.title, output)
            if outcome == "asked":
                raise ClarificationRequested(f"step {index + 1} asks: {output.clarification_question}")
            if outcome == "ended":
                return {"index": index, "skipped": "not_processing"}
        calls = 1
        if output.clarification_question:
            # No question may be asked any more (parallel steps used the last ones): do the step without.
            # The call that asked counts (budget, usage) like any other.
            spent = output.usage
            latest = self._require(request_key)  # other steps' calls meanwhile count too
            self._check_budget(
                latest.model_copy(
                    update={
                        "model_calls": latest.model_calls + 1,
                        "tokens_used": latest.tokens_used + spent.input_tokens + spent.output_tokens,
                    }
                )
            )
            context = context.model_copy(update={"may_ask": False})
            output = self._provider.run_step(step, context)
            output = output.model_copy(update={"usage": spent + output.usage})
            calls = 2
        now = self._clock()
        try:
            self._store.finish_step(
                request_key,
                index,
                generation=execution_name,
                lineage=lineage,
                output={
                    "index": index,
                    "title": step.title,
                    **self._text_fields(
                        record, f"steps/{index:04d}.txt", output.text or output.clarification_question or ""
                    ),
                    "usage": output.usage.model_dump(),
                    "attempts": context.attempt,
                    "started_at": iso(started),
                    "finished_at": iso(now),
                },
                message=f"Finished step {index + 1} of {len(record.steps)}: {step.title}",
                tokens=output.usage.input_tokens + output.usage.output_tokens,
                calls=calls,
                ttl=checkpoint_ttl(
                    now,
                    workflow_timeout=self._formation.overlord.workflow.timeouts.workflow_timeout,
                    retention_seconds=self._formation.async_.result_retention_seconds,
                ),
            )
        except StaleWrite:
            current = self._store.get(request_key)
            if (
                current is not None
                and current.status in _WORKING
                and current.execution_name == execution_name
                and index not in current.done_steps
                and question_key(index) in current.questions
            ):
                # An attempt of this step that outlived its timeout asked meanwhile: wait for that answer,
                # then run the step again (its output then replaces this one).
                raise ClarificationRequested(f"step {index + 1} has an open question") from None
            return {"index": index, "skipped": "not_processing"}
        return {"index": index, "done": True}

    def _ask(self, record: RequestRecord, execution_name: str, index: int, title: str, output: StepOutput) -> str:
        """Record the step's question (and its model call): ``"asked"``; ``"limit"`` when the request has
        no question left (checked again under the write's own condition); ``"ended"`` when it moved on."""
        text = output.clarification_question or ""
        question = new_question(text, step_index=index, step_title=title, now=self._clock())
        tokens = output.usage.input_tokens + output.usage.output_tokens
        limit = self._formation.overlord.workflow.clarification.max_questions
        for _ in range(_QUESTION_WRITE_ATTEMPTS):
            if record.status not in _WORKING or record.execution_name != execution_name:
                return "ended"
            if questions_left(record, limit) <= 0:
                return "limit"
            try:
                self._store.transition(
                    record.pk,
                    to=record.status,
                    allowed_from={record.status},
                    set_fields={
                        **with_question(record, question),
                        "usage": ((record.usage or Usage()) + output.usage).model_dump(),
                    },
                    generation=execution_name,
                    expected={"questions_version": record.questions_version},
                    increments={"model_calls": 1, "tokens_used": tokens},
                )
            except StaleWrite as stale:
                record = stale.details.get("current") or self._require(record.pk)
                mine = record.questions.get(question.key)
                if mine is not None and mine.id == question.id:
                    return "asked"  # the write was applied; only its answer was lost (and retried)
                continue
            return "asked"
        raise StoreContention("the request's questions kept changing; retry")

    def await_answer(
        self, request_key: str, execution_name: str, step_index: int | None, task_token: str
    ) -> dict[str, Any]:
        """The workflow starts waiting for the answer to a question: keep its task token (server side
        only) and show the request as awaiting_clarification. Raises ``ClarificationAnswered`` when the
        question is already closed and ``RequestEnded`` when the request is over: both end the wait."""
        key = question_key(step_index)
        for _ in range(_QUESTION_WRITE_ATTEMPTS):
            record = self._require(request_key)
            if record.status not in _WORKING or record.execution_name != execution_name:
                raise RequestEnded(f"the request is {record.status.value}; no answer is awaited")
            if key not in record.questions:
                raise ClarificationAnswered("the question was already closed")
            try:
                self._store.transition(
                    request_key,
                    to=Status.AWAITING_CLARIFICATION,
                    allowed_from=_WORKING,
                    set_fields=waiting_fields(record, key, task_token, self._clock()),
                    generation=execution_name,
                    expected={"questions_version": record.questions_version},
                )
            except StaleWrite:
                continue
            return {"waiting": True}
        raise StoreContention("the request's questions kept changing; retry")

    def answer_timed_out(self, request_key: str, execution_name: str, step_index: int | None) -> dict[str, Any]:
        """No answer came in time. ``on_timeout: fail`` fails the request (``clarification_timeout``);
        ``continue`` closes the question unanswered so the step runs on without it. Returns
        ``{"continue": bool}``; an answer that won the race counts (continue)."""
        key = question_key(step_index)
        settings = self._formation.overlord.workflow.clarification
        for _ in range(_QUESTION_WRITE_ATTEMPTS):
            record = self._require(request_key)
            if record.status not in _WORKING or record.execution_name != execution_name:
                return {"continue": False}
            question = record.questions.get(key)
            if question is None:
                return {"continue": True}
            status, fields, removals = closing_fields(record, key, answer=None, now=self._clock())
            if settings.on_timeout == "fail":
                failure = {
                    "type": "clarification_timeout",
                    "message": f"no answer within {settings.timeout_seconds}s to: {question.question}",
                    "retryable": False,
                }
                # Conditional on the questions as read: an answer stored meanwhile wins (and is used).
                _, failed = self._fail(
                    record,
                    execution_name,
                    failure,
                    extra_fields={k: v for k, v in fields.items() if k != "status_message"},
                    expected={"questions_version": record.questions_version},
                )
                if failed:
                    return {"continue": False}
                continue
            try:
                self._store.transition(
                    request_key,
                    to=status,
                    allowed_from=_WORKING,
                    set_fields=fields,
                    remove_fields=removals,
                    generation=execution_name,
                    expected={"questions_version": record.questions_version},
                )
            except StaleWrite:
                continue
            return {"continue": True}
        raise StoreContention("the request's questions kept changing; retry")

    def finish(self, request_key: str, execution_name: str) -> dict[str, Any]:
        """Compose the answer from the stored step outputs and complete the request."""
        record = self._require(request_key)
        if record.status is not Status.PROCESSING or record.execution_name != execution_name:
            return {"status": record.status.value}
        if record.completed_steps != record.total_steps:
            raise IncompleteSteps(f"{record.completed_steps} of {record.total_steps} steps finished")
        if record.total_steps > 1:  # composing the answer is one more model call
            self._check_budget(record)
        stored = self._store.step_outputs(request_key, record.lineage or record.execution_name)
        outputs = [StepOutput(text=self._full_text(item), usage=Usage(**item.get("usage", {}))) for item in stored]
        answer = self._provider.finish(
            record.prompt,
            outputs,
            clarifications=answers_for(record),
        )
        usage = (record.usage or Usage()) + answer.usage
        for output in outputs:
            usage = usage + output.usage
        now = self._clock()
        try:
            done = self._store.transition(
                request_key,
                to=Status.COMPLETED,
                allowed_from={Status.PROCESSING},
                set_fields={
                    **terminal_fields(
                        record, now=now, retention_seconds=self._formation.async_.result_retention_seconds
                    ),
                    "result": {
                        **self._text_fields(record, "result.txt", answer.text),
                        "artifacts": self._store_artifacts(record, answer.artifacts),
                        "steps": [
                            {
                                "index": int(item.get("index", position)),
                                "title": str(item.get("title", "")),
                                **Usage(**item.get("usage", {})).model_dump(),
                            }
                            for position, item in enumerate(stored)
                        ],
                    },
                    "usage": usage.model_dump(),
                    "status_message": "Completed",
                },
                remove_fields=("current_step",),
                generation=execution_name,
            )
        except StaleWrite as stale:
            current = stale.details.get("current")
            return {"status": current.status.value if current else "unknown"}
        self._learn(done)
        return {"status": done.status.value}

    def _text_fields(self, record: RequestRecord, name: str, text: str) -> dict[str, Any]:
        """``{"text": …}``, or for a text too large for the table ``{"text": preview, "text_key": key}``
        with the whole text in the bucket."""
        content = text.encode()
        if len(content) <= INLINE_TEXT_BYTES or self._artifacts is None:
            return {"text": text}
        key = f"texts/{record.pk.removeprefix('REQ#')}/{record.lineage or record.execution_name}/{name}"
        self._artifacts.put(key, content, "text/plain; charset=utf-8")
        return {"text": text[:PREVIEW_CHARS], "text_key": key}

    def _full_text(self, item: dict[str, Any]) -> str:
        if item.get("text_key") and self._artifacts is not None:
            return self._artifacts.get(str(item["text_key"])).decode()
        return str(item.get("text", ""))

    def _store_artifacts(self, record: RequestRecord, artifacts: list[Artifact]) -> list[dict[str, Any]]:
        """Put each produced file in the artifacts bucket; the result lists them (URLs are made at read)."""
        if not artifacts:
            return []
        if self._artifacts is None:
            raise RuntimeError("the provider produced files but no artifacts bucket is configured")
        stored = []
        for artifact in artifacts:
            content = artifact.content.encode()
            key = (
                f"artifacts/{record.pk.removeprefix('REQ#')}/{record.lineage or record.execution_name}/{artifact.name}"
            )
            self._artifacts.put(key, content, artifact.content_type)
            stored.append(
                {"name": artifact.name, "key": key, "content_type": artifact.content_type, "size": len(content)}
            )
        return stored

    def _check_budget(self, record: RequestRecord) -> None:
        """The checkpoint before a model call: stop the request if the next call would break a limit."""
        budget = self._formation.overlord.workflow.budget
        reasons = []
        if budget.max_model_calls is not None and record.model_calls + 1 > budget.max_model_calls:
            reasons.append(f"{record.model_calls} model calls made, the limit is {budget.max_model_calls}")
        if budget.max_tokens is not None and record.tokens_used >= budget.max_tokens:
            reasons.append(f"{record.tokens_used} tokens used, the limit is {budget.max_tokens}")
        if budget.max_wall_seconds is not None:
            # Time spent waiting for the user's answers is not the agent's.
            now = self._clock()
            waiting = (now - parse_iso(record.awaiting_since)).total_seconds() if record.awaiting_since else 0.0
            elapsed = (now - parse_iso(record.created_at)).total_seconds() - record.waited_ms / 1000 - waiting
            if elapsed > budget.max_wall_seconds:
                reasons.append(f"{elapsed:.0f} s elapsed, the limit is {budget.max_wall_seconds:g} s")
        if reasons:
            raise BudgetExceeded("budget exceeded: " + "; ".join(reasons))

    def _learn(self, record: RequestRecord) -> None:
        """Teach the estimator how long this kind of request really took (best effort)."""
        if self._estimator is None or not record.estimate or record.duration_ms is None:
            return
        try:
            self._estimator.record(
                record.formation_id,
                str(record.estimate["kind"]),
                float(record.estimate["analytic_seconds"]),
                record.duration_ms / 1000,
            )
        except Exception:
            logger.exception("could not record the duration of %s", record.request_id)

    def mark_failed(self, request_key: str, execution_name: str, error: str, cause: str) -> dict[str, Any]:
        """Record a failure caught by the state machine, unless the request already ended."""
        record = self._require(request_key)
        if record.status.is_terminal or record.execution_name != execution_name:
            return {"status": record.status.value}
        failure = describe_failure(error, cause, task_timeout=self._formation.overlord.workflow.timeouts.task_timeout)
        status, _ = self._fail(record, execution_name, failure)
        return {"status": status}

    def reconcile(
        self, request_key: str, execution_name: str, execution_status: str, error: str = "", cause: str = ""
    ) -> dict[str, Any]:
        """An execution ended without the workflow recording it (workflow timeout, a stop that was not
        a cancel, a failure no Catch could take): end the request as failed, so none stays processing."""
        record = self._store.get(request_key)
        if record is None:
            return {"status": "unknown", "reconciled": False}
        if record.status.is_terminal or record.execution_name != execution_name:
            return {"status": record.status.value, "reconciled": False}
        timeouts = self._formation.overlord.workflow.timeouts
        if execution_status == "TIMED_OUT":
            failure = {
                "type": "timeout",
                "message": f"Workflow exceeded timeout ({timeouts.workflow_timeout}s)",
                "retryable": True,
            }
        elif execution_status == "ABORTED":
            failure = {"type": "aborted", "message": "the workflow was stopped before it finished", "retryable": True}
        else:
            failure = describe_failure(error or "States.Runtime", cause, task_timeout=timeouts.task_timeout)
        status, reconciled = self._fail(record, execution_name, failure)
        return {"status": status, "reconciled": reconciled}

    def _fail(
        self,
        record: RequestRecord,
        execution_name: str,
        failure: dict[str, Any],
        *,
        extra_fields: dict[str, Any] | None = None,
        expected: dict[str, Any] | None = None,
    ) -> tuple[str, bool]:
        """End the request as failed (conditionally); returns its status after, and whether this call did it."""
        try:
            failed = self._store.transition(
                record.pk,
                to=Status.FAILED,
                allowed_from=sources_of(Status.FAILED),
                set_fields={
                    **(extra_fields or {}),
                    **terminal_fields(
                        record, now=self._clock(), retention_seconds=self._formation.async_.result_retention_seconds
                    ),
                    "error": failure,
                    "status_message": f"Failed: {failure['message']}",
                },
                remove_fields=("current_step",),
                generation=execution_name,
                expected=expected,
            )
        except StaleWrite as stale:
            current = stale.details.get("current")
            return (current.status.value if current else "unknown"), False
        return failed.status.value, True

    def _require(self, request_key: str) -> RequestRecord:
        record = self._store.get(request_key)
        if record is None:
            # The execution outlived its record (deleted by hand): nothing to do, nothing to resurrect.
            raise LookupError(f"no request record {request_key}")
        return record
