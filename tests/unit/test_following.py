"""Following a request on fakes: pages of numbered events as the workflow writes them, a long poll that
answers at the next event, reads that slow down while nothing happens, and a redrive's events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from asyncagents.config import parse_formation
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import NotFound
from asyncagents.domain.requests import NewRequest, RequestService
from asyncagents.domain.workflow import WorkflowSteps
from asyncagents.providers.demo import DemoProvider

from .fakes import FakeTimer, InMemoryStore, ManualClock, MemoryArtifacts, RecordingEngine

ALICE = Principal(key_id="key_a", user_id="alice")


class ScriptedTimer(FakeTimer):
    """A fake monotonic clock whose sleeps also let the workflow take its next action (one per sleep)."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[Callable[[], object]] = []

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.actions:
            self.actions.pop(0)()


@pytest.fixture
def world():
    store = InMemoryStore()
    formation = parse_formation({"async": {"result_retention_seconds": 300}, "llm": {"demo": {"step_seconds": 0}}})
    clock = ManualClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
    timer = ScriptedTimer()
    service = RequestService(
        store, RecordingEngine(), formation, clock=clock, sleep=timer.sleep, monotonic=timer.monotonic
    )
    provider = DemoProvider(formation.llm.demo, sleep=lambda _: None)
    steps = WorkflowSteps(store, store, provider, formation, clock=clock, artifacts=MemoryArtifacts())
    return service, store, steps, timer


def submitted(service: RequestService, message: str = "a, b, c") -> tuple[str, str, str]:
    record = service.submit(ALICE, NewRequest(message=message, async_=True)).record
    return record.request_id, record.request_key, record.execution_name


def workflow_actions(steps: WorkflowSteps, key: str, name: str) -> list[Callable[[], object]]:
    """The state machine's calls for a three-step request, one per action."""
    return [
        lambda: steps.plan(key, name),
        *[lambda i=i: steps.run_step(key, name, i, "step") for i in range(3)],
        lambda: steps.finish(key, name),
    ]


def test_following_sees_every_event_once_in_order_until_the_end(world):
    # Given a request whose workflow takes one action whenever the follower sleeps
    service, _, steps, timer = world
    request_id, key, name = submitted(service)
    timer.actions = workflow_actions(steps, key, name)
    # When it is followed from the start
    pages = list(service.follow(ALICE, request_id, after=0))
    # Then the pages hold every event once, numbered 1, 2, 3, ... and the last page finishes it
    ids = [event.id for page in pages for event in page.events]
    assert ids == list(range(1, len(ids) + 1))
    kinds = [event.type for page in pages for event in page.events]
    assert kinds[0] == "accepted" and kinds[1] == "planned" and kinds[-1] == "completed"
    assert kinds.count("step_started") == kinds.count("step_completed") == 3
    assert pages[-1].finished and not any(page.finished for page in pages[:-1])
    progress = [event.progress for page in pages for event in page.events]
    assert progress == sorted(progress) and progress[-1] == 100


def test_a_long_poll_answers_at_the_next_event_and_an_idle_one_reads_about_once_a_second(world):
    # Given a request the client has every event of
    service, store, steps, timer = world
    request_id, key, name = submitted(service)
    assert service.events(ALICE, request_id, after=0).last_id == 1
    # When it long-polls while the plan is written on the workflow's third chance
    timer.actions = [lambda: None, lambda: None, lambda: steps.plan(key, name)]
    page = service.events(ALICE, request_id, after=1, wait_seconds=20)
    # Then it gets the plan's event long before the 20 s are out
    assert [e.type for e in page.events] == ["planned"] and timer.now < 2
    # And a long poll with nothing to see waits the 20 s with about one read a second
    store.calls.clear()
    started = timer.now
    idle = service.events(ALICE, request_id, after=page.last_id, wait_seconds=20)
    assert idle.events == [] and not idle.finished and idle.last_id == page.last_id
    assert timer.now - started >= 20
    assert 15 <= store.calls.count("get") <= 30


def test_a_quiet_follow_sends_heartbeats_and_stops_at_its_deadline(world):
    service, _, _, timer = world
    request_id, _, _ = submitted(service)
    pages = list(service.follow(ALICE, request_id, after=1, deadline=35, heartbeat_seconds=10))
    assert [page.events for page in pages] == [[], [], [], []]  # the first read, then every 10 s
    assert 35 <= timer.now < 37


def test_a_redriven_request_tells_its_failure_its_redrive_and_its_end(world):
    # Given a request that failed, then was redriven and completed
    service, _, steps, _ = world
    request_id, key, name = submitted(service)
    steps.plan(key, name)
    steps.mark_failed(key, name, "States.Timeout", "")
    record = service.redrive(ALICE, request_id)
    for action in workflow_actions(steps, key, record.execution_name)[1:]:
        action()
    # Then its events tell it in order, the failure as it was then
    events = service.events(ALICE, request_id, after=0).events
    assert [(e.type, e.status) for e in events[:4]] == [
        ("accepted", "pending"),
        ("planned", "processing"),
        ("failed", "failed"),
        ("redriven", "processing"),
    ]
    assert events[-1].type == "completed" and events[-1].progress == 100


def test_events_are_the_owners_only(world):
    service, _, _, _ = world
    request_id, _, _ = submitted(service)
    with pytest.raises(NotFound):
        service.events(Principal(key_id="key_a", user_id="mallory"), request_id, after=0)
