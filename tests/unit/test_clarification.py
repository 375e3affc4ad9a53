"""Questions to the user on fakes: the races between an answer, the wait's timeout and a cancel, the
question limit, budgets that do not count the wait, and the webhook events questions produce."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest

from asyncagents.api.schemas import ChatRequest
from asyncagents.config import parse_formation
from asyncagents.domain.agents import StepOutput
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import (
    BudgetExceeded,
    ClarificationAnswered,
    ClarificationRequested,
    Conflict,
    QuestionTimedOut,
    RequestEnded,
    RunContinues,
    StaleWrite,
    StoreContention,
    Unavailable,
)
from asyncagents.domain.records import Usage
from asyncagents.domain.requests import RequestService
from asyncagents.domain.statuses import Status
from asyncagents.domain.webhooks.events import webhook_message_for
from asyncagents.domain.webhooks.payload import build_payload
from asyncagents.domain.workflow import WorkflowSteps
from asyncagents.domain.workflow.context import WorkflowContext
from asyncagents.domain.workflow.run_step import StepRunner
from asyncagents.domain.workflow.texts import LargeTexts
from asyncagents.providers.demo import DemoProvider

from .fakes import FakeTimer, InMemoryStore, ManualClock, RecordingEngine

ALICE = Principal(key_id="key_a", user_id="alice")


class SwitchableProvider:
    """The demo provider, or whichever provider a test switches in (``use``) to act mid-call."""

    name = "demo"

    def __init__(self, demo: DemoProvider) -> None:
        self.demo = demo
        self.current: Any = demo

    def use(self, provider: Any) -> None:
        self.current = provider

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.current, attribute)


class World:
    """A request service and the workflow's steps over one in-memory store, with a hand-moved clock."""

    def __init__(
        self, clarification: dict | None = None, budget: dict | None = None, store: InMemoryStore | None = None
    ) -> None:
        workflow = {"clarification": clarification or {}, "budget": budget or {}}
        self.formation = parse_formation(
            {"overlord": {"workflow": workflow}, "llm": {"demo": {"step_seconds": 0}}, "async": {"webhook_url": None}}
        )
        self.clock = ManualClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
        self.store = store or InMemoryStore()
        self.engine = RecordingEngine()
        timer = FakeTimer()
        self.service = RequestService(
            self.store, self.engine, self.formation, clock=self.clock, sleep=timer.sleep, monotonic=timer.monotonic
        )
        self.provider = SwitchableProvider(DemoProvider(self.formation.llm.demo, sleep=lambda _: None))
        self.context = WorkflowContext(
            records=self.store,
            checkpoints=self.store,
            provider=self.provider,
            formation=self.formation,
            clock=self.clock,
        )
        self.steps = WorkflowSteps(self.store, self.store, self.provider, self.formation, clock=self.clock)

    def submit(self, message: str) -> tuple[str, str, str]:
        record = self.service.submit(
            ALICE, ChatRequest.model_validate({"message": message, "async": True}).to_domain()
        ).record
        return record.request_key, record.execution_name, record.request_id

    def ask_in_step(self, message: str, index: int) -> tuple[str, str, str]:
        """Submit, plan, run steps before ``index``; step ``index`` asks and the workflow waits on it."""
        pk, name, request_id = self.submit(message)
        self.steps.plan(pk, name)
        for earlier in range(index):
            self.steps.run_step(pk, name, earlier, "t")
        with pytest.raises(ClarificationRequested):
            self.steps.run_step(pk, name, index, "t")
        assert self.steps.await_answer(pk, name, index, f"token-{index}") == {"waiting": True}
        return pk, name, request_id


def test_an_answer_that_arrives_after_the_wait_timed_out_still_counts():
    world = World({"on_timeout": "fail"})
    pk, name, request_id = world.ask_in_step("a, then b [demo ask=1]", 1)
    world.engine.closed_tokens.add("token-1")  # the wait timed out just before the answer came

    # The answer is stored although ending the wait failed ...
    assert world.service.answer(ALICE, request_id, "yes").status is Status.PROCESSING
    assert world.engine.resumed == []
    # ... so the timeout path finds it and continues instead of failing the request
    assert world.steps.answer_timed_out(pk, name, 1) == {"continue": True}
    assert world.steps.run_step(pk, name, 1, "t") == {"index": 1, "done": True}
    world.steps.finish(pk, name)
    final = world.store.get(pk)
    assert final.status is Status.COMPLETED
    assert "(the user answered: yes)" in final.result.text


def test_a_timeout_that_wins_the_race_makes_a_late_answer_a_conflict():
    world = World({"on_timeout": "fail"})
    pk, name, request_id = world.ask_in_step("a [demo ask=0]", 0)
    assert world.steps.answer_timed_out(pk, name, 0) == {"continue": False}
    with pytest.raises(Conflict) as conflict:
        world.service.answer(ALICE, request_id, "late")
    assert conflict.value.details["status"] == "failed"
    assert world.store.get(pk).error.type == "clarification_timeout"


def test_waits_end_for_closed_questions_and_ended_requests():
    world = World()
    pk, name, request_id = world.ask_in_step("a, b [demo ask=0]", 0)
    world.service.answer(ALICE, request_id, "ok")
    assert world.engine.resumed == [
        ("token-0", {"answered": True, "clarification_request_id": world.store.get(pk).clarifications[0].id})
    ]
    # A retried wait for a question already answered goes straight back to the step
    with pytest.raises(ClarificationAnswered):
        world.steps.await_answer(pk, name, 0, "token-retry")

    pk2, name2, request_id2 = world.ask_in_step("c [demo ask=0]", 0)
    world.service.cancel(ALICE, request_id2)
    assert ("token-0", "RequestCancelled") in world.engine.failed_tasks  # the wait is ended explicitly
    with pytest.raises(RequestEnded):
        world.steps.await_answer(pk2, name2, 0, "token-late")
    assert world.steps.answer_timed_out(pk2, name2, 0) == {"continue": False}
    assert world.store.get(pk2).status is Status.CANCELLED


def test_questions_stop_at_the_limit_and_when_disabled():
    world = World({"max_questions": 1})
    pk, name, request_id = world.ask_in_step("a, b [demo ask=0+1]", 0)
    world.service.answer(ALICE, request_id, "one")
    assert world.steps.run_step(pk, name, 0, "t")["done"]
    # The second step would ask, but the request used its one question: it runs without asking
    assert world.steps.run_step(pk, name, 1, "t")["done"]

    disabled = World({"enabled": False})
    pk, name, _ = disabled.submit("a [demo ask=plan+0]")
    assert disabled.steps.plan(pk, name)["proceed"]
    assert disabled.steps.run_step(pk, name, 0, "t")["done"]


def test_time_spent_waiting_for_the_user_is_not_charged_to_the_wall_time_budget():
    world = World({"timeout_seconds": 3000}, {"max_wall_seconds": 600})
    pk, name, request_id = world.ask_in_step("a, b [demo ask=1]", 1)
    world.clock.advance(1800)  # the user takes half an hour
    world.service.answer(ALICE, request_id, "done thinking")
    assert world.store.get(pk).waited_ms == 1_800_000
    assert world.steps.run_step(pk, name, 1, "t")["done"]  # within budget: the wait does not count
    world.clock.advance(601)
    with pytest.raises(BudgetExceeded):
        world.steps.finish(pk, name)


def test_a_request_that_failed_while_its_user_thought_is_redriven_without_that_time_charged():
    # Given a request that waited half an hour for its user's answer, then failed (its workflow timed out)
    world = World({"timeout_seconds": 3000}, {"max_wall_seconds": 600})
    pk, name, request_id = world.ask_in_step("a, b [demo ask=1]", 1)
    world.clock.advance(1800)
    world.steps.mark_failed(pk, name, "States.Timeout", "")
    assert world.store.get(pk).status is Status.FAILED
    # When an operator redrives it a little later
    world.clock.advance(60)
    resumed = world.service.redrive(ALICE, request_id)
    # Then the half hour is the user's, and the minute it sat failed nobody's: the new run works within the budget
    assert resumed.waited_ms == 1_860_000 and resumed.awaiting_since is None
    assert world.steps.plan(pk, resumed.execution_name)["proceed"]
    with pytest.raises(ClarificationRequested):  # it asks its question again (not stopped by the budget)
        world.steps.run_step(pk, resumed.execution_name, 1, "t")


def test_a_wait_that_timed_out_into_a_failure_is_not_counted_twice_by_a_redrive():
    # Given a question left unanswered for its whole timeout, which fails the request (on_timeout: fail)
    world = World({"timeout_seconds": 1800, "on_timeout": "fail"}, {"max_wall_seconds": 600})
    pk, name, request_id = world.ask_in_step("a, b [demo ask=1]", 1)
    world.clock.advance(1800)
    world.steps.answer_timed_out(pk, name, 1)
    failed = world.store.get(pk)
    assert failed.status is Status.FAILED and failed.waited_ms == 1_800_000 and failed.awaiting_since is None
    # When it is redriven at once, the wait counts once
    assert world.service.redrive(ALICE, request_id).waited_ms == 1_800_000


def test_each_question_is_a_webhook_event_with_muxi_fields():
    world = World({"max_questions": 3})
    pk, name, request_id = world.submit("a, b [demo ask=0+1]")
    world.store.items[pk].update({"webhook_url": "https://hooks.example/muxi"})
    world.steps.plan(pk, name)
    images = [dict(world.store.items[pk])]
    for index in (0, 1):
        with pytest.raises(ClarificationRequested):
            world.steps.run_step(pk, name, index, "t")
        images.append(dict(world.store.items[pk]))
        world.clock.advance(1)
        world.steps.await_answer(pk, name, index, f"token-{index}")
        images.append(dict(world.store.items[pk]))
    # processing → awaiting (first question) is an event; recording a question is not; the second
    # question's wait leaves the shown (oldest) question unchanged: no second event yet
    events = [webhook_message_for(old, new) for old, new in pairwise(images)]
    assert [e is not None for e in events] == [False, True, False, False]
    # answering the first shows the second: a new event with its own delivery id
    before = dict(world.store.items[pk])
    first_id = world.store.get(pk).questions["0"].id
    world.service.answer(ALICE, request_id, "first", clarification_id=first_id)
    after = dict(world.store.items[pk])
    second = webhook_message_for(before, after)
    assert second is not None and second.delivery_id != events[1].delivery_id

    payload = build_payload(world.store.get(pk))
    assert payload["status"] == "awaiting_clarification"
    assert payload["clarification_question"] == "Demo question for step 2: which option should I use?"
    assert payload["clarification"]["clarification_request_id"] == payload["clarification_request_id"]
    assert "token" not in str(payload)

    from muxi import webhook as muxi_webhook

    event = muxi_webhook.parse(payload)
    assert event.clarification is not None
    assert event.clarification.question == payload["clarification_question"]
    assert event.clarification.clarification_request_id == payload["clarification_request_id"]


class RacingStore(InMemoryStore):
    """A store that runs ``race`` once, right after the next read: another writer gets in between."""

    race = None

    def get(self, pk, *, with_delivery=False):
        record = super().get(pk, with_delivery=with_delivery)
        race, self.race = self.race, None
        if race is not None:
            race()
        return record


def test_an_answer_stored_while_the_timeout_decides_to_fail_wins():
    world = World({"on_timeout": "fail"}, store=RacingStore())
    pk, name, request_id = world.ask_in_step("a, then b [demo ask=1]", 1)
    world.engine.closed_tokens.add("token-1")
    world.store.race = lambda: world.service.answer(ALICE, request_id, "just in time")

    assert world.steps.answer_timed_out(pk, name, 1) == {"continue": True}
    record = world.store.get(pk)
    assert record.status is Status.PROCESSING and record.error is None
    assert world.steps.run_step(pk, name, 1, "t")["done"]


def test_answers_name_their_question_and_repeating_one_is_safe():
    world = World()
    pk, name, request_id = world.submit("a, b [demo ask=0+1]")
    world.steps.plan(pk, name)
    for index in (0, 1):
        with pytest.raises(ClarificationRequested):
            world.steps.run_step(pk, name, index, "t")
        world.steps.await_answer(pk, name, index, f"token-{index}")
    first = world.store.get(pk).questions["0"].id

    # Two questions are open: an answer must say which one it answers
    with pytest.raises(Conflict) as unnamed:
        world.service.answer(ALICE, request_id, "which?")
    assert unnamed.value.details["field"] == "clarification_request_id"
    assert len(unnamed.value.details["open"]) == 2

    world.service.answer(ALICE, request_id, "red", clarification_id=first)
    # A repeated POST (its response was lost) stores nothing new and never answers the other question
    again = world.service.answer(ALICE, request_id, "red", clarification_id=first)
    assert again.status is Status.AWAITING_CLARIFICATION and list(again.questions) == ["1"]
    assert [token for token, _ in world.engine.resumed] == ["token-0", "token-0"]
    with pytest.raises(Conflict):
        world.service.answer(ALICE, request_id, "blue", clarification_id=first)  # the same id, another answer


def test_a_failed_resume_is_a_503_and_repeating_the_answer_resumes():
    world = World()
    pk, _, request_id = world.ask_in_step("a [demo ask=0]", 0)
    question_id = world.store.get(pk).questions["0"].id

    def unreachable(token, output):
        raise ConnectionError("Step Functions unreachable")

    world.engine.resume = unreachable  # type: ignore[method-assign]
    with pytest.raises(Unavailable) as failed:
        world.service.answer(ALICE, request_id, "yes", clarification_id=question_id)
    assert failed.value.details == {"clarification_request_id": question_id}
    assert world.store.get(pk).clarifications[0].answer == "yes"  # stored all the same

    del world.engine.resume  # the instance attribute goes: the engine answers again
    world.service.answer(ALICE, request_id, "yes", clarification_id=question_id)
    assert world.engine.resumed == [("token-0", {"answered": True, "clarification_request_id": question_id})]


class StepZeroAsksMeanwhile:
    """A provider over the demo: while step 1's first model call runs (it was offered to ask), step 0 runs
    and asks the request's last question."""

    name = "demo"

    def __init__(self, world: World, pk: str, execution_name: str) -> None:
        self.world, self.request_key, self.execution_name = world, pk, execution_name
        self.demo = world.provider.demo
        self.calls = 0

    def run_step(self, step, context):
        self.calls += 1
        if context.index == 1 and self.calls == 1:
            assert context.may_ask
            with pytest.raises(ClarificationRequested):
                self.world.steps.run_step(self.request_key, self.execution_name, 0, "t")
        return self.demo.run_step(step, context)

    def __getattr__(self, attribute):
        return getattr(self.demo, attribute)


def test_parallel_steps_never_ask_more_questions_than_allowed():
    world = World({"max_questions": 1})
    pk, name, _ = world.submit("a, b [demo ask=0+1]")
    world.steps.plan(pk, name)
    provider = StepZeroAsksMeanwhile(world, pk, name)
    world.provider.use(provider)
    # Step 1's question finds the limit reached under its write's condition: it runs without asking
    assert world.steps.run_step(pk, name, 1, "t")["done"]
    record = world.store.get(pk)
    assert list(record.questions) == ["0"]
    assert provider.calls == 3  # step 1 twice, step 0 once


def test_a_late_attempt_cannot_finish_a_step_that_waits_for_its_answer():
    world = World()
    pk, name, request_id = world.ask_in_step("a [demo ask=0]", 0)
    with pytest.raises(StaleWrite):  # an earlier attempt of step 0, finishing after its timeout
        world.store.put_output(pk, name, 0, {"index": 0, "text": "stale", "attempts": 1}, ttl=1)
        world.store.count_step_done(pk, 0, generation=name, message="m", usage=Usage())
    world.service.answer(ALICE, request_id, "fresh")
    assert world.steps.run_step(pk, name, 0, "t")["done"]
    [output] = world.store.outputs(pk, name)
    assert "(the user answered: fresh)" in output["text"]  # the later attempt's output replaced the stale one


def test_the_planner_is_retried_rather_than_ending_an_unplanned_request():
    world = World()
    pk, name, _ = world.submit("a, b")
    world.store.items[pk]["questions_version"] = 7  # someone else wrote meanwhile, and planned nothing
    world.store.items[pk]["status"] = Status.PROCESSING.value
    real_transition = world.store.transition

    def always_stale(*args, **kwargs):
        raise StaleWrite("stale", details={"current": world.store.get(pk)})

    world.store.transition = always_stale  # type: ignore[method-assign]
    with pytest.raises(StoreContention):
        world.steps.plan(pk, name)
    world.store.transition = real_transition  # type: ignore[method-assign]
    assert world.steps.plan(pk, name)["proceed"]


def test_records_written_before_questions_existed_still_plan():
    world = World()
    pk, name, _ = world.submit("a, b")
    for older in ("questions", "questions_version"):
        del world.store.items[pk][older]
    assert world.steps.plan(pk, name)["proceed"]


def test_the_planners_answer_reaches_every_step_and_the_finish():
    world = World()
    pk, name, request_id = world.submit("a, b [demo ask=plan]")
    with pytest.raises(ClarificationRequested):
        world.steps.plan(pk, name)
    world.steps.await_answer(pk, name, None, "token-plan")
    world.service.answer(ALICE, request_id, "Lisbon")
    plan = world.steps.plan(pk, name)
    assert [[s["index"] for s in wave] for wave in plan["waves"]] == [[0, 1]]
    for index in (0, 1):
        world.steps.run_step(pk, name, index, "t")
    world.steps.finish(pk, name)
    text = world.store.get(pk).result.text
    assert text.count("(the user answered: Lisbon)") == 2


def applied_then_lost(world: World, pk: str) -> None:
    """The next write is applied but its response is lost: the SDK's retry then fails the condition, as
    DynamoDB does (a ``StaleWrite`` carrying the record that already has the write)."""
    real = world.store.transition
    calls = {"count": 0}

    def transition(*args, **kwargs):
        calls["count"] += 1
        written = real(*args, **kwargs)
        if calls["count"] == 1:
            raise StaleWrite("the retry lost the condition", details={"current": world.store.get(pk)})
        return written

    world.store.transition = transition  # type: ignore[method-assign]


def test_a_question_whose_write_response_was_lost_is_still_waited_on():
    world = World({"max_questions": 1})
    pk, name, _ = world.submit("a [demo ask=0]")
    world.steps.plan(pk, name)
    applied_then_lost(world, pk)
    with pytest.raises(ClarificationRequested):
        world.steps.run_step(pk, name, 0, "t")
    record = world.store.get(pk)
    assert list(record.questions) == ["0"] and record.model_calls == 2  # plan + the asking call, once


def test_an_answer_whose_write_response_was_lost_is_accepted_and_resumes():
    world = World()
    pk, _, request_id = world.ask_in_step("a [demo ask=0]", 0)
    applied_then_lost(world, pk)
    world.service.answer(ALICE, request_id, "yes")
    assert world.store.get(pk).clarifications[0].answer == "yes"
    assert [token for token, _ in world.engine.resumed] == ["token-0"]


def test_a_question_from_an_attempt_that_outlived_its_timeout_is_waited_on_not_dropped():
    world = World()
    pk, name, request_id = world.submit("a")  # one step; the demo itself does not ask
    world.steps.plan(pk, name)
    stale_attempt = world.store.start_step(pk, 0, generation=name, title="t", message="m")
    demo = world.provider.demo

    class EarlierAttemptAsksMeanwhile:
        """While the live attempt's model call runs, the earlier attempt's call returns a question."""

        name = "demo"

        def run_step(self, step, context):
            question = StepOutput(clarification_question="Which format?", usage=Usage(input_tokens=1))
            runner = StepRunner(world.context, LargeTexts(None))
            assert runner.ask(stale_attempt, name, 0, question) == "asked"
            world.provider.use(demo)
            return demo.run_step(step, context)

        def __getattr__(self, attribute):
            return getattr(demo, attribute)

    world.provider.use(EarlierAttemptAsksMeanwhile())
    # The live attempt cannot count the step while the question is open: it waits for the answer instead
    with pytest.raises(ClarificationRequested):
        world.steps.run_step(pk, name, 0, "t")
    world.steps.await_answer(pk, name, 0, "token-0")
    world.service.answer(ALICE, request_id, "PDF")
    assert world.steps.run_step(pk, name, 0, "t")["done"]
    world.steps.finish(pk, name)
    assert "(the user answered: PDF)" in world.store.get(pk).result.text


def test_a_call_that_asked_past_the_limit_is_counted_and_budgeted():
    world = World({"max_questions": 1}, {"max_model_calls": 4})
    pk, name, _ = world.submit("a, b [demo ask=0+1]")
    world.steps.plan(pk, name)  # call 1
    world.provider.use(StepZeroAsksMeanwhile(world, pk, name))
    # Step 1: call 2 asks, call 3 is step 0 asking the last question, call 4 re-runs step 1: all counted
    assert world.steps.run_step(pk, name, 1, "t")["done"]
    assert world.store.get(pk).model_calls == 4

    # and the re-run is budgeted like any call: with a limit of 3 it is not made
    tight = World({"max_questions": 1}, {"max_model_calls": 3})
    pk, name, _ = tight.submit("a, b [demo ask=0+1]")
    tight.steps.plan(pk, name)
    tight.provider.use(StepZeroAsksMeanwhile(tight, pk, name))
    with pytest.raises(BudgetExceeded):
        tight.steps.run_step(pk, name, 1, "t")


def test_overlapping_attempts_count_every_call_once_and_the_usage_adds_up():
    world = World()
    pk, name, _ = world.submit("one step")
    world.steps.plan(pk, name)
    demo = world.provider.demo

    class AnotherAttemptMeanwhile:
        """While attempt 1's model call runs, attempt 2 of the same step (a retry after a timeout) runs whole."""

        name = "demo"
        nested = False

        def run_step(self, step, context):
            if not self.nested:
                self.nested = True
                assert world.steps.run_step(pk, name, 0, "t")["done"]  # attempt 2, counted first
            return demo.run_step(step, context)

        def __getattr__(self, attribute):
            return getattr(demo, attribute)

    world.provider.use(AnotherAttemptMeanwhile())
    # When attempt 1 returns after attempt 2 finished the step, its result is not kept...
    assert world.steps.run_step(pk, name, 0, "t") == {"index": 0, "skipped": "already_done"}
    world.provider.use(demo)
    world.steps.finish(pk, name)
    done = world.store.get(pk)
    # ...but its call was paid: counted once, as attempt 2's was, and the usage adds up to every call's tokens
    assert done.model_calls == 1 + 2 and done.completed_steps == 1
    assert done.usage is not None and done.usage.input_tokens + done.usage.output_tokens == done.tokens_used
    assert (done.usage.input_tokens, done.usage.output_tokens) == (done.input_tokens_used, done.output_tokens_used)
    [kept] = world.store.outputs(pk, name)
    assert kept["attempts"] == 2  # the later attempt's output stands


def test_a_question_answered_while_the_run_works_on_another_is_not_left_waiting_for_the_rest():
    # Given two steps that asked, both waited on by one wait
    world = World()
    pk, name, request_id = world.submit("a, b [demo ask=0+1]")
    with pytest.raises(ClarificationRequested):
        world.steps.run(pk, name, deadline=time.time() + 3600)
    assert world.steps.await_open(pk, name, "token-1") == {"waiting": True}
    questions = {q.key: q.id for q in world.store.get(pk).questions.values()}
    demo = world.provider.demo

    class AnswersTheOtherMeanwhile:
        """Step 0 runs with its answer; while it works, the user answers step 1's question too."""

        def run_step(self, step: Any, context: Any) -> Any:
            if context.index == 0:
                world.service.answer(ALICE, request_id, "green", clarification_id=questions["1"])
            return demo.run_step(step, context)

        def __getattr__(self, attribute: str) -> Any:
            return getattr(demo, attribute)

    # When step 0's question is answered (the wait ends, the run goes on) and step 1's while that run works
    world.service.answer(ALICE, request_id, "blue", clarification_id=questions["0"])
    world.provider.use(AnswersTheOtherMeanwhile())
    # Then that run hands over to the next (the shared wait is over: waiting again would leave step 1 idle)
    with pytest.raises(RunContinues, match="answered while the run worked"):
        world.steps.run(pk, name, deadline=time.time() + 3600)
    world.provider.use(demo)
    # And the next run goes on with step 1's answer, to the end
    assert world.steps.run(pk, name, deadline=time.time() + 3600) == {"status": "completed"}
    done = world.store.get(pk)
    assert done.done_steps == {0, 1} and [c.answer for c in done.clarifications] == ["blue", "green"]


def test_one_wait_serves_every_open_question_and_an_overdue_one_times_out_at_the_next_wait():
    world = World({"on_timeout": "continue", "timeout_seconds": 600})
    pk, name, request_id = world.submit("a, b [demo ask=0+1]")
    world.steps.plan(pk, name)
    for index in (0, 1):  # two independent steps ask at once
        with pytest.raises(ClarificationRequested):
            world.steps.run_step(pk, name, index, "t")
    # Given one wait on both questions: they share its token
    assert world.steps.await_open(pk, name, "token-1") == {"waiting": True}
    waiting = world.store.get(pk)
    assert {key: q.token for key, q in waiting.questions.items()} == {"0": "token-1", "1": "token-1"}
    # When step 1's question is answered (the wait ends, the run goes on) and step 0's stays open past its timeout
    first = next(q for q in waiting.questions.values() if q.key == "1")
    world.service.answer(ALICE, request_id, "blue", clarification_id=first.id)
    assert world.engine.resumed[-1][0] == "token-1"
    # (what the request says it waits for is the question still open, not the one just answered)
    still_open = world.store.get(pk)
    assert still_open.status_message == f"Waiting for the user's answer: {still_open.questions['0'].question}"
    world.clock.advance(600)
    # Then the next wait finds step 0's question overdue, and the timeout closes it alone, unanswered
    with pytest.raises(QuestionTimedOut):
        world.steps.await_open(pk, name, "token-2")
    assert world.steps.open_timed_out(pk, name, whole_wait=False) == {"continue": True}
    closed = world.store.get(pk)
    assert closed.questions == {} and closed.status is Status.PROCESSING
    assert [(c.step_index, c.outcome) for c in closed.clarifications] == [(1, "answered"), (0, "timed_out")]
    # And a wait with no question left open ends at once (the run goes on)
    with pytest.raises(ClarificationAnswered):
        world.steps.await_open(pk, name, "token-3")


def test_a_wait_that_timed_out_closes_every_question_it_waited_on_however_late_it_was_stamped():
    world = World({"on_timeout": "continue", "timeout_seconds": 600})
    pk, name, _ = world.submit("a [demo ask=0]")
    world.steps.plan(pk, name)
    with pytest.raises(ClarificationRequested):
        world.steps.run_step(pk, name, 0, "t")
    world.steps.await_open(pk, name, "token-1")  # stamped by the wait's Lambda, after the wait's timer started
    world.clock.advance(600 - 3)  # Step Functions' timeout: the stamp says 597 s
    assert world.steps.open_timed_out(pk, name, whole_wait=False) == {"continue": True}
    assert "0" in world.store.get(pk).questions  # not overdue by its stamp
    assert world.steps.open_timed_out(pk, name, whole_wait=True) == {"continue": True}
    closed = world.store.get(pk)
    assert closed.questions == {} and [c.outcome for c in closed.clarifications] == ["timed_out"]
