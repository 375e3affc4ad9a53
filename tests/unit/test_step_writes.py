"""How few writes a run's steps make: a wave of ready steps starts in one write, a step counted done starts the
steps it unblocks in the same write, and a start that is not used is given back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from asyncagents.domain.errors import (
    BudgetExceeded,
    CircuitOpen,
    RequestFailed,
    RunContinues,
    StaleWrite,
    TransientProviderError,
)
from asyncagents.domain.plans import PlannedStep
from asyncagents.domain.progress import EventType, progress_events
from asyncagents.domain.statuses import Status
from asyncagents.domain.workflow import run as run_module
from asyncagents.domain.workflow import run_step as run_step_module
from asyncagents.domain.workflow.schedule import Schedule, Started, Starts

from .test_request_run import ALICE, TASK_TIMEOUT, World


def step_writes(world: World) -> list[str]:
    """The writes that start steps or count them done (the plan's write, when it starts the first steps, as
    ``plan+start:...``)."""
    calls = [call.replace("transition:processing+", "plan+") for call in world.store.calls]
    return [call for call in calls if call.startswith(("start:", "done:", "unstart:", "plan+start:"))]


def test_independent_steps_start_in_one_write_and_each_is_counted_done():
    # Given three independent steps and room to run them all at once
    world = World(concurrency=3)
    pk, name, _ = world.submit("first, second, third")
    # When the run runs them
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the plan's write started all three, each step's done write started nothing, and the last one counted the
    # answer's call (composed next)
    writes = step_writes(world)
    assert writes[0] == "plan+start:0,1,2"
    assert sorted(w.removesuffix("+answer") for w in writes[1:]) == ["done:0", "done:1", "done:2"]
    assert [w.endswith("+answer") for w in writes[1:]] == [False, False, True]
    final = world.store.get(pk)
    assert final.step_attempts == {"0": 1, "1": 1, "2": 1} and final.model_calls == 1 + 3 + 1


def test_a_chain_writes_once_per_step_after_its_first():
    # Given a chain of three steps
    world = World()
    pk, name, _ = world.submit("first, then second, then third")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the plan's write started the first step, each done write the next, and the last counted the answer's
    # call: three step writes (and the plan's) where there were seven
    assert step_writes(world) == ["plan+start:0", "done:0+start:1", "done:1+start:2", "done:2+answer"]
    final = world.store.get(pk)
    assert final.step_attempts == {"0": 1, "1": 1, "2": 1} and final.model_calls == 1 + 3 + 1
    assert [e["type"] for e in final.events].count("step_started") == 3


def test_a_limit_of_one_runs_independent_steps_as_a_chain_of_writes():
    world = World(concurrency=1)
    pk, name, _ = world.submit("first, second, third")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    assert step_writes(world) == ["plan+start:0", "done:0+start:1", "done:1+start:2", "done:2+answer"]


def test_an_answer_counted_by_the_last_steps_write_and_then_over_the_budget_is_given_back():
    # Given a budget of four model calls: the plan's and three steps', none left for the answer
    world = World(budget={"max_model_calls": 4})
    pk, name, _ = world.submit("first, then second, then third")
    # When the last step's done write counts the answer's call and the answer then meets the budget
    with pytest.raises(BudgetExceeded):
        world.run_with(pk, name, 100)
    # Then the run stops over the budget (the workflow fails the request) with the four calls it made: the answer's
    # is given back
    stopped = world.store.get(pk)
    assert step_writes(world)[-1] == "done:2+answer" and "uncount:answer" in world.store.calls
    assert (stopped.model_calls, stopped.answer_counted, stopped.completed_steps) == (4, None, 3)


def test_a_budget_with_room_for_the_answer_completes_though_the_last_steps_write_counted_it_early():
    # Given a budget of exactly five model calls: the plan's, three steps', the answer's
    world = World(budget={"max_model_calls": 5})
    pk, name, _ = world.submit("first, then second, then third")
    # When the last step's done write counts the answer's call before the answer checks the budget
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then that check does not count the answer's call twice: the request completes within its budget
    assert world.store.get(pk).model_calls == 5


def test_an_answer_counted_by_the_last_steps_write_is_given_back_when_the_breaker_opens_and_counted_once_after():
    # Given a breaker that lets the plan's and the three steps' calls through, then opens
    breaker = OpensAfter(4)
    world = World(breaker=breaker)
    pk, name, _ = world.submit("first, then second, then third")
    # When the answer meets the open breaker
    with pytest.raises(CircuitOpen):
        world.run_with(pk, name, 100)
    # Then its call is given back
    waiting = world.store.get(pk)
    assert (waiting.model_calls, waiting.answer_counted, waiting.completed_steps) == (4, None, 3)
    # And when the breaker closes, the next run composes the answer and counts its call once
    breaker.left = 1
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    assert world.store.get(pk).model_calls == 5


def test_a_wave_counts_its_budget_as_if_its_steps_had_started_one_after_another():
    # Given a budget of three model calls (the plan's and two steps') and three independent steps started by one
    # write (which counts all three calls at once)
    world = World(concurrency=3, budget={"max_model_calls": 3})
    pk, name, _ = world.submit("first, second, third")
    with pytest.raises(RequestFailed):
        world.run_with(pk, name, 100)
    # Then the first two steps ran within it, and only the third was stopped by it
    failed = world.store.get(pk)
    assert failed.status is Status.FAILED and failed.error is not None
    assert (failed.error.type, failed.error.step) == ("budget_exceeded", 2)
    assert failed.done_steps == {0, 1}


class OpensAfter:
    """A breaker that lets ``calls`` model calls through, then is open."""

    def __init__(self, calls: int) -> None:
        self.left = calls

    def check(self) -> None:
        if self.left <= 0:
            raise CircuitOpen("open", retry_after_seconds=60)
        self.left -= 1

    def not_called(self) -> None:
        self.left += 1


def test_a_step_started_by_the_step_before_gives_its_start_back_when_the_breaker_is_open():
    # Given a chain whose second step meets an open breaker (the plan's call and the first step's get through)
    world = World(breaker=OpensAfter(2))
    pk, name, _ = world.submit("first, then second")
    # When the first step's done write starts the second, which then cannot call the model
    with pytest.raises(CircuitOpen):
        world.run_with(pk, name, 100)
    # Then the second step's attempt and call are given back: an open breaker spends no attempt
    record = world.store.get(pk)
    assert step_writes(world) == ["start:0", "done:0+start:1", "unstart:1"]
    assert record.step_attempts["1"] == 0 and record.model_calls == 1 + 1


def steps(*dependencies: list[int]) -> list[PlannedStep]:
    return [PlannedStep(title=f"s{i}", instruction="x", depends_on=d) for i, d in enumerate(dependencies)]


def test_the_schedule_claims_within_the_limit_and_releases_or_hands_over():
    # Given step 0 running, and steps 1 and 2 waiting on it, with room for two at once
    schedule = Schedule(steps([], [0], [0]), [1, 2], set(), limit=2, may_start=lambda: True)
    schedule.running = 1
    # When step 0's done write claims what it unblocks: its own slot and the free one
    assert schedule.claim_after(0) == [1, 2]
    assert schedule.waiting == [] and schedule.take_ready() == ({}, [])
    # And the write fails: they wait again
    schedule.release([1, 2])
    assert schedule.waiting == [1, 2]
    # When claimed again and the write succeeds, the loop gets them started, the last one counted last
    assert schedule.claim_after(0) == [1, 2]
    assert schedule.hand_over([1, 2], record=None)  # type: ignore[arg-type]
    schedule.finished(0, done=True)
    handed, fresh = schedule.take_ready()
    assert fresh == [] and {i: s.counted_after for i, s in handed.items()} == {1: 1, 2: 0}


def test_a_closed_schedule_takes_nothing_more_and_returns_what_was_never_run():
    schedule = Schedule(steps([], [0], [0]), [1, 2], set(), limit=3, may_start=lambda: True)
    schedule.running = 1
    assert schedule.claim_after(0) == [1, 2]
    assert schedule.hand_over([1], record=None)  # type: ignore[arg-type]
    assert set(schedule.close()) == {1}
    assert not schedule.hand_over([2], record=None)  # type: ignore[arg-type]
    assert schedule.claim_after(0) == []


def test_nothing_is_claimed_when_the_run_may_not_start_another_attempt():
    schedule = Schedule(steps([], [0]), [1], set(), limit=2, may_start=lambda: False)
    schedule.running = 1
    assert schedule.claim_after(0) == [] and schedule.waiting == [1]


def test_the_schedule_claims_no_more_than_the_free_slots():
    # Given steps 0 and 1 running, with room for two at once: step 0's slot is all its successors may take
    schedule = Schedule(steps([], [], [0], [0], [0]), [2, 3, 4], set(), limit=2, may_start=lambda: True)
    schedule.running = 2
    assert schedule.claim_after(0) == [2] and schedule.waiting == [3, 4]
    # And a step claimed by another's write holds a slot: step 1's own is all its write may take
    schedule.finished(0, done=True)
    assert schedule.claim_after(1) == [3]
    assert schedule.take_ready() == ({}, [])


def test_a_start_handed_over_to_a_run_that_stops_before_the_attempt_is_given_back():
    # Given a planned chain whose second step was started by another write
    world = World()
    pk, name, _ = world.submit("first, then second")
    with pytest.raises(RunContinues):
        world.run_with(pk, name, 5)  # plans, then has no time for a step
    record = world.store.start_steps(pk, [(1, "second")], generation=name, message="m")
    assert record.step_attempts["1"] == 1
    # When the run is stopping as its attempt would begin
    stop = threading.Event()
    stop.set()
    outcome = world.run._attempts(record, name, 1, 1e12, stop, {}, Started(record), None)
    # Then the attempt never ran and its start went back
    assert outcome.kind == "stopped"
    after = world.store.get(pk)
    assert after.step_attempts["1"] == 0 and after.model_calls == record.model_calls - 1


class Closed(OpensAfter):
    def is_closed(self) -> bool:
        return self.left > 0


def test_an_open_breaker_makes_a_wave_write_nothing():
    # Given three independent steps and a breaker that opens after the plan's call
    world = World(concurrency=3, breaker=Closed(1))
    pk, name, _ = world.submit("first, second, third")
    # When the run (and the workflow's retries of it) meet the open breaker
    for _ in range(3):
        with pytest.raises(CircuitOpen):
            world.run_with(pk, name, 100)
    # Then no start was written (none given back), and no step appears started
    record = world.store.get(pk)
    assert step_writes(world) == []
    assert "step_started" not in [e["type"] for e in record.events]
    assert record.step_attempts == {"0": 0, "1": 0, "2": 0} and record.model_calls == 1


class HoldsStep:
    """A provider whose step ``index`` waits for ``go`` before it runs (and then fails, as the demo is told)."""

    def __init__(self, inner: object, index: int) -> None:
        self._inner = inner
        self._index = index
        self.go = threading.Event()

    def run_step(self, step: object, context: object) -> object:
        if context.index == self._index:  # type: ignore[attr-defined]
            assert self.go.wait(10)
        return self._inner.run_step(step, context)  # type: ignore[attr-defined]

    def __getattr__(self, attribute: str) -> object:
        return getattr(self._inner, attribute)


def test_a_handed_step_left_in_the_pools_queue_when_the_run_stops_gives_its_start_back(monkeypatch):
    # Given steps x, a and c (after a), two at once; x fails for good once c has been started by a's done write,
    # and c's attempt stays queued in the pool (as when its worker has not picked it up yet)
    world = World(concurrency=2)
    pk, name, _ = world.submit("x, a then c [demo fail_step=0 fail_permanent=true]")
    holder = HoldsStep(world.provider, 0)
    world.run._steps._context.provider = holder  # type: ignore[attr-defined]
    queued: list[Future] = []

    class QueuesStepTwo(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def,override]
            if args[3] == 2:  # (call, _attempts, record, execution_name, index, ...): c stays in the queue
                queued.append(Future())
                holder.go.set()
                return queued[-1]
            return super().submit(fn, *args, **kwargs)

        def shutdown(self, wait=True, *, cancel_futures=False):  # type: ignore[no-untyped-def,override]
            if cancel_futures:
                for future in queued:
                    future.cancel()
            super().shutdown(wait=wait, cancel_futures=cancel_futures)

    monkeypatch.setattr(run_module, "ThreadPoolExecutor", QueuesStepTwo)
    with pytest.raises(RequestFailed):
        world.run_with(pk, name, 100)
    # Then c, started by a's write and never run, has its start given back
    record = world.store.get(pk)
    assert "done:1+start:2" in step_writes(world) and "unstart:2" in step_writes(world)
    assert record.step_attempts["2"] == 0


def test_a_wave_write_that_fails_gives_back_the_steps_handed_over():
    # Given a step handed over by a done write, and two fresh steps whose wave write fails (throttled)
    world = World(concurrency=3)
    pk, name, _ = world.submit("a then b, c, d")
    with pytest.raises(RunContinues):
        world.run_with(pk, name, 5)  # plans only
    record = world.store.start_steps(pk, [(1, "b")], generation=name, message="m")
    schedule = Schedule(record.steps, [2, 3], {0}, limit=3, may_start=lambda: True)
    schedule.handed = {1: Started(record)}

    def throttled(*args: object, **kwargs: object) -> None:
        raise RuntimeError("ProvisionedThroughputExceededException")

    world.store.start_steps = throttled  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        Starts(world.run._context).take_ready(schedule, record, name)  # type: ignore[attr-defined]
    # Then the handed step's start went back
    assert world.store.get(pk).step_attempts["1"] == 0


def test_a_done_write_applied_whose_answer_was_lost_starts_its_successor_once():
    # Given a chain, and a done write that is applied but whose answer is lost: the SDK's retry meets the write's
    # own condition and reports it refused
    world = World()
    pk, name, _ = world.submit("first, then second")
    real = world.store.count_step_done
    lost = []

    def answer_lost(*args: object, **kwargs: object) -> object:
        written = real(*args, **kwargs)  # type: ignore[arg-type]
        if kwargs.get("then_start") and not lost:
            lost.append(True)
            raise StaleWrite("refused", details={"current": written})
        return written

    world.store.count_step_done = answer_lost  # type: ignore[method-assign]
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the successor was started once (by the write that did happen), not again
    final = world.store.get(pk)
    assert step_writes(world) == ["plan+start:0", "done:0+start:1", "done:1+answer"]
    assert final.step_attempts == {"0": 1, "1": 1} and final.model_calls == 1 + 2 + 1


def test_a_give_back_that_fails_does_not_hide_the_runs_outcome(caplog):
    world = World()

    def unreachable(*args: object) -> None:
        raise RuntimeError("network down")

    world.store.unstart_step = unreachable  # type: ignore[method-assign]
    Starts(world.run._context).give_back("anything", 1)  # type: ignore[attr-defined]
    assert "could not give back the unused start of step 2" in caplog.text


class Unreadable(OpensAfter):
    def is_closed(self) -> bool:
        raise RuntimeError("throttled")


def test_a_breaker_that_cannot_be_read_makes_the_steps_start_one_by_one():
    world = World(concurrency=3, breaker=Unreadable(100))
    pk, name, _ = world.submit("first, second, third")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    assert sorted(w for w in step_writes(world) if w.startswith("start:")) == ["start:0", "start:1", "start:2"]


def test_an_open_breaker_stays_the_outcome_when_the_give_back_fails():
    # Given a chain whose second step, started by the first's done write, meets an open breaker, and a store that
    # cannot take the give-back
    world = World(breaker=OpensAfter(2))
    pk, name, _ = world.submit("first, then second")

    def unreachable(*args: object) -> None:
        raise RuntimeError("network down")

    world.store.unstart_step = unreachable  # type: ignore[method-assign]
    # Then the run still ends as the open breaker says (the workflow waits and runs it again)
    with pytest.raises(CircuitOpen):
        world.run_with(pk, name, 100)


class KnownOpen:
    """A breaker read as open (``is_closed``) that still lets the calls through (``check``): only the plan's write
    learns it is open."""

    def is_closed(self) -> bool:
        return False

    def check(self) -> None:
        pass

    def not_called(self) -> None:
        pass


def test_the_plans_write_starts_no_more_steps_than_may_run_at_once():
    # Given three independent steps and room for two at once
    world = World(concurrency=2)
    pk, name, _ = world.submit("first, second, third")
    # When the run plans and runs them
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the plan's write started two, and the third started when one of them was done (in that done write)
    writes = step_writes(world)
    assert writes[0] == "plan+start:0,1" and any(w.startswith("done:") and "+start:2" in w for w in writes)
    assert world.store.get(pk).step_attempts == {"0": 1, "1": 1, "2": 1}


def test_the_plans_write_starts_nothing_while_the_breaker_is_open_or_without_time_for_a_step():
    # Given a breaker known open when the plan is written
    world = World(concurrency=3, breaker=KnownOpen())
    pk, name, _ = world.submit("first, second, third")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the plan's write started none (each step started itself, after its own check)
    assert not any(w.startswith("plan+") for w in step_writes(world))
    assert sorted(w for w in step_writes(world) if w.startswith("start:")) == ["start:0", "start:1", "start:2"]
    # And given a run without time for a step after the plan: the plan's write starts none, and nothing is counted
    late = World(concurrency=3)
    pk, name, _ = late.submit("first, second, third")
    with pytest.raises(RunContinues):
        late.run_with(pk, name, 5)
    planned = late.store.get(pk)
    assert step_writes(late) == []  # no start made only to be given back
    assert planned.total_steps == 3 and planned.step_attempts == {"0": 0, "1": 0, "2": 0} and planned.model_calls == 1


def test_steps_started_by_the_plans_write_show_as_the_plan_then_each_start():
    # Given a run that plans three independent steps and starts them in the plan's write
    world = World(concurrency=3)
    pk, name, _ = world.submit("first, second, third")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the events read: planned (with its own message), then each step started (with its title)
    record = world.store.get(pk)
    titles = [step.title for step in record.steps]
    events = progress_events(record)
    assert [(e.type, e.message, e.current_step) for e in events[1:5]] == [
        ("planned", "Planned 3 steps", None),
        *(("step_started", f"Working on step {i + 1}: {titles[i]}", titles[i]) for i in range(3)),
    ]


def test_a_step_started_by_the_plans_write_has_every_retry_its_settings_give():
    # Given a step that always fails transiently, started by the plan's write, and three attempts allowed
    world = World(concurrency=3)
    pk, name, _ = world.submit("always throttled [demo fail_transient=10]")
    # When the run attempts it
    with pytest.raises(RequestFailed):
        world.run_with(pk, name, 1_000)
    # Then it was attempted three times (the plan's start is the first), then failed as retryable
    failed = world.store.get(pk)
    assert step_writes(world)[0] == "plan+start:0"
    assert failed.step_attempts == {"0": 3} and failed.error is not None and failed.error.retryable


def failing_once(real):  # type: ignore[no-untyped-def]
    """The provider's ``finish``, failing transiently the first time, after the call was made (paid)."""
    failures = [TransientProviderError("the model answered 503")]

    def finish(*args, **kwargs):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    return finish


def test_an_answer_made_then_retried_counts_each_call():
    # Given a chain whose answer's call is counted by the last step's done write, and fails after it was made
    world = World()
    pk, name, _ = world.submit("first, then second, then third")
    world.provider.finish = failing_once(world.provider.finish)  # type: ignore[method-assign]
    with pytest.raises(TransientProviderError):
        world.run_with(pk, name, 100)
    assert world.store.get(pk).model_calls == 1 + 3 + 1
    # When the workflow retries the Run (another invocation) and the answer is made again
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the second call is counted too: the first invocation's count was spent by its call
    assert world.store.get(pk).model_calls == 1 + 3 + 2


def test_a_retried_answer_meets_the_budget_its_first_call_used():
    # Given a budget of five calls, all used when the answer's first call fails after it was made
    world = World(budget={"max_model_calls": 5})
    pk, name, _ = world.submit("first, then second, then third")
    world.provider.finish = failing_once(world.provider.finish)  # type: ignore[method-assign]
    with pytest.raises(TransientProviderError):
        world.run_with(pk, name, 100)
    # When the Run is retried; then a sixth call is refused
    with pytest.raises(BudgetExceeded):
        world.run_with(pk, name, 100)
    assert world.store.get(pk).model_calls == 5


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING])
def test_a_plan_write_whose_answer_was_lost_starts_its_steps_once(status):
    # Given a plan write that is applied, and whose answer is lost: the SDK's retry meets the write's own conditions
    # (a request still pending, or already processing without a plan: after the planner's question was answered)
    world = World(concurrency=3)
    pk, name, _ = world.submit("first, second, third")
    world.store.items[pk]["status"] = status.value
    real = world.store.transition

    def answer_lost(*args, **kwargs):  # type: ignore[no-untyped-def]
        written = real(*args, **kwargs)
        if kwargs.get("event") is EventType.PLANNED:
            return real(*args, **kwargs)  # refused: StaleWrite with the record as the first write left it
        return written

    world.store.transition = answer_lost  # type: ignore[method-assign]
    # When the run goes on; then the steps that write started run once each, and nothing is counted twice
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    final = world.store.get(pk)
    assert (final.step_attempts, final.model_calls) == ({"0": 1, "1": 1, "2": 1}, 1 + 3 + 1)
    assert [e["type"] for e in final.events].count("planned") == 1


def after_the_answers_count(world: World, action: Callable[[], object]) -> None:
    """``action`` runs right after the done write that counted the answer's call (before the run goes on)."""
    real = world.store.count_step_done

    def then(*args, **kwargs):  # type: ignore[no-untyped-def]
        written = real(*args, **kwargs)
        if kwargs.get("count_answer"):
            action()
        return written

    world.store.count_step_done = then  # type: ignore[method-assign]


def test_a_request_cancelled_after_its_last_step_gives_back_the_answers_call():
    # Given a chain cancelled just after the last step's done write counted the answer's call
    world = World()
    pk, name, request_id = world.submit("first, then second")
    after_the_answers_count(world, lambda: world.service.cancel(ALICE, request_id))
    # When the run goes on to the answer; then none is made, and its call is not left counted
    assert world.run_with(pk, name, 100) == {"status": "cancelled"}
    final = world.store.get(pk)
    assert final.status is Status.CANCELLED and final.model_calls == 1 + 2


def test_a_last_step_that_waits_too_long_for_another_done_write_leaves_the_answers_call_to_the_answer(monkeypatch):
    # Given two steps at once, the first one's done write slow (throttled, say) until the second's is written
    monkeypatch.setattr(run_step_module, "_DONE_WRITE_WAIT_SECONDS", 0.01)
    world = World(concurrency=2)
    pk, name, _ = world.submit("first, second")
    real = world.store.count_step_done
    second_written = threading.Event()

    def slow_first(request_key, index, **kwargs):  # type: ignore[no-untyped-def]
        if index == 0:
            assert second_written.wait(5)
        written = real(request_key, index, **kwargs)
        if index == 1:
            second_written.set()
        return written

    world.store.count_step_done = slow_first  # type: ignore[method-assign]
    # When the run runs them; then neither done write waited for ever nor counted the answer's call
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    assert sorted(w for w in step_writes(world) if w.startswith("done:")) == ["done:0", "done:1"]
    # And the answer counted its own call, once
    assert world.store.get(pk).model_calls == 1 + 2 + 1


def test_the_step_that_may_be_last_waits_for_the_done_writes_in_flight_and_a_failed_one_makes_it_not_last():
    # Given three steps: 0 counted done, 1 writing that it is done
    schedule = Schedule(steps([], [], []), [], set(), limit=3, may_start=lambda: True)
    schedule.counted(0)
    assert schedule.begin_done_write(1, wait=1) is False  # 2 still works: 1 is not the last
    # When step 2 is about to write while 1's write is in flight, and 1's write then succeeds
    threading.Timer(0.05, lambda: (schedule.counted(1), schedule.end_done_write(1))).start()
    # Then step 2 waited for it and is the last
    assert schedule.begin_done_write(2, wait=5) is True
    schedule.end_done_write(2)
    # And when the write in flight fails instead, the step that waited is not the last
    other = Schedule(steps([], [], []), [], set(), limit=3, may_start=lambda: True)
    other.counted(0)
    other.begin_done_write(1, wait=1)
    threading.Timer(0.05, lambda: other.end_done_write(1)).start()
    assert other.begin_done_write(2, wait=5) is False


def test_an_answers_call_counted_by_a_run_that_then_runs_out_of_time_is_given_back_and_counted_once():
    # Given a chain whose last done write counts the answer's call, and is slow enough that the run then has no time
    # left to compose the answer
    world = World()
    pk, name, _ = world.submit("first, then second")
    # (the write took its time, throttled: the run's deadline is near)
    after_the_answers_count(world, lambda: world.time.__setitem__(0, world.time[0] + 90))
    with pytest.raises(RunContinues):
        world.run_with(pk, name, 100)
    # Then that count is given back
    assert "uncount:answer" in world.store.calls and world.store.get(pk).model_calls == 1 + 2
    # And the next run composes the answer, counting its call once
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    assert world.store.get(pk).model_calls == 1 + 2 + 1


def test_a_last_step_that_ends_without_time_left_for_the_answer_does_not_count_its_call():
    # Given a chain of two 8-second steps, and a run with just the time for both (not for the answer after them)
    world = World(step_seconds=8)
    pk, name, _ = world.submit("first, then second")
    with pytest.raises(RunContinues):
        world.run_with(pk, name, 8 + TASK_TIMEOUT + 1)
    # Then the last step's done write counted nothing for an answer this run will not compose
    assert step_writes(world)[-1] == "done:1" and "uncount:answer" not in world.store.calls
    # And the next run composes it, counting its call once
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    assert world.store.get(pk).model_calls == 1 + 2 + 1
