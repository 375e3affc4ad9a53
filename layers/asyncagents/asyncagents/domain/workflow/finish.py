"""Finish: compose the answer from the stored step outputs and complete the request."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from asyncagents.domain.agents import StepOutput
from asyncagents.domain.errors import RunContinues, StaleWrite
from asyncagents.domain.records import RequestRecord, Usage, usage_increments
from asyncagents.domain.statuses import Status
from asyncagents.domain.workflow.context import WorkflowContext, answers_for, text_bytes
from asyncagents.domain.workflow.texts import LargeTexts

logger = logging.getLogger(__name__)


class IncompleteSteps(Exception):
    """Finish found steps that did not finish (should not happen: the Map ends only when all have)."""


class Finisher:
    def __init__(self, context: WorkflowContext, texts: LargeTexts) -> None:
        self._context = context
        self._texts = texts

    def finish(self, request_key: str, execution_name: str, *, run_token: str | None = None) -> dict[str, Any]:
        """Compose the answer from the stored step outputs and complete the request. ``run_token``: the Run
        invocation composing it (its last step's done write may have counted the answer's call for it)."""
        context = self._context
        record = context.require(request_key)
        counted = run_token is not None and record.answer_counted == run_token
        if record.status is not Status.PROCESSING or record.execution_name != execution_name:
            if counted:  # ended meanwhile (cancelled, timed out): the call counted for this invocation is not made
                with contextlib.suppress(StaleWrite):
                    context.records.uncount_answer(request_key, run_token or "")
            return {"status": record.status.value}
        if record.completed_steps != record.total_steps:
            raise IncompleteSteps(f"{record.completed_steps} of {record.total_steps} steps finished")
        # Composing the answer is one more model call, counted before it is made: by the last step's done write
        # already (``answer_counted``, for this invocation), else here. Not made after all (a limit, the breaker):
        # given back. Once this invocation makes the call, it is spent: a retry (another invocation) counts its own.
        composes = record.total_steps > 1
        counted = composes and counted
        try:
            if composes:
                context.check_budget(record.model_copy(update={"model_calls": record.model_calls - counted}))
            stored = context.checkpoints.outputs(request_key, record.checkpoint_lineage)
            gone = sorted(set(range(record.total_steps)) - {int(item.get("index", -1)) for item in stored})
            if gone:  # past their ttl: never an answer without them; the next run runs them again
                raise RunContinues(f"the stored outputs of steps {gone} are gone; the next run makes them again")
            outputs = [StepOutput(text=self._texts.full_text(i), usage=Usage(**i.get("usage", {}))) for i in stored]
            message = self._texts.message(record)
            if composes:
                context.before_model_call(record, input_bytes=text_bytes(message, *(o.text for o in outputs)))
        except BaseException:
            if counted:
                with contextlib.suppress(StaleWrite):
                    context.records.uncount_answer(request_key, run_token or "")
            raise
        if composes and not counted:
            context.count_model_call(request_key)
        answer = context.provider.finish(message, outputs, clarifications=answers_for(record))
        # Every call's tokens, the plan's, each attempt's (kept or not) and this one's.
        spent = Usage(input_tokens=record.input_tokens_used, output_tokens=record.output_tokens_used)
        usage = spent + answer.usage
        result = {
            **self._texts.fields(record, "result.txt", answer.text),
            "artifacts": self._texts.store_artifacts(record, answer.artifacts),
            "steps": [
                {
                    "index": int(item.get("index", position)),
                    "title": str(item.get("title", "")),
                    **Usage(**item.get("usage", {})).model_dump(),
                }
                for position, item in enumerate(stored)
            ],
        }
        fields = {"result": result, "usage": usage.model_dump(), "status_message": "Completed"}
        try:
            done = context.endings.end(
                record,
                Status.COMPLETED,
                fields,
                allowed_from={Status.PROCESSING},
                generation=execution_name,
                increments=usage_increments(answer.usage),
            )
        except StaleWrite as stale:
            with contextlib.suppress(StaleWrite):
                context.records.add_usage(request_key, calls=0, usage=answer.usage)  # paid, not kept
            current = stale.details.get("current")
            return {"status": current.status.value if current else "unknown"}
        self._learn(done)
        return {"status": done.status.value}

    def _learn(self, record: RequestRecord) -> None:
        """Teach the estimator how long this kind of request really took (best effort)."""
        estimator = self._context.estimator
        if estimator is None or not record.estimate or record.duration_ms is None:
            return
        try:
            estimator.record(
                record.formation_id,
                str(record.estimate["kind"]),
                float(record.estimate["analytic_seconds"]),
                # The agent's time: the user's, answering its questions, is not what the estimate foretells.
                (record.duration_ms - record.waited_ms) / 1000,
                analysis=str(record.estimate.get("analysis", "")),  # estimates before the text model: the table's
            )
        except Exception:
            logger.exception("could not record the duration of %s", record.request_id)
