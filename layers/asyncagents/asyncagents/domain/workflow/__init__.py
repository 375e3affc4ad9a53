"""The workflow's side of the lifecycle: the work done by each Task of the state machine.

Run (plan, the steps, the answer: ``run``), AwaitAnswer and AnswerTimedOut when the planner or a step asked
the user a question (the workflow waits on a task token, then runs again with the answer), and MarkFailed
from every Catch. Each part checks the request's status before it works (a checkpoint) and writes only with a
condition on the status, so a cancelled or timed-out request is never resurrected and a finished step is never
run twice. One module per part; ``WorkflowSteps`` is the entry the task handlers use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asyncagents.config import FormationConfig
from asyncagents.domain.breaker import ModelBreaker
from asyncagents.domain.estimator import Estimator
from asyncagents.domain.ports import AgentProvider, ArtifactSink, RequestStore, StepStore
from asyncagents.domain.times import utc_now
from asyncagents.domain.workflow.clarify import AnswerWaits
from asyncagents.domain.workflow.context import WorkflowContext
from asyncagents.domain.workflow.failures import Failures, describe_failure
from asyncagents.domain.workflow.finish import Finisher, IncompleteSteps
from asyncagents.domain.workflow.plan import Planner
from asyncagents.domain.workflow.run import RequestRun
from asyncagents.domain.workflow.run_step import StepRunner
from asyncagents.domain.workflow.texts import INLINE_TEXT_BYTES, LargeTexts

if TYPE_CHECKING:  # only for annotations: the caps' code loads when a formation has caps
    from asyncagents.domain.spend import SpendCaps

__all__ = ["INLINE_TEXT_BYTES", "IncompleteSteps", "WorkflowSteps", "describe_failure"]


class WorkflowSteps:
    """The domain logic behind the workflow's Lambda tasks, one method per task."""

    def __init__(
        self,
        records: RequestStore,
        checkpoints: StepStore,
        provider: AgentProvider,
        formation: FormationConfig,
        *,
        clock: Callable[[], datetime] = utc_now,
        estimator: Estimator | None = None,
        artifacts: ArtifactSink | None = None,
        breaker: ModelBreaker | None = None,
        spend: SpendCaps | None = None,
    ) -> None:
        context = WorkflowContext(
            records=records,
            checkpoints=checkpoints,
            provider=provider,
            formation=formation,
            clock=clock,
            estimator=estimator,
            artifacts=artifacts,
            breaker=breaker,
            spend=spend if spend is not None and spend.capped else None,
        )
        texts = LargeTexts(artifacts)
        self._planner = Planner(context, texts)
        self._steps = StepRunner(context, texts)
        self._waits = AnswerWaits(context)
        self._finisher = Finisher(context, texts)
        self._failures = Failures(context)
        self._run = RequestRun(context, self._planner, self._steps, self._finisher)

    def run(self, request_key: str, execution_name: str, *, deadline: float) -> dict[str, Any]:
        return self._run.run(request_key, execution_name, deadline=deadline)

    def plan(self, request_key: str, execution_name: str) -> dict[str, Any]:
        return self._planner.plan(request_key, execution_name)

    def run_step(
        self, request_key: str, execution_name: str, index: int, title: str, *, deadline: float | None = None
    ) -> dict[str, Any]:
        return self._steps.run_step(request_key, execution_name, index, title, deadline=deadline)

    def await_answer(
        self, request_key: str, execution_name: str, step_index: int | None, task_token: str
    ) -> dict[str, Any]:
        return self._waits.await_answer(request_key, execution_name, step_index, task_token)

    def await_open(self, request_key: str, execution_name: str, task_token: str) -> dict[str, Any]:
        return self._waits.await_open(request_key, execution_name, task_token)

    def open_timed_out(self, request_key: str, execution_name: str, *, whole_wait: bool) -> dict[str, Any]:
        return self._waits.open_timed_out(request_key, execution_name, whole_wait=whole_wait)

    def answer_timed_out(self, request_key: str, execution_name: str, step_index: int | None) -> dict[str, Any]:
        return self._waits.answer_timed_out(request_key, execution_name, step_index)

    def finish(self, request_key: str, execution_name: str) -> dict[str, Any]:
        return self._finisher.finish(request_key, execution_name)

    def mark_failed(self, request_key: str, execution_name: str, error: str, cause: str) -> dict[str, Any]:
        return self._failures.mark_failed(request_key, execution_name, error, cause)

    def reconcile(
        self, request_key: str, execution_name: str, execution_status: str, error: str = "", cause: str = ""
    ) -> dict[str, Any]:
        return self._failures.reconcile(request_key, execution_name, execution_status, error, cause)
