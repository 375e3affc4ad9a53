"""How few writes a run's steps make: a wave of ready steps starts in one write, a step counted done starts the
steps it unblocks in the same write, and a start that is not used is given back."""

from __future__ import annotations

import threading

import pytest

from asyncagents.domain.errors import CircuitOpen, RequestFailed, RunContinues
from asyncagents.domain.plans import PlannedStep
from asyncagents.domain.statuses import Status
from asyncagents.domain.workflow.schedule import Schedule, Started

from .test_request_run import World


def step_writes(world: World) -> list[str]:
    return [call for call in world.store.calls if call.startswith(("start:", "done:", "unstart:"))]


def test_independent_steps_start_in_one_write_and_each_is_counted_done():
    # Given three independent steps and room to run them all at once
    world = World(concurrency=3)
    pk, name, _ = world.submit("first, second, third")
    # When the run runs them
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then one write started all three, and each step's done write started nothing
    writes = step_writes(world)
    assert writes[0] == "start:0,1,2"
    assert sorted(writes[1:]) == ["done:0", "done:1", "done:2"]
    final = world.store.get(pk)
    assert final.step_attempts == {"0": 1, "1": 1, "2": 1} and final.model_calls == 1 + 3 + 1


def test_a_chain_writes_once_per_step_after_its_first():
    # Given a chain of three steps
    world = World()
    pk, name, _ = world.submit("first, then second, then third")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then each done write started the next step: four writes where there were six
    assert step_writes(world) == ["start:0", "done:0+start:1", "done:1+start:2", "done:2"]
    final = world.store.get(pk)
    assert final.step_attempts == {"0": 1, "1": 1, "2": 1} and final.model_calls == 1 + 3 + 1
    assert [e["type"] for e in final.events].count("step_started") == 3


def test_a_limit_of_one_runs_independent_steps_as_a_chain_of_writes():
    world = World(concurrency=1)
    pk, name, _ = world.submit("first, second, third")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    assert step_writes(world) == ["start:0", "done:0+start:1", "done:1+start:2", "done:2"]


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
    record = world.store.start_steps(pk, [(1, "second")], generation=name, message="m", derived=True)
    assert record.step_attempts["1"] == 1
    # When the run is stopping as its attempt would begin
    stop = threading.Event()
    stop.set()
    outcome = world.run._attempts(record, name, 1, 1e12, stop, {}, Started(record), None)
    # Then the attempt never ran and its start went back
    assert outcome.kind == "stopped"
    after = world.store.get(pk)
    assert after.step_attempts["1"] == 0 and after.model_calls == record.model_calls - 1
