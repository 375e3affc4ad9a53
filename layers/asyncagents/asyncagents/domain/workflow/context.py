"""What every workflow task shares: its dependencies, the record it works on, and the checks before a call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from asyncagents.config import FormationConfig
from asyncagents.domain.agents import QuestionAndAnswer
from asyncagents.domain.breaker import ModelBreaker
from asyncagents.domain.errors import BudgetExceeded, StaleWrite, StoreContention
from asyncagents.domain.estimator import Estimator
from asyncagents.domain.lifecycle import Endings
from asyncagents.domain.plans import needed_steps
from asyncagents.domain.ports import AgentProvider, ArtifactSink, RequestStore, StepStore
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import WORKING
from asyncagents.domain.times import parse_iso, utc_now

if TYPE_CHECKING:  # only for annotations: the caps' code loads when a formation has caps
    from asyncagents.domain.spend import SpendCaps

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class RequestsContext:
    """What every writer of the workflow's side needs: the records, the formation, a clock."""

    records: RequestStore
    formation: FormationConfig
    clock: Callable[[], datetime] = utc_now
    endings: Endings = field(init=False)

    def __post_init__(self) -> None:
        self.endings = Endings(
            self.records, retention_seconds=self.formation.async_.result_retention_seconds, clock=self.clock
        )

    def require(self, request_key: str) -> RequestRecord:
        record = self.records.get(request_key)
        if record is None:
            # The execution outlived its record (deleted by hand): nothing to do, nothing to resurrect.
            raise LookupError(f"no request record {request_key}")
        return record


@dataclass(kw_only=True)
class WorkflowContext(RequestsContext):
    """The dependencies of the workflow's tasks: the records' and also the checkpoints, the provider, the
    estimator and the bucket."""

    checkpoints: StepStore
    provider: AgentProvider
    estimator: Estimator | None = None
    artifacts: ArtifactSink | None = None
    breaker: ModelBreaker | None = None
    spend: SpendCaps | None = None

    def with_outputs_stored(self, record: RequestRecord, execution_name: str) -> RequestRecord | None:
        """The record a run works from, where every step counted done has its output stored: one whose output is
        gone (past its ttl: redriven again long after, or a retention lengthened since) is counted not done and runs
        again, and so do the done steps made from it (they needed it): a step never runs before a step it needs,
        nor after one it needs ran again. ``None`` when the request moved on meanwhile."""
        done = {i for i in record.done_steps if i < len(record.steps)}
        gone = done - self.checkpoints.stored_indexes(record.request_key, record.checkpoint_lineage) if done else done
        if not gone:
            return record
        forgotten = sorted(i for i in done if i in gone or gone & set(needed_steps(record.steps, i)))
        logger.warning("the stored outputs of steps %s are gone: steps %s run again", sorted(gone), forgotten)
        try:
            return self.records.forget_done(record.request_key, forgotten, generation=execution_name)
        except StaleWrite as stale:
            current: RequestRecord | None = stale.details.get("current")
            if current is None or current.status not in WORKING or current.execution_name != execution_name:
                return None
            # Still this execution's: another invocation of it forgot them first. Run again, from the record as it is.
            raise StoreContention("the steps whose outputs are gone were being counted again; retry") from None

    def answered_since(self, record: RequestRecord) -> bool:
        """Whether a question open in ``record`` (as a run began: its step left waiting) was closed since. Its wait
        ended already (it shared the one the run came out of): waiting for the other questions would leave its step
        idle until they are answered. (A request ended or redriven meanwhile: the next run finds it so.)"""
        if not record.questions:
            return False
        still_open = self.require(record.request_key).questions
        return any(key not in still_open for key in record.questions)

    def before_model_call(self, record: RequestRecord | None = None, *, input_bytes: int = 0) -> None:
        """Before a call is counted: the breaker's say (``CircuitOpen`` while the provider is failing), then, with
        the ``record`` the call is for, the spend caps' (``reserve_spend``)."""
        if self.breaker is not None:
            self.breaker.check()
        if record is not None:
            try:
                self.reserve_spend(record, input_bytes=input_bytes)
            except BaseException:
                self.model_call_not_made()
                raise

    def reserve_spend(self, record: RequestRecord, *, input_bytes: int = 0, wait_until: float | None = None) -> None:
        """Hold the call's reservation (``input_bytes``: the text it sends) against the spend caps of ``record``'s
        key and the formation, or raise ``BudgetExceeded`` naming the cap without room."""
        if self.spend is not None:
            self.spend.reserve(record.key_id, input_bytes=input_bytes, wait_until=wait_until)

    def count_model_call(self, request_key: str) -> None:
        """Count the call ``before_model_call`` admitted, before it is made (a call an attempt makes and never
        reports is paid all the same); if the count cannot be written, the call is not made."""
        try:
            self.records.add_usage(request_key, calls=1)
        except BaseException:
            self.model_call_not_made()
            raise

    def model_call_not_made(self) -> None:
        """The call checked by ``before_model_call`` is not made after all: the breaker forgets it, the spend caps
        get its reservation back."""
        if self.breaker is not None:
            self.breaker.not_called()
        if self.spend is not None:
            self.spend.release()

    def check_budget(self, record: RequestRecord) -> None:
        """The checkpoint before a model call: stop the request if the next call would break a limit."""
        budget = self.formation.overlord.workflow.budget
        reasons = []
        if budget.max_model_calls is not None and record.model_calls + 1 > budget.max_model_calls:
            reasons.append(f"{record.model_calls} model calls made, the limit is {budget.max_model_calls}")
        if budget.max_tokens is not None and record.tokens_used >= budget.max_tokens:
            reasons.append(f"{record.tokens_used} tokens used, the limit is {budget.max_tokens}")
        if budget.max_wall_seconds is not None:
            # Time spent waiting for the user's answers is not the agent's.
            now = self.clock()
            waiting = (now - parse_iso(record.awaiting_since)).total_seconds() if record.awaiting_since else 0.0
            elapsed = (now - parse_iso(record.created_at)).total_seconds() - record.waited_ms / 1000 - waiting
            if elapsed > budget.max_wall_seconds:
                reasons.append(f"{elapsed:.0f} s elapsed, the limit is {budget.max_wall_seconds:g} s")
        if reasons:
            raise BudgetExceeded("budget exceeded: " + "; ".join(reasons))


def text_bytes(*texts: str | None) -> int:
    """The size of what a call sends, for its spend reservation."""
    return sum(len(text.encode()) for text in texts if text)


def answers_for(record: RequestRecord, step_index: int | None = None) -> list[QuestionAndAnswer]:
    """The questions (and answers) the planner, Finish, or step ``step_index`` sees: the planner's concern
    the whole request, a step's only that step."""
    return [
        QuestionAndAnswer(question=c.question, answer=c.answer, step_index=c.step_index)
        for c in record.clarifications
        if c.step_index is None or (step_index is not None and c.step_index == step_index)
    ]
