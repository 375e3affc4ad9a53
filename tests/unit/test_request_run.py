"""The Run task on fakes: a request's steps run, retried and timed out inside one task; a run that runs out of
time hands over and the next resumes; attempts are counted on the record, per execution."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from asyncagents.api.schemas import ChatRequest
from asyncagents.config import parse_formation
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import ClarificationRequested, RequestFailed, RunContinues, StoreContention
from asyncagents.domain.requests import RequestService
from asyncagents.domain.statuses import Status
from asyncagents.domain.workflow.context import WorkflowContext
from asyncagents.domain.workflow.finish import Finisher
from asyncagents.domain.workflow.plan import Planner
from asyncagents.domain.workflow.run import RequestRun
from asyncagents.domain.workflow.run_step import StepRunner
from asyncagents.domain.workflow.texts import LargeTexts
from asyncagents.providers.demo import DemoProvider

from .fakes import FakeTimer, InMemoryStore, ManualClock, RecordingEngine

ALICE = Principal(key_id="key_a", user_id="alice")
TASK_TIMEOUT = 10


class SlowProvider:
    """The demo provider, each step taking ``step_seconds`` of the run's (fake) time."""

    name = "demo"

    def __init__(self, demo: DemoProvider, clock: list[float], step_seconds: float) -> None:
        self._demo = demo
        self._clock = clock
        self._step_seconds = step_seconds
        self.seen: list[Any] = []  # the context of every step call

    def run_step(self, step: Any, context: Any) -> Any:
        self._clock[0] += self._step_seconds
        self.seen.append(context)
        return self._demo.run_step(step, context)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._demo, attribute)


class World:
    def __init__(
        self,
        *,
        step_seconds: float = 0.0,
        retry: dict | None = None,
        concurrency: int = 1,
        task_timeout: int = TASK_TIMEOUT,
        spend: Any = None,
        budget: dict | None = None,
        breaker: Any = None,
    ) -> None:
        workflow = {
            "timeouts": {"task_timeout": task_timeout, "workflow_timeout": 3600},
            "retry": retry or {"max_attempts": 3, "initial_delay": 1, "max_delay": 4, "backoff_factor": 2.0},
            "max_concurrency": concurrency,
            **({"budget": budget} if budget else {}),
        }
        formation = parse_formation(
            {"overlord": {"workflow": workflow}, "llm": {"demo": {"step_seconds": 0}}, "async": {"webhook_url": None}}
        )
        self.formation = formation
        clock = ManualClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
        self.store = InMemoryStore()
        self.engine = RecordingEngine()
        timer = FakeTimer()
        self.service = RequestService(
            self.store, self.engine, formation, clock=clock, sleep=timer.sleep, monotonic=timer.monotonic
        )
        self.time = [1_000.0]  # the run's clock (epoch seconds), moved by the provider's steps
        self.provider = provider = SlowProvider(
            DemoProvider(formation.llm.demo, sleep=lambda _: None), self.time, step_seconds
        )
        context = WorkflowContext(
            records=self.store,
            checkpoints=self.store,
            provider=provider,
            formation=formation,
            clock=clock,
            spend=spend,
            breaker=breaker,
        )
        texts = LargeTexts(None)
        self.jitter = 0.0
        self.run = RequestRun(
            context,
            Planner(context, texts),
            StepRunner(context, texts),
            Finisher(context, texts),
            now=lambda: self.time[0],
            jitter=lambda: self.jitter,
        )

    def submit(self, message: str) -> tuple[str, str, str]:
        record = self.service.submit(
            ALICE, ChatRequest.model_validate({"message": message, "async": True}).to_domain()
        ).record
        return record.request_key, record.execution_name, record.request_id

    def run_with(self, pk: str, name: str, seconds: float) -> dict[str, Any]:
        """One invocation of the Run task with ``seconds`` before its deadline."""
        return self.run.run(pk, name, deadline=self.time[0] + seconds)


def test_a_run_out_of_time_hands_over_and_the_next_resumes_without_redoing_a_step():
    world = World(step_seconds=8)
    pk, name, _ = world.submit("first, then second, then third")
    # Given time for one attempt and a half: the first step runs (8 s), the second would not end in time
    with pytest.raises(RunContinues):
        world.run_with(pk, name, TASK_TIMEOUT + 5)
    after_first = world.store.get(pk)
    assert after_first.done_steps == {0} and after_first.step_attempts == {"0": 1, "1": 0, "2": 0}
    # When the workflow runs again with a whole run's time
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the finished step was not run again and every step ran once
    final = world.store.get(pk)
    assert final.status is Status.COMPLETED and final.step_attempts == {"0": 1, "1": 1, "2": 1}
    assert final.model_calls == 1 + 3 + 1  # plan, three steps, the answer


def test_transient_failures_are_retried_in_the_run_with_backoff():
    world = World()
    pk, name, _ = world.submit("a, b [demo fail_step=1 fail_transient=2]")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    final = world.store.get(pk)
    assert final.step_attempts == {"0": 1, "1": 3} and final.model_calls == 1 + 4 + 1


def test_the_backoff_doubles_up_to_its_cap_with_full_jitter():
    world = World(retry={"max_attempts": 10, "initial_delay": 1, "max_delay": 4, "backoff_factor": 2.0})
    world.jitter = 1.0
    assert [world.run._backoff(made) for made in range(1, 6)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    world.jitter = 0.25
    assert world.run._backoff(3) == 1.0


def test_exhausted_retries_are_recorded_and_end_the_run_as_failed():
    world = World()
    pk, name, _ = world.submit("a, b [demo fail_step=1 fail_transient=5]")
    with pytest.raises(RequestFailed):
        world.run_with(pk, name, 100)
    failed = world.store.get(pk)
    assert failed.status is Status.FAILED and failed.step_attempts == {"0": 1, "1": 3}
    assert failed.error is not None and (failed.error.type, failed.error.retryable) == ("provider_error", True)


def test_a_redriven_request_gives_the_failed_step_the_whole_retry_budget_again():
    world = World()
    pk, name, request_id = world.submit("a, b [demo fail_step=1 fail_transient=5]")
    with pytest.raises(RequestFailed):
        world.run_with(pk, name, 100)
    resumed = world.service.redrive(ALICE, request_id)
    # Attempts 4 and 5 fail, the 6th succeeds: three attempts in the redriven execution
    assert world.run_with(pk, resumed.execution_name, 100) == {"status": "completed"}
    assert world.store.get(pk).step_attempts == {"0": 1, "1": 6}


def test_a_step_counted_done_whose_output_is_gone_runs_again_before_the_steps_that_need_it():
    # Given a chain whose first step finished in a run that then ran out of time
    world = World(step_seconds=8)
    pk, name, _ = world.submit("first, then second, then third")
    with pytest.raises(RunContinues):
        world.run_with(pk, name, TASK_TIMEOUT + 5)
    record = world.store.get(pk)
    assert record.done_steps == {0}
    # When its stored output is gone (past its ttl) before the next run
    del world.store.steps[(pk, record.checkpoint_lineage)][0]
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the step ran again (the step after it saw its new output) and the answer has every step's
    final = world.store.get(pk)
    assert final.status is Status.COMPLETED and final.step_attempts == {"0": 2, "1": 1, "2": 1}
    assert final.completed_steps == 3 and final.done_steps == {0, 1, 2}
    assert [o["index"] for o in world.store.outputs(pk, record.checkpoint_lineage)] == [0, 1, 2]
    second = next(c for c in world.provider.seen if c.index == 1)
    assert list(second.previous_outputs) == [0] and second.previous_outputs[0]
    assert [c for c in world.store.calls if c.startswith("forget")] == ["forget:0"]


def test_the_steps_made_from_an_output_that_is_gone_run_again_after_it_never_before():
    # Given a chain of explicit dependencies run two steps at a time, whose first two steps finished
    world = World(step_seconds=8, concurrency=2)
    pk, name, _ = world.submit("first, then second, then third, then fourth")
    with pytest.raises(RunContinues):
        world.run_with(pk, name, 2 * TASK_TIMEOUT + 2)
    record = world.store.get(pk)
    assert record.done_steps == {0, 1}
    # When the first one's output is gone
    del world.store.steps[(pk, record.checkpoint_lineage)][0]
    world.provider.seen.clear()
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    # Then the second (made from it) ran again after it, and the third not before both
    assert [c.index for c in world.provider.seen] == [0, 1, 2, 3]
    assert [sorted(c.previous_outputs) for c in world.provider.seen] == [[], [0], [0, 1], [0, 1, 2]]
    final = world.store.get(pk)
    assert final.step_attempts == {"0": 2, "1": 2, "2": 1, "3": 1} and final.completed_steps == 4
    assert [c for c in world.store.calls if c.startswith("forget")] == ["forget:0,1"]
    # And its progress never counts a step twice
    from asyncagents.domain.progress import progress_events

    counted = [(e.completed_steps, e.total_steps) for e in progress_events(final) if e.type == "step_completed"]
    assert counted == [(1, 4), (2, 4), (2, 4), (2, 4), (3, 4), (4, 4)]


def test_a_run_that_lost_the_count_to_another_of_its_execution_runs_again_and_one_that_was_ended_stops():
    # Given a request whose first step finished, and whose output is then gone
    world = World(step_seconds=8)
    pk, name, request_id = world.submit("first, then second")
    with pytest.raises(RunContinues):
        world.run_with(pk, name, TASK_TIMEOUT + 5)
    stale = world.store.get(pk)
    del world.store.steps[(pk, stale.checkpoint_lineage)][0]
    context = world.run._context
    # When another invocation of the same execution counted it not done first, this one is retried (not ended)
    assert context.with_outputs_stored(stale, name) is not None
    with pytest.raises(StoreContention):
        context.with_outputs_stored(stale, name)
    # And when the request was cancelled meanwhile, the run has nothing to do
    world.service.cancel(ALICE, request_id)
    assert context.with_outputs_stored(stale, name) is None


def test_a_step_whose_needed_output_is_gone_when_it_reads_it_hands_over_instead_of_running_without_it():
    # Given a chain whose first step finished in a run that ran out of time
    world = World(step_seconds=8)
    pk, name, _ = world.submit("first, then second")
    with pytest.raises(RunContinues):
        world.run_with(pk, name, TASK_TIMEOUT + 5)
    # When its output is swept just after the next run checked it (between the check and the read)
    check = world.store.stored_indexes

    def swept_after_the_check(request_key: str, of: str) -> set[int]:
        found = check(request_key, of)
        world.store.steps[(request_key, of)].pop(0, None)
        return found

    world.store.stored_indexes = swept_after_the_check  # type: ignore[method-assign]
    world.provider.seen.clear()
    with pytest.raises(RunContinues, match=r"steps \[0\] are gone"):
        world.run_with(pk, name, 100)
    assert world.provider.seen == []  # the second step was not run without it
    # Then the next run makes the first step again, then the second with it
    world.store.stored_indexes = check  # type: ignore[method-assign]
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    assert [sorted(c.previous_outputs) for c in world.provider.seen] == [[], [0]]


def test_the_answer_is_never_composed_without_a_stored_output():
    # Given a request whose steps are all done, and one output gone just before the answer is composed
    world = World()
    pk, name, _ = world.submit("a, b")
    finisher = world.run._finisher
    compose = finisher.finish

    def output_gone_first(request_key: str, execution_name: str, **kwargs: Any) -> dict[str, Any]:
        lineage = world.store.get(request_key).checkpoint_lineage
        world.store.steps[(request_key, lineage)].pop(1, None)
        return compose(request_key, execution_name, **kwargs)

    finisher.finish = output_gone_first  # type: ignore[method-assign]
    # When the run reaches the answer, it hands over instead, its answer's call given back
    with pytest.raises(RunContinues, match=r"steps \[1\] are gone"):
        world.run_with(pk, name, 100)
    assert world.store.get(pk).model_calls == 1 + 2
    # Then the next run makes the step again and answers with both
    finisher.finish = compose  # type: ignore[method-assign]
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    final = world.store.get(pk)
    assert final.step_attempts == {"0": 1, "1": 2} and final.model_calls == 1 + 3 + 1


def test_an_attempt_that_runs_out_of_its_time_is_a_timeout():
    world = World(step_seconds=TASK_TIMEOUT + 1)  # every attempt ends past its deadline
    pk, name, _ = world.submit("one [demo fail_transient=9]")
    with pytest.raises(RequestFailed):
        world.run_with(pk, name, 1_000)
    failed = world.store.get(pk)
    assert failed.error is not None and failed.error.model_dump() == {
        "type": "timeout",
        "message": f"Task exceeded timeout ({TASK_TIMEOUT}s)",
        "retryable": True,
        "step": 0,
    }


def test_a_permanent_failure_fails_at_once_while_an_independent_step_is_left_alone():
    world = World(concurrency=2)
    pk, name, _ = world.submit("a, b [demo fail_step=0 fail_permanent=true]")
    with pytest.raises(RequestFailed):
        world.run_with(pk, name, 100)
    failed = world.store.get(pk)
    assert failed.status is Status.FAILED and failed.step_attempts["0"] == 1
    assert failed.error is not None and (failed.error.type, failed.error.retryable) == ("provider_error", False)


def test_a_step_whose_question_is_open_is_not_started_again_until_it_is_answered():
    world = World()
    pk, name, _ = world.submit("a, b [demo ask=1]")
    with pytest.raises(ClarificationRequested):
        world.run_with(pk, name, 100)
    asked = world.store.get(pk)
    assert asked.done_steps == {0} and asked.step_attempts["1"] == 1 and "1" in asked.questions
    # A run before the answer (another question's answer resumed it) neither starts the step nor counts a call
    with pytest.raises(ClarificationRequested):
        world.run_with(pk, name, 100)
    again = world.store.get(pk)
    assert (again.step_attempts, again.model_calls) == (asked.step_attempts, asked.model_calls)


def test_a_chain_hands_each_step_the_outputs_before_it_without_reading_them_back():
    world = World()
    pk, name, _ = world.submit("first, then second, then third")
    reads = []
    real = world.store.outputs
    world.store.outputs = lambda *a, **k: reads.append(a) or real(*a, **k)  # type: ignore[method-assign]
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    texts = {o["index"]: o["text"] for o in real(pk, world.store.get(pk).checkpoint_lineage)}
    assert [c.previous_outputs for c in world.provider.seen] == [{}, {0: texts[0]}, {0: texts[0], 1: texts[1]}]
    assert len(reads) == 1  # the answer's, of every output; no step read any back


def test_step_events_store_no_message_and_replay_the_writers_words():
    from asyncagents.domain.progress import progress_events

    world = World()
    pk, name, _ = world.submit("first, then second")
    world.run_with(pk, name, 100)
    record = world.store.get(pk)
    stored = [e for e in record.events if e["type"] in ("step_started", "step_completed")]
    assert stored and not any("message" in e for e in stored)  # each write pays for the record's size
    replayed = [(e.type, e.message) for e in progress_events(record) if e.step is not None]
    assert replayed == [
        ("step_started", "Working on step 1: First"),
        ("step_completed", "Finished step 1 of 2: First"),
        ("step_started", "Working on step 2: Second"),
        ("step_completed", "Finished step 2 of 2: Second"),
    ]


class HangingProvider(SlowProvider):
    """A provider that ignores its deadline: its step call blocks (for real) until the test releases it."""

    def __init__(self, inner: SlowProvider) -> None:
        self.__dict__.update(inner.__dict__)
        self.release = threading.Event()

    def run_step(self, step: Any, context: Any) -> Any:
        self.release.wait(10)
        return super().run_step(step, context)


@pytest.mark.parametrize(("max_attempts", "outcome"), [(1, RequestFailed), (2, RunContinues)])
def test_an_attempt_that_ignores_its_deadline_is_given_up_on_and_counted(max_attempts, outcome):
    world = World(task_timeout=1, retry={"max_attempts": max_attempts, "initial_delay": 1, "max_delay": 1})
    hanging = HangingProvider(world.provider)
    world.run._steps._context.provider = hanging  # type: ignore[attr-defined]
    pk, name, _ = world.submit("one")
    try:
        # The run's deadline passes (real seconds: the run waits on the attempt's thread) with the call still out
        with pytest.raises(outcome):
            world.run.run(pk, name, deadline=world.time[0] + 2.2)
    finally:
        hanging.release.set()
    record = world.store.get(pk)
    assert record.step_attempts == {"0": 1}
    if outcome is RequestFailed:  # it was the step's last attempt: the request fails as a timeout
        assert record.error is not None and record.error.type == "timeout"
    else:  # the next run retries it
        assert record.status is Status.PROCESSING


def test_the_answer_waits_for_a_run_with_the_time_to_compose_it():
    world = World(step_seconds=8)
    pk, name, _ = world.submit("only step")
    with pytest.raises(RunContinues):  # the step ends 3 s before the deadline: no time for the answer's call
        world.run_with(pk, name, TASK_TIMEOUT + 1)
    assert world.store.get(pk).done_steps == {0}
    assert world.run_with(pk, name, 100) == {"status": "completed"}


def test_a_list_page_is_filtered_again_on_the_records_it_read():
    """The owner index lags the table a moment: a request listed as processing that has completed meanwhile is
    not returned under ``status=processing``."""
    from asyncagents.data.dynamo import to_item
    from asyncagents.data.request_index import owner_page
    from asyncagents.data.table_keys import owner_of

    world = World()
    pk, name, _ = world.submit("one")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    fields = world.store.get(pk).model_dump(mode="json", exclude={"request_key"})
    key = {"pk": f"REQ#{pk}", "sk": "REQUEST"}
    owner = owner_of(ALICE.key_id, ALICE.user_id)
    # An index item of the version before 0.3, whose index copied the status (the newer index holds keys only)
    lagging = to_item({**key, "requester": owner, "created_at": fields["created_at"], "status": "processing"})

    class Table:
        def query(self, **arguments: Any) -> dict[str, Any]:
            return {"Items": [lagging] if arguments["IndexName"] == "RequestsByOwner" else []}

        def batch_get_item(self, **arguments: Any) -> dict[str, Any]:
            return {"Responses": {"t": [to_item({**fields, **key})]}}

    listed, _ = owner_page(
        Table(), "t", ALICE.key_id, ALICE.user_id, limit=10, cursor=None, status=Status.PROCESSING, now_epoch=0
    )
    assert listed == []
    everything, _ = owner_page(
        Table(), "t", ALICE.key_id, ALICE.user_id, limit=10, cursor=None, status=None, now_epoch=0
    )
    assert [r.status for r in everything] == [Status.COMPLETED]


def test_each_calls_spend_reservation_counts_the_text_it_sends():
    class Reservations:
        """Spend caps that admit everything and note what each call reserved for."""

        capped = True

        def __init__(self) -> None:
            self.sent: list[int] = []

        def reserve(self, key_id: str, *, input_bytes: int = 0, wait_until: float | None = None) -> None:
            self.sent.append(input_bytes)

        def release(self) -> None: ...

    spend = Reservations()
    world = World(spend=spend)
    pk, name, _ = world.submit("first, then second [demo output_kb=3]")
    assert world.run_with(pk, name, 100) == {"status": "completed"}
    plan, first, second, answer = spend.sent
    assert plan >= len("first, then second")
    assert second >= first + 3 * 1024  # the first step's 3 KB output is sent to the second
    assert answer >= 2 * 3 * 1024  # the answer is composed from both outputs


def test_a_stored_plan_that_cannot_be_read_is_never_made_again():
    """A plan kept apart whose item is gone (past its ttl, deleted): the run retries, and never pays the planner for
    a plan that could not be stored (``planned_by`` says one was)."""
    from asyncagents.domain.errors import StoreContention

    world = World()
    pk, name, _ = world.submit("first, then second")
    world.store.items[pk].update(status="processing", planned_by="tok_1", total_steps=2, steps=[])
    planned: list[str] = []
    world.provider._demo.plan = lambda *args, **kwargs: planned.append("called")  # type: ignore[method-assign]
    with pytest.raises(StoreContention, match="could not be read"):
        world.run_with(pk, name, 100)
    assert planned == [] and world.store.get(pk).model_calls == 0


def test_the_estimator_learns_the_agents_time_not_the_users_answering_its_questions():
    # Given a request that took 1805 s, 1800 of them waiting for the user's answers
    world = World()
    pk, _, _ = world.submit("a, b")
    record = world.store.get(pk).model_copy(
        update={"duration_ms": 1_805_000, "waited_ms": 1_800_000, "estimate": {"kind": "k", "analytic_seconds": 4.0}}
    )
    learned: list[float] = []

    class Estimator:
        def record(self, formation_id: str, kind: str, analytic: float, actual: float, *, analysis: str) -> None:
            learned.append(actual)

    world.run._context.estimator = Estimator()  # type: ignore[assignment]
    # When it is learned from, it counts as the 5 s the agent worked
    world.run._finisher._learn(record)
    assert learned == [5.0]
