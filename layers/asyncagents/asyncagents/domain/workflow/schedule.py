"""Which steps of a run wait, run, or were started by another step's write: shared by the run's loop and its
step threads, under one lock.

A step's start is a write to the request record (it counts the attempt and the model call before the call), and
so is its counting as done. To write less, steps are started together: the run's loop starts every step that
became ready at once in one write (a wave), and a step counted done starts the steps it was the last dependency of
in that same write (a chain writes once per step, not twice). Such a step is *handed over*: the loop runs it
without starting it again. A start that is not used after all (the run stops first, the model's breaker is open)
is given back (``Starts``); a wave is written only while the breaker is closed, so an outage writes nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from asyncagents.domain.errors import StaleWrite
from asyncagents.domain.plans import PlannedStep
from asyncagents.domain.progress import step_started_message
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.workflow.context import WorkflowContext

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    """A step started by another write: the record that write returned, and how many of the model calls it
    counted come after this step's (a step's budget check counts only the calls before its own)."""

    record: RequestRecord
    counted_after: int = 0


def started_together(steps: list[int], record: RequestRecord) -> dict[int, Started]:
    """Each of ``steps`` (started by one write, in this order) with its share of that write."""
    return {index: Started(record, counted_after=len(steps) - 1 - n) for n, index in enumerate(steps)}


class Schedule:
    """The run's steps that are not done: ``waiting`` (in order), ``claimed`` by a step whose done write will
    start them, ``handed`` over by that write (started, not yet running), and how many run (``running``)."""

    def __init__(
        self,
        steps: list[PlannedStep],
        waiting: list[int],
        done: set[int],
        *,
        limit: int,
        may_start: Callable[[], bool],
        run_token: str = "",
    ) -> None:
        self.lock = threading.Lock()
        self._steps = steps
        self.waiting = waiting
        self.done = done
        self.limit = limit
        self.running = 0
        self.claimed: set[int] = set()
        self.handed: dict[int, Started] = {}
        self.counted_done: set[int] = set()
        self.writing: set[int] = set()  # the steps whose done write is in flight
        self.answer_counted = False  # a done write counted the answer's call for this run
        self._writes_end = threading.Condition(self.lock)
        self.closed = False
        self._may_start = may_start
        self.run_token = run_token  # the Run invocation's (``Finisher.finish``)

    def ready(self, done: set[int]) -> list[int]:
        return [i for i in self.waiting if set(self._steps[i].dependencies(i)) <= done]

    def take_ready(self) -> tuple[dict[int, Started], list[int]]:
        """For the run's loop: the steps handed over, and the waiting steps that are ready now (within the limit,
        counting the running, claimed and handed ones), all taken off the schedule."""
        with self.lock:
            handed, self.handed = self.handed, {}
            free = self.limit - self.running - len(handed) - len(self.claimed)
            fresh = self.ready(self.done)[: max(free, 0)]
            for index in fresh:
                self.waiting.remove(index)
            self.running += len(handed) + len(fresh)
            return handed, fresh

    def claim_after(self, index: int) -> list[int]:
        """For a step about to be counted done: the waiting steps that its being done makes ready, which its write
        may start (none when the run is stopping or has no time left for another attempt)."""
        with self.lock:
            if self.closed or not self._may_start():
                return []
            # Its own slot frees as it ends: its successors may take it.
            free = self.limit - (self.running - 1) - len(self.claimed) - len(self.handed)
            picked = self.ready(self.done | {index})[: max(free, 0)]
            for claimed in picked:
                self.waiting.remove(claimed)
                self.claimed.add(claimed)
            return picked

    def counted(self, index: int, *, answer: bool = False) -> None:
        """Step ``index`` was counted done (by its own write, before the loop notes its end); ``answer``: that write
        counted the answer's call too (for this run: ``answer_counted``)."""
        with self.lock:
            self.counted_done.add(index)
            self.answer_counted = self.answer_counted or answer

    def begin_done_write(self, index: int, *, wait: float) -> bool:
        """Step ``index`` is about to write that it is done: whether it is the last (every other step counted done,
        and the run may go on: composing the answer is next, and this write may count that call). A step whose
        every other step is counted done or being counted waits, ``wait`` seconds at most, for those writes to end
        (a write that fails leaves its step not done: then this one is not the last); any other step writes at once.
        ``end_done_write`` follows, whatever happened."""
        others = set(range(len(self._steps))) - {index}
        until = time.monotonic() + wait
        with self._writes_end:
            while True:
                settled = self.done | self.counted_done
                if self.closed or not others <= settled | self.writing or not self._may_start():
                    last = False  # another step still works (or the run stops): it is not the last one
                    break
                if others <= settled:
                    last = True
                    break
                left = until - time.monotonic()
                if left <= 0:
                    last = False  # the writes in flight take too long (throttled): the answer counts its own call
                    break
                self._writes_end.wait(left)
            self.writing.add(index)
            return last

    def end_done_write(self, index: int) -> None:
        with self._writes_end:
            self.writing.discard(index)
            self._writes_end.notify_all()

    def started_by_plan(self, steps: list[int], record: RequestRecord) -> None:
        """The plan's write started ``steps`` (the first that were ready): the loop runs them without starting them."""
        with self.lock:
            self.waiting = [i for i in self.waiting if i not in steps]
            self.handed.update(started_together(steps, record))

    def hand_over(self, steps: list[int], record: RequestRecord) -> bool:
        """The done write started ``steps``: the loop runs them next. False when the loop has stopped: the caller
        gives their starts back."""
        with self.lock:
            self.claimed.difference_update(steps)
            if self.closed:
                return False
            self.handed.update(started_together(steps, record))
            return True

    def release(self, steps: list[int]) -> None:
        """The done write did not happen: ``steps`` wait again."""
        with self.lock:
            self.claimed.difference_update(steps)
            self.waiting = sorted({*self.waiting, *steps})

    def finished(self, index: int, *, done: bool) -> None:
        with self.lock:
            self.running -= 1
            if done:
                self.done.add(index)

    def close(self) -> dict[int, Started]:
        """The loop stops: nothing more is handed over; returns what was handed over and never ran."""
        with self.lock:
            self.closed = True
            unused, self.handed = self.handed, {}
            return unused


class Starts:
    """The run's writes that start steps for others, and give back the starts that were not used."""

    def __init__(self, context: WorkflowContext) -> None:
        self._context = context

    def take_ready(self, schedule: Schedule, record: RequestRecord, execution_name: str) -> dict[int, Started | None]:
        """The steps to run now: those handed over by a done write, and the ready ones, started together by one
        write when there are several and the model's breaker is closed (a step started alone starts itself, after
        its own breaker check: an open breaker then costs no write)."""
        handed, fresh = schedule.take_ready()
        ready: dict[int, Started | None] = {**handed, **dict.fromkeys(fresh)}
        try:
            if len(fresh) > 1 and self._breaker_closed():
                wave = self._context.records.start_steps(
                    record.request_key,
                    [(index, record.steps[index].title) for index in fresh],
                    generation=execution_name,
                    message=step_started_message(fresh[-1], record.steps[fresh[-1]].title),
                )
                ready.update(started_together(fresh, wave))
        except StaleWrite:
            pass  # each starts itself, and learns why it cannot
        except BaseException:  # the steps handed over will not run in this run: their starts go back
            for index in handed:
                self.give_back(record.request_key, index)
            raise
        return ready

    def give_back(self, request_key: str, index: int) -> None:
        give_back(self._context, request_key, index)

    def _breaker_closed(self) -> bool:
        return breaker_closed(self._context)


def breaker_closed(context: WorkflowContext) -> bool:
    """Whether the model's breaker is known closed (a read that fails means "not known": each step then checks it
    before its own start)."""
    try:
        return context.breaker is None or context.breaker.is_closed()
    except Exception:
        logger.exception("could not read the model's breaker; the steps start one by one")
        return False


def give_back(context: WorkflowContext, request_key: str, index: int) -> None:
    """Uncount a start that was not used. Best effort: a start left counted is an attempt lost, never a call made
    twice, and the run's own outcome matters more."""
    try:
        context.records.unstart_step(request_key, index)
    except StaleWrite:
        pass  # the request is gone
    except Exception:
        logger.exception("could not give back the unused start of step %s", index + 1)


def give_back_answer(context: WorkflowContext, request_key: str, run_token: str) -> None:
    """Uncount the answer's call a done write counted for the Run invocation ``run_token``, which ends without making
    it. Best effort: a call left counted is one call too many, never one made uncounted."""
    try:
        context.records.uncount_answer(request_key, run_token)
    except StaleWrite:
        pass  # not counted for it (or given back already)
    except Exception:
        logger.exception("could not give back the answer's call counted for this run")
