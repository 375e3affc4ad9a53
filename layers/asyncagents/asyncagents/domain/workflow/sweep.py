"""The sweeper: the last line of defence against a request that never ends.

Execution status events are best effort, their handler can fail, and the API can die between writing a
request and starting its workflow. Every few minutes the sweeper reads the requests that are not finished
(a sparse index: never a scan), asks Step Functions about each one older than the grace period, and repairs
it through the same conditional writes as everything else: a workflow that never started is started (its
name is derived from the request, so a start that did happen is not repeated) or, too old to start, failed;
an execution that ended unrecorded is reconciled; a lost one is failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from asyncagents.domain.ports import WorkflowEngine
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import iso, parse_iso
from asyncagents.domain.workflow.context import RequestsContext
from asyncagents.domain.workflow.failures import Failures, fail

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep found: how many unfinished requests it checked, and what it did about them."""

    checked: int = 0
    running: int = 0
    incomplete: bool = False  # it ran out of time; the next sweep goes on (in another order)
    started: int = 0
    reconciled: int = 0
    failed: int = 0
    repaired_keys: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> int:
        return self.started + self.reconciled + self.failed


class Sweeper:
    def __init__(self, context: RequestsContext, engine: WorkflowEngine) -> None:
        self._context = context
        self._engine = engine
        self._failures = Failures(context)

    def sweep(self, *, deadline: float | None = None) -> SweepReport:
        """One pass over every unfinished request older than the grace period, until ``deadline`` (epoch
        seconds) if given."""
        context = self._context
        settings = context.formation.overlord.workflow.sweeper
        report = SweepReport()
        cutoff = iso(context.clock() - timedelta(seconds=settings.grace_seconds))
        for key in context.records.unfinished(created_before=cutoff):
            if deadline is not None and context.clock().timestamp() >= deadline:
                report.incomplete = True
                break
            record = context.records.get(key)
            if record is None or record.status.is_terminal:
                continue  # the index lags the table a little
            report.checked += 1
            try:
                outcome = self._repair(record)
            except Exception:  # one request's trouble never stops the sweep; the next one retries it
                logger.exception("could not sweep request %s", record.request_id)
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome != "running":
                report.repaired_keys.append(key)
                logger.warning("swept request %s (%s): %s", record.request_id, record.status.value, outcome)
        return report

    def _repair(self, record: RequestRecord) -> str:
        if self._age(record) < self._context.formation.overlord.workflow.sweeper.grace_seconds:
            return "running"  # redriven a moment ago: its new execution may be starting right now
        state = self._engine.describe(record.execution_name)
        if state is None:
            return self._never_started(record)
        if state.status == "RUNNING":
            return "running"
        result = self._failures.reconcile(
            record.request_key, record.execution_name, state.status, state.error, state.cause
        )
        return "reconciled" if result.get("reconciled") else "running"

    def _age(self, record: RequestRecord) -> float:
        """Seconds since the request's current execution was meant to start (its creation, or its redrive)."""
        began = record.generation_started_at or record.created_at
        return (self._context.clock() - parse_iso(began)).total_seconds()

    def _never_started(self, record: RequestRecord) -> str:
        """No execution has the request's name: the accept (or a redrive) died before starting it. Started now
        under that name (so a start that did happen meanwhile is not repeated), unless it is too late."""
        context = self._context
        workflow_timeout = context.formation.overlord.workflow.timeouts.workflow_timeout
        if self._age(record) < workflow_timeout:
            self._engine.start(record.execution_name, {"request_key": record.request_key})
            return "started"
        failure = {
            "type": "internal_error",
            "message": "the workflow never started" if record.status is Status.PENDING else "the workflow was lost",
            "retryable": True,
        }
        _, ended = fail(context, record, record.execution_name, failure)
        return "failed" if ended else "running"
