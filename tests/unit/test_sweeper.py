"""The sweeper: what it does with each kind of unfinished request (fakes, a hand-moved clock)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from asyncagents.config import parse_formation
from asyncagents.domain.auth import Principal
from asyncagents.domain.ports import ExecutionState
from asyncagents.domain.requests import NewRequest, RequestService
from asyncagents.domain.statuses import Status
from asyncagents.domain.workflow.context import RequestsContext
from asyncagents.domain.workflow.sweep import Sweeper

from .fakes import InMemoryStore, ManualClock, RecordingEngine

ALICE = Principal(key_id="key_a", user_id="alice")


class World:
    def __init__(self) -> None:
        self.formation = parse_formation(
            {"overlord": {"workflow": {"timeouts": {"workflow_timeout": 600}, "sweeper": {"grace_seconds": 60}}}}
        )
        self.clock = ManualClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
        self.store = InMemoryStore()
        self.engine = RecordingEngine()
        self.service = RequestService(self.store, self.engine, self.formation, clock=self.clock)
        context = RequestsContext(records=self.store, formation=self.formation, clock=self.clock)
        self.sweeper = Sweeper(context, self.engine)

    def submit(self, request_id: str, status: Status = Status.PENDING) -> str:
        record = self.service.submit(ALICE, NewRequest(message="x", request_id=request_id, async_=True)).record
        if status is not Status.PENDING:
            self.store.items[record.request_key]["status"] = status.value
        self.engine.started.clear()
        return record.request_key


@pytest.fixture
def world() -> World:
    return World()


def test_a_request_whose_workflow_never_started_is_started_under_its_own_name(world):
    # Given a pending request with no execution (the API died after writing it), older than the grace period
    key = world.submit("never-started")
    world.clock.advance(61)
    # When the sweeper runs
    report = world.sweeper.sweep()
    # Then it starts the workflow under the request's own execution name (a start that did happen is not doubled)
    name = world.store.get(key).execution_name
    assert world.engine.started == [(name, {"request_key": key})]
    assert (report.checked, report.started, report.repaired) == (1, 1, 1)


def test_young_requests_and_running_executions_are_left_alone(world):
    young = world.submit("young")
    world.clock.advance(30)  # within the grace period: its workflow may be starting right now
    assert world.sweeper.sweep().checked == 0
    running = world.submit("running", Status.PROCESSING)
    world.engine.executions[world.store.get(running).execution_name] = ExecutionState("RUNNING")
    world.clock.advance(61)
    report = world.sweeper.sweep()
    assert (report.running, report.repaired) == (1, 1)  # the young one is old enough now: started
    assert world.store.get(running).status is Status.PROCESSING and world.store.get(young).status is Status.PENDING


@pytest.mark.parametrize(
    ("execution", "error_type"),
    [
        (ExecutionState("TIMED_OUT"), "timeout"),
        (ExecutionState("ABORTED"), "aborted"),
        (ExecutionState("FAILED", error="States.Runtime", cause="boom"), "internal_error"),
        (ExecutionState("SUCCEEDED"), "internal_error"),
    ],
)
def test_an_execution_that_ended_unrecorded_is_reconciled(world, execution, error_type):
    # Given a processing request whose execution ended without the workflow (or the reconciler) recording it
    key = world.submit("ended", Status.PROCESSING)
    world.engine.executions[world.store.get(key).execution_name] = execution
    world.clock.advance(61)
    # When the sweeper runs; then the request ends failed with the reason, conditionally, and only once
    assert world.sweeper.sweep().reconciled == 1
    failed = world.store.get(key)
    assert failed.status is Status.FAILED and failed.error is not None and failed.error.type == error_type
    assert world.sweeper.sweep().checked == 0  # terminal now: out of the unfinished requests


def test_a_request_too_old_to_start_or_with_its_execution_lost_fails_clearly(world):
    # Given a pending request older than the workflow timeout, and a processing one whose execution is gone
    stale = world.submit("too-old")
    lost = world.submit("lost", Status.PROCESSING)
    world.clock.advance(601)
    # When the sweeper runs; then neither is started: both fail, saying why
    report = world.sweeper.sweep()
    assert (report.failed, report.started, world.engine.started) == (2, 0, [])
    assert world.store.get(stale).error.message == "the workflow never started"
    assert world.store.get(lost).error.message == "the workflow was lost"


def test_one_request_in_trouble_never_stops_the_sweep(world):
    broken = world.submit("broken", Status.PROCESSING)
    fine = world.submit("fine", Status.PROCESSING)
    world.engine.executions[world.store.get(fine).execution_name] = ExecutionState("TIMED_OUT")

    def describe(name):
        if name == world.store.get(broken).execution_name:
            raise RuntimeError("Step Functions throttled")
        return world.engine.executions.get(name)

    world.engine.describe = describe  # type: ignore[method-assign]
    world.clock.advance(61)
    assert world.sweeper.sweep().reconciled == 1
    assert world.store.get(fine).status is Status.FAILED and world.store.get(broken).status is Status.PROCESSING


def test_a_redrive_in_flight_is_left_alone_and_one_whose_start_failed_is_started(world):
    # Given a request that failed long ago and is being redriven now (its new execution not started yet)
    key = world.submit("redriven", Status.PROCESSING)
    world.store.items[key].update(status=Status.FAILED.value, error={"type": "timeout", "message": "m"})
    world.clock.advance(3600)
    redriven = world.service.redrive(ALICE, "redriven")
    world.engine.started.clear()  # as if the redrive's StartExecution had not happened (yet, or at all)
    # When the sweeper runs within the grace period of the redrive; then it leaves the request alone
    assert world.sweeper.sweep().repaired == 0 and world.store.get(key).status is Status.PROCESSING
    # When it runs after the grace period and the execution still does not exist; then it starts it
    world.clock.advance(61)
    assert world.sweeper.sweep().started == 1
    assert world.engine.started == [(redriven.execution_name, {"request_key": key})]


def test_a_sweep_that_runs_out_of_time_stops_and_says_so(world):
    for i in range(3):
        world.submit(f"pending-{i}")
    world.clock.advance(61)
    report = world.sweeper.sweep(deadline=world.clock().timestamp())
    assert report.incomplete and report.checked == 0
