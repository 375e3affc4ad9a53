"""Run: the whole request in one workflow task — plan, every step, the answer.

Each state a Standard workflow enters is billed, so the steps run here rather than as states: a step starts as
soon as the steps it depends on are done (up to ``max_concurrency`` at once, on threads: a step waits on the
model), each attempt with its own deadline (``task_timeout``), failed attempts retried with exponential backoff
and full jitter up to ``retry.max_attempts`` per execution. Everything durable is where it was: each step is
checkpointed before and after its model call, the attempts are counted on the record, and a run that dies is
run again by the state machine's Retry, which skips the steps already done.

A run ends in one of these ways:

- the answer is composed (``{"status": "completed"}``), or the request was ended meanwhile (cancelled, timed
  out: ``{"status": ...}``);
- a step failed for good: the failure is recorded and ``RequestFailed`` raised (the execution fails);
- the planner or a step asked the user: ``ClarificationRequested`` once the steps that could go on are done
  (the workflow waits for the answers, then runs again);
- not enough time is left in this invocation for another attempt: ``RunContinues`` (the workflow runs again at
  once, resuming from the checkpoints).
"""

from __future__ import annotations

import contextvars
import random
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from asyncagents.domain.errors import (
    BudgetExceeded,
    CircuitOpen,
    ClarificationRequested,
    ProviderError,
    RequestFailed,
    RunContinues,
    StoreContention,
    TransientProviderError,
)
from asyncagents.domain.questions import question_key
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import WORKING
from asyncagents.domain.workflow.context import WorkflowContext
from asyncagents.domain.workflow.failures import describe_failure, fail
from asyncagents.domain.workflow.finish import Finisher
from asyncagents.domain.workflow.plan import Planner
from asyncagents.domain.workflow.run_step import StepRunner
from asyncagents.domain.workflow.schedule import Schedule, Started, Starts, give_back_answer

# An attempt that ends this close to its deadline (or after it) ran out of time: a timeout, not its error.
_DEADLINE_SLACK_SECONDS = 0.1
# An attempt starts only when it can end this long before the run's deadline: its checkpoint writes need a moment.
# (A Run task lasts at least task_timeout + 5 s, so a fresh run always has time for one attempt.)
_WRITE_MARGIN_SECONDS = 1.0
# How long past the run's deadline the run waits for attempts that ignore theirs before it gives up on them.
_ABANDON_AFTER_SECONDS = 1.0
_ALL = 1_000_000  # no limit on the steps started at once


@dataclass
class _Outcome:
    """How one step's attempts ended: ``done``, ``asked``, ``failed`` (with ``failure``), ``ended`` (the
    request moved on), ``out_of_time`` or ``stopped`` (the run is stopping)."""

    kind: str
    failure: dict[str, Any] | None = None
    retry_after: int = 0  # circuit_open: when the model may be tried again


@dataclass
class _Progress:
    done: set[int]
    running: dict[Future[_Outcome], int] = field(default_factory=dict)
    asked: bool = False
    out_of_time: bool = False
    ended: bool = False
    failure: dict[str, Any] | None = None
    error: BaseException | None = None
    circuit_open: int = 0  # seconds until the model provider's breaker lets calls through again
    answer_counted: bool = False  # the last step's done write counted the answer's call for this invocation
    composing: bool = False  # the answer is being composed (its call made, or given back, by the finisher)

    @property
    def stopping(self) -> bool:
        return self.ended or self.failure is not None or self.error is not None


class RequestRun:
    def __init__(
        self,
        context: WorkflowContext,
        planner: Planner,
        steps: StepRunner,
        finisher: Finisher,
        *,
        now: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._context = context
        self._planner = planner
        self._steps = steps
        self._finisher = finisher
        self._now = now
        self._jitter = jitter
        self._starts = Starts(context)

    def run(self, request_key: str, execution_name: str, *, deadline: float) -> dict[str, Any]:
        """Run the request as far as it goes in this invocation; ``deadline`` (epoch seconds) is when the
        invocation is stopped. See the module for how it ends."""
        # Planned now, the plan's write starts the first steps too (one write less), when they can run now.
        has_time = self._now() + self._task_timeout() + _WRITE_MARGIN_SECONDS <= deadline
        first = (self._context.formation.overlord.workflow.max_concurrency or _ALL) if has_time else 0
        record, started = self._planner.planned_and_started(request_key, execution_name, start_first=first)
        if record is not None:
            record = self._context.with_outputs_stored(record, execution_name)
        if record is None:
            current = self._context.records.get(request_key)
            return {"status": current.status.value if current else "unknown"}
        # This invocation's token: the last step's done write counts the answer's call for it alone.
        run_token = secrets.token_hex(6)
        progress = self._run_steps(record, execution_name, deadline, started_by_plan=started, run_token=run_token)
        try:
            return self._after_steps(progress, record, execution_name, deadline, run_token)
        finally:
            if progress.answer_counted and not progress.composing:
                # The last step's write counted the answer's call for this invocation, which ends without making it
                # (out of time, asked, stopped): given back; the next invocation counts its own.
                give_back_answer(self._context, request_key, run_token)

    def _after_steps(
        self, progress: _Progress, record: RequestRecord, execution_name: str, deadline: float, run_token: str
    ) -> dict[str, Any]:
        """How the run ends once its steps stopped: failed, asked, continued, or the answer composed."""
        request_key = record.request_key
        if progress.error is not None:
            raise progress.error
        if progress.failure is not None:
            status, _ = fail(self._context, self._context.require(request_key), execution_name, progress.failure)
            if status == "failed":
                raise RequestFailed(progress.failure["message"])
            return {"status": status}
        if progress.ended:
            current = self._context.require(request_key)
            if current.status not in WORKING or current.execution_name != execution_name:
                return {"status": current.status.value}
            progress.out_of_time = True  # still ours (an attempt lost a race with another): the next run goes on
        if progress.asked:
            if self._context.answered_since(record):  # its wait is over: its step would idle
                raise RunContinues("a question was answered while the run worked; the next run goes on with it")
            raise ClarificationRequested("a question is waiting for the user's answer")
        if progress.circuit_open:  # the workflow waits (in Step Functions) and runs again
            raise CircuitOpen("the model provider's breaker is open", retry_after_seconds=progress.circuit_open)
        if len(progress.done) < len(record.steps) or progress.out_of_time:
            raise RunContinues(f"{len(progress.done)} of {len(record.steps)} steps done; the run goes on")
        if self._now() + self._task_timeout() + _WRITE_MARGIN_SECONDS > deadline:
            raise RunContinues("every step is done; the answer is composed by the next run, which has the time")
        progress.composing = True  # the finisher makes the call, or gives its count back
        return self._finisher.finish(request_key, execution_name, run_token=run_token)

    def _task_timeout(self) -> int:
        return self._context.formation.overlord.workflow.timeouts.task_timeout

    def _run_steps(
        self, record: RequestRecord, execution_name: str, deadline: float, *, started_by_plan: list[int], run_token: str
    ) -> _Progress:
        """Start every step whose dependencies are done, until none is left, running or startable (``started_by_plan``:
        those the plan's write started already)."""
        steps = record.steps
        progress = _Progress(done={i for i in record.done_steps if i < len(steps)})
        waiting = [i for i in range(len(steps)) if i not in progress.done]
        # A step whose question is still open waits for its answer (and so do the steps after it).
        if [i for i in waiting if question_key(i) in record.questions]:
            progress.asked = True
            waiting = [i for i in waiting if question_key(i) not in record.questions]
        if not waiting:
            return progress
        limit = self._context.formation.overlord.workflow.max_concurrency or len(waiting)  # 0: unbounded
        stop = threading.Event()

        def may_start() -> bool:
            return not (stop.is_set() or progress.stopping or progress.out_of_time or progress.circuit_open) and (
                self._now() + self._task_timeout() + _WRITE_MARGIN_SECONDS <= deadline
            )

        schedule = Schedule(steps, waiting, progress.done, limit=limit, may_start=may_start, run_token=run_token)
        counted: dict[Future[_Outcome], int] = {}  # the futures of steps started by another write
        outputs: dict[int, str] = {}  # the steps this run finishes: their dependents need not read them back
        pool = ThreadPoolExecutor(max_workers=min(limit, len(waiting)), thread_name_prefix="step")
        try:
            if started_by_plan:
                schedule.started_by_plan(started_by_plan, record)
            while True:
                if may_start():
                    for index, started in self._starts.take_ready(schedule, record, execution_name).items():
                        # The context (log correlation, the local stack's IAM role) goes with the step.
                        call = contextvars.copy_context().run
                        future = pool.submit(
                            call,
                            self._attempts,
                            record,
                            execution_name,
                            index,
                            deadline,
                            stop,
                            outputs,
                            started,
                            schedule,
                        )
                        progress.running[future] = index
                        if started is not None:
                            counted[future] = index
                if not progress.running:
                    return progress
                finished, _ = wait(
                    progress.running,
                    timeout=max(0.0, deadline + _ABANDON_AFTER_SECONDS - self._now()),
                    return_when=FIRST_COMPLETED,
                )
                if not finished:  # attempts that ignore their deadline: left behind, each counted as timed out
                    self._abandon(progress, record.request_key)
                    return progress
                for future in finished:
                    index = progress.running.pop(future)
                    schedule.finished(index, done=self._note(progress, index, future))
                if progress.stopping:
                    return progress
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            # Started by another write and never run (handed over too late, or cancelled in the pool's queue): the
            # starts go back. (A step that did begin gives its own back, if unused.)
            unused = [*schedule.close(), *(index for future, index in counted.items() if future.cancelled())]
            for index in unused:
                self._starts.give_back(record.request_key, index)
            progress.answer_counted = schedule.answer_counted

    def _abandon(self, progress: _Progress, request_key: str) -> None:
        """Attempts still running past the run's deadline are given up on: one that was the step's last allowed
        attempt fails the request as a timeout; the others are retried by the next run."""
        current = self._context.require(request_key)
        allowed = self._context.formation.overlord.workflow.retry.max_attempts
        for index in progress.running.values():
            if self._attempts_made(current, index) >= allowed:
                message = f"step {index + 1} ran past its deadline"
                failure = describe_failure("States.Timeout", message, task_timeout=self._task_timeout())
                progress.failure = {**failure, "step": index}
                return
        progress.out_of_time = True

    @staticmethod
    def _note(progress: _Progress, index: int, future: Future[_Outcome]) -> bool:
        """Take in how step ``index``'s attempts ended; True when it is done."""
        error = future.exception()
        if error is not None:
            progress.error = error
            return False
        outcome = future.result()
        if outcome.kind == "done":
            return True
        if outcome.kind == "asked":
            progress.asked = True
        elif outcome.kind == "failed" and outcome.failure is not None:
            progress.failure = {**outcome.failure, "step": index}
        elif outcome.kind == "ended":
            progress.ended = True
        elif outcome.kind == "out_of_time":
            progress.out_of_time = True
        elif outcome.kind == "circuit_open":
            progress.circuit_open = max(progress.circuit_open, outcome.retry_after)
        return False

    def _attempts(
        self,
        record: RequestRecord,
        execution_name: str,
        index: int,
        deadline: float,
        stop: threading.Event,
        outputs: dict[int, str],
        started: Started | None = None,
        schedule: Schedule | None = None,
    ) -> _Outcome:
        """Attempt step ``index`` until it is done, fails for good, asks, or the run runs out of time. ``started``:
        its first attempt was started by another write (given back if it never runs)."""
        unused = [started] if started is not None else []  # the first attempt takes it
        try:
            settings = self._context.formation.overlord.workflow
            task_timeout = settings.timeouts.task_timeout
            title = record.steps[index].title
            # The attempts made before this one: a start by another write is counted in the record that write returned.
            made = self._attempts_made(started.record, index) - 1 if started else self._attempts_made(record, index)
            while not stop.is_set():
                began = self._now()
                if began + task_timeout + _WRITE_MARGIN_SECONDS > deadline:
                    return _Outcome("out_of_time")
                attempt_deadline = began + task_timeout
                first = unused.pop() if unused else None
                try:
                    result = self._steps.run_step(
                        record.request_key,
                        execution_name,
                        index,
                        title,
                        deadline=attempt_deadline,
                        outputs=outputs,
                        started=first,
                        schedule=schedule,
                    )
                except ClarificationRequested:
                    return _Outcome("asked")
                except CircuitOpen as open_circuit:  # not an attempt: nothing was counted, no retry is spent
                    return _Outcome("circuit_open", retry_after=open_circuit.retry_after_seconds)
                except (BudgetExceeded, ProviderError, StoreContention) as error:
                    timed_out = self._now() >= attempt_deadline - _DEADLINE_SLACK_SECONDS
                    retryable = timed_out or isinstance(error, TransientProviderError | StoreContention)
                    name = "States.Timeout" if timed_out else type(error).__name__
                    failure = describe_failure(name, str(error), task_timeout=task_timeout)
                    if not retryable:
                        return _Outcome("failed", failure)
                    made = self._attempts_made(self._context.require(record.request_key), index, at_least=made + 1)
                    if made >= settings.retry.max_attempts:
                        return _Outcome("failed", failure)
                    delay = self._backoff(made)
                    if self._now() + delay + task_timeout + _WRITE_MARGIN_SECONDS > deadline:
                        return _Outcome("out_of_time")
                    stop.wait(delay)
                    continue
                if "skipped" in result:
                    return _Outcome("done" if result["skipped"] == "already_done" else "ended")
                return _Outcome("done")
            return _Outcome("stopped")
        finally:
            if unused:  # it never ran: its start goes back
                self._starts.give_back(record.request_key, index)

    @staticmethod
    def _attempts_made(record: RequestRecord, index: int, *, at_least: int = 0) -> int:
        """Attempts of step ``index`` in this execution (a redriven request's earlier ones do not count)."""
        key = str(index)
        made = record.step_attempts.get(key, 0) - record.attempts_before_redrive.get(key, 0)
        return max(made, at_least)

    def _backoff(self, made: int) -> float:
        """Exponential backoff with full jitter, as Step Functions' Retry with ``JitterStrategy: FULL``."""
        retry = self._context.formation.overlord.workflow.retry
        ceiling = min(retry.max_delay, retry.initial_delay * retry.backoff_factor ** (made - 1))
        return ceiling * self._jitter()
