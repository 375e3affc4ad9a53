"""The request lifecycle end to end on fakes: accept, plan, steps, finish, failures, cancel, retention."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

import pytest

from asyncagents.api.schemas import ChatRequest
from asyncagents.api.views import request_body
from asyncagents.config import MAX_RESULT_RETENTION_SECONDS, parse_formation
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import (
    BudgetExceeded,
    Conflict,
    NotFound,
    PermanentProviderError,
    TransientProviderError,
    Unavailable,
)
from asyncagents.domain.lifecycle import checkpoint_ttl
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.requests import NewRequest, RequestService
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import iso
from asyncagents.domain.workflow import WorkflowSteps, describe_failure
from asyncagents.providers.demo import DemoProvider

from .fakes import FakeTimer, InMemoryStore, ManualClock, MemoryArtifacts, RecordingEngine

ALICE = Principal(key_id="key_a", user_id="alice")
BOB = Principal(key_id="key_a", user_id="bob")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))


@pytest.fixture
def formation():
    return parse_formation({"async": {"result_retention_seconds": 300}, "llm": {"demo": {"step_seconds": 0}}})


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def engine() -> RecordingEngine:
    return RecordingEngine()


@pytest.fixture
def service(store, engine, formation, clock) -> RequestService:
    timer = FakeTimer()
    return RequestService(store, engine, formation, clock=clock, sleep=timer.sleep, monotonic=timer.monotonic)


@pytest.fixture
def artifacts() -> MemoryArtifacts:
    return MemoryArtifacts()


@pytest.fixture
def steps(store, formation, clock, artifacts) -> WorkflowSteps:
    provider = DemoProvider(formation.llm.demo, sleep=lambda _: None)
    return WorkflowSteps(store, store, provider, formation, clock=clock, artifacts=artifacts)


class Execution:
    """Drives WorkflowSteps the way one execution of the state machine does (its name is the generation)."""

    def __init__(self, steps: WorkflowSteps, store: InMemoryStore, pk: str) -> None:
        self.steps, self.request_key = steps, pk
        self.name = store.get(pk).execution_name

    def plan(self):
        return self.steps.plan(self.request_key, self.name)

    def run_step(self, index: int, title: str = "step"):
        return self.steps.run_step(self.request_key, self.name, index, title)

    def finish(self):
        return self.steps.finish(self.request_key, self.name)

    def mark_failed(self, error: str, cause: str = ""):
        return self.steps.mark_failed(self.request_key, self.name, error, cause)


def run_workflow(steps: WorkflowSteps, pk: str, store: InMemoryStore) -> None:
    """What the state machine does on the happy path: Plan, each step, Finish."""
    execution = Execution(steps, store, pk)
    plan = execution.plan()
    assert plan["proceed"]
    for wave in plan["waves"]:
        for item in wave:
            execution.run_step(item["index"], item["title"])
    execution.finish()


def test_async_accept_writes_pending_record_and_starts_one_execution(service, store, engine):
    # Given an async chat request
    chat = ChatRequest.model_validate({"message": "Research AI trends, compare vendors", "async": True}).to_domain()

    # When it is submitted
    submission = service.submit(ALICE, chat)

    # Then the record is pending, not finished, and exactly one execution was started under its name
    assert not submission.finished
    record = submission.record
    assert record.request_id.startswith("req_")
    assert store.get(record.request_key).status is Status.PENDING
    assert engine.started == [(record.execution_name, {"request_key": record.request_key})]
    assert record.processing_mode == "async" and record.mode_reason == "forced"


def test_workflow_moves_through_statuses_with_progress_and_result(service, steps, store, clock, artifacts):
    # Given a request of three clauses
    submission = service.submit(ALICE, NewRequest(message="Research AI trends, compare vendors, write a report"))
    pk = submission.record.request_key
    run = Execution(steps, store, pk)

    # When the workflow plans it, the planned record is processing with three steps
    plan = run.plan()
    planned = store.get(pk)
    assert planned.status is Status.PROCESSING
    assert planned.total_steps == 3 and planned.progress == 5
    assert [s["title"] for wave in plan["waves"] for s in wave] == [
        "Research AI trends",
        "Compare vendors",
        "Write a report",
    ]

    # When one step finishes, progress and the current step say so
    run.run_step(0, "Research AI trends")
    after_one = service.get(ALICE, submission.record.request_id)
    assert after_one.completed_steps == 1
    assert after_one.progress == 35
    assert after_one.current_step == "Research AI trends"

    # When the rest run and Finish composes the answer
    run.run_step(1, "Compare vendors")
    run.run_step(2, "Write a report")
    clock.advance(2)
    run.finish()

    # Then the request is complete with its result, its file, its duration and its usage
    done = request_body(service.get(ALICE, submission.record.request_id), artifact_url=artifacts.url)
    assert done["status"] == "completed"
    assert done["progress"] == 100
    assert "demo provider" in done["result"]["text"]
    # "write a report": the demo writes report.md into the artifacts bucket; clients get a presigned URL
    [report] = done["result"]["artifacts"]
    assert report["name"] == "report.md" and report["content_type"] == "text/markdown"
    assert report["url"].startswith("https://artifacts.example/artifacts/") and "X-Amz-Expires" in report["url"]
    [(key, (content, _))] = artifacts.objects.items()
    assert report["url"].split("?")[0].endswith(key) and content.startswith(b"# Report:")
    assert done["duration_ms"] == 2000
    assert done["usage"]["output_tokens"] > 0


def test_same_request_id_same_body_returns_existing_without_second_execution(service, engine):
    # Given a request with the client's own id
    chat = NewRequest(message="Summarise the news", request_id="my-request-123")
    first = service.submit(ALICE, chat)
    # When the same body is submitted again (a retry after a lost response)
    second = service.submit(ALICE, chat)
    # Then it is the same request and execution
    assert second.record.request_id == first.record.request_id == "my-request-123"
    assert second.record.execution_name == first.record.execution_name
    # The second accept may re-start (idempotently, same name) a still-pending request, never a new name.
    assert {name for name, _ in engine.started} == {first.record.execution_name}


def test_a_retry_of_a_request_accepted_before_fingerprints_were_shortened_is_the_same_request(service, store):
    # Given a request accepted when records kept all 256 bits of the fingerprint
    first = service.submit(ALICE, NewRequest(message="Summarise the news", request_id="old-123"))
    whole = hashlib.sha256(
        json.dumps(
            {
                "message": "Summarise the news",
                "session_id": None,
                "webhook_url": None,
                "async": None,
                "threshold_seconds": None,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    ).hexdigest()
    assert whole.startswith(first.record.fingerprint) and len(first.record.fingerprint) == 32
    store.items[first.record.request_key]["fingerprint"] = whole
    # When its client retries it; then it is the same request, and another body under its id is still a conflict
    assert service.submit(ALICE, NewRequest(message="Summarise the news", request_id="old-123")).record.request_id
    with pytest.raises(Conflict):
        service.submit(ALICE, NewRequest(message="Summarise the weather", request_id="old-123"))


def test_same_request_id_different_body_is_conflict(service):
    # Given a request with an id; when the id is reused with another body; then it is a conflict on the id
    service.submit(ALICE, NewRequest(message="one thing", request_id="dup-1"))
    with pytest.raises(Conflict) as caught:
        service.submit(ALICE, NewRequest(message="another thing", request_id="dup-1"))
    assert caught.value.details["field"] == "request_id"


def test_request_ids_are_scoped_per_user(service):
    service.submit(ALICE, NewRequest(message="hello", request_id="shared-id"))
    # Bob may use the same id for his own request, and cannot see Alice's.
    bob = service.submit(BOB, NewRequest(message="something else", request_id="shared-id"))
    assert bob.record.user_id == "bob"
    assert service.get(ALICE, "shared-id").prompt == "hello"
    assert service.get(BOB, "shared-id").prompt == "something else"
    with pytest.raises(NotFound):
        service.get(Principal(key_id="key_other", user_id="alice"), "shared-id")


def test_completed_request_is_404_after_retention_even_if_item_remains(service, steps, store, clock):
    # Given a completed request
    submission = service.submit(ALICE, NewRequest(message="a, b"))
    run_workflow(steps, submission.record.request_key, store)

    # When its retention (300 s) passes, it is gone from reads and lists though the item remains
    clock.advance(299)
    assert service.get(ALICE, submission.record.request_id).status is Status.COMPLETED
    clock.advance(2)
    with pytest.raises(NotFound):
        service.get(ALICE, submission.record.request_id)
    assert submission.record.request_key in store.items  # TTL has not swept it; the read path hides it
    assert service.list(ALICE, limit=10, cursor=None, status=None)[0] == []


def test_transient_failure_is_raised_for_retry_and_attempts_are_counted(store, formation, clock, service):
    flaky = parse_formation({"llm": {"demo": {"step_seconds": 0, "fail_transient": 2}}})
    steps = WorkflowSteps(store, store, DemoProvider(flaky.llm.demo, sleep=lambda _: None), formation, clock=clock)
    # Given a provider that fails twice, then succeeds
    pk = service.submit(ALICE, NewRequest(message="only step")).record.request_key
    run = Execution(steps, store, pk)
    run.plan()

    # When the step runs: two transient failures raised for the state machine's Retry, then done
    for _ in range(2):
        with pytest.raises(TransientProviderError):
            run.run_step(0, "Only step")
    assert run.run_step(0, "Only step") == {"index": 0, "done": True}
    # Then every attempt is counted, and the stored output says which attempt made it
    assert store.get(pk).step_attempts == {"0": 3}
    assert store.outputs(pk, run.name)[0]["attempts"] == 3


def test_finished_step_is_never_run_again(service, steps, store):
    # Given a finished step
    pk = service.submit(ALICE, NewRequest(message="one, two")).record.request_key
    run = Execution(steps, store, pk)
    run.plan()
    run.run_step(0, "One")
    # When it is run again (a retried Map iteration); then it is skipped and counted once
    assert run.run_step(0, "One") == {"index": 0, "skipped": "already_done"}
    assert store.get(pk).completed_steps == 1


def test_permanent_failure_marks_failed_not_retryable(service, steps, store, formation, clock):
    broken = parse_formation({"llm": {"demo": {"fail_permanent": True}}})
    failing = WorkflowSteps(store, store, DemoProvider(broken.llm.demo, sleep=lambda _: None), formation, clock=clock)
    # Given a provider that refuses the request for good
    pk = service.submit(ALICE, NewRequest(message="doomed")).record.request_key
    run = Execution(failing, store, pk)
    run.plan()
    with pytest.raises(PermanentProviderError) as caught:
        run.run_step(0, "Doomed")

    # When the state machine's Catch records it
    cause = json.dumps({"errorType": "PermanentProviderError", "errorMessage": caught.value.message})
    run.mark_failed("PermanentProviderError", cause)

    # Then the request failed, and says the failure is not worth retrying
    public = request_body(store.get(pk))
    assert public["status"] == "failed"
    assert public["error"] == {"type": "provider_error", "message": caught.value.message, "retryable": False}


def test_cancel_then_late_step_cannot_resurrect_or_write(service, steps, store, engine):
    # Given a running request
    pk_record = service.submit(ALICE, NewRequest(message="long, task", request_id="c-1")).record
    run = Execution(steps, store, pk_record.request_key)
    run.plan()

    # When it is cancelled, its execution is asked to stop
    record, already = service.cancel(ALICE, "c-1")
    assert (record.status, already) == (Status.CANCELLED, False)
    assert engine.stopped == [pk_record.execution_name]

    # A step that was already running finishes afterwards: nothing is written, nothing resurrected.
    assert run.run_step(0, "Long")["skipped"] == "not_processing"
    assert run.finish() == {"status": "cancelled"}
    assert run.mark_failed("States.Timeout") == {"status": "cancelled"}
    final = store.get(pk_record.request_key)
    assert (
        final.status is Status.CANCELLED
        and final.result is None
        and store.outputs(pk_record.request_key, run.name) == []
    )
    assert request_body(final)["content"] == ""

    # And cancelling again is idempotent
    again, already = service.cancel(ALICE, "c-1")
    assert already and again.status is Status.CANCELLED


def test_a_cancel_sent_again_stops_what_the_first_could_not(service, steps, store, engine):
    # Given a request cancelled while its execution could not be stopped (Step Functions throttled, or the cancel's
    # answer lost after its write, which its retry then meets)
    record = service.submit(ALICE, NewRequest(message="long, task", request_id="c-2")).record
    Execution(steps, store, record.request_key).plan()
    stop = engine.stop

    def throttled(execution_name: str, *, cause: str) -> None:
        raise RuntimeError("ThrottlingException")

    engine.stop = throttled  # type: ignore[method-assign]
    assert service.cancel(ALICE, "c-2")[1] is False
    assert engine.stopped == []
    # When it is cancelled again, the execution is asked to stop again
    engine.stop = stop  # type: ignore[method-assign]
    again, already = service.cancel(ALICE, "c-2")
    assert already and again.status is Status.CANCELLED
    assert engine.stopped == [record.execution_name]


def test_cancel_after_completion_is_conflict_and_keeps_result(service, steps, store):
    # Given a completed request; when it is cancelled; then it is a conflict naming its status, result kept
    pk = service.submit(ALICE, NewRequest(message="quick", request_id="done-1")).record.request_key
    run_workflow(steps, pk, store)
    with pytest.raises(Conflict) as caught:
        service.cancel(ALICE, "done-1")
    assert caught.value.details["status"] == "completed"
    assert store.get(pk).result is not None


def test_a_start_failure_fails_an_unnamed_request_and_leaves_a_named_one_to_its_retry(store, formation, clock):
    # Given a workflow engine that cannot start executions
    engine = RecordingEngine(fail_start=True)
    service = RequestService(store, engine, formation, clock=clock)
    # When a request without a name is submitted, the call fails
    with pytest.raises(RuntimeError):
        service.submit(ALICE, NewRequest(message="x"))
    # Then its record is failed (retryable: its client sends it again, under a new id), never left pending
    [unnamed] = [RequestRecord.model_validate(item) for item in store.items.values()]
    assert unnamed.status is Status.FAILED and unnamed.error is not None and unnamed.error.retryable
    # When a named request is submitted (its retry can only send the same name: a provider's delivery, a slot)
    with pytest.raises(Unavailable, match="send it again as it was"):
        service.submit(ALICE, NewRequest(message="x", request_id="nostart"))
    # Then it stays pending (the sweeper would start it), and its retry starts it while the engine is still down, then
    # once it is back
    assert service.get(ALICE, "nostart").status is Status.PENDING
    with pytest.raises(Unavailable):
        service.submit(ALICE, NewRequest(message="x", request_id="nostart"))
    engine.fail_start = False
    retried = service.submit(ALICE, NewRequest(message="x", request_id="nostart")).record
    assert retried.status is Status.PENDING and engine.started == [(retried.execution_name, ANY)]


def test_sync_request_returns_finished_record_when_workflow_completes_in_time(store, formation, clock):
    steps = WorkflowSteps(store, store, DemoProvider(formation.llm.demo, sleep=lambda _: None), formation, clock=clock)

    class RunsInline(RecordingEngine):
        def start(self, execution_name, payload):  # the workflow finishes while the API waits
            super().start(execution_name, payload)
            run_workflow(steps, payload["request_key"], store)

    service = RequestService(store, RunsInline(), formation, clock=clock, sleep=lambda _: None)
    submission = service.submit(ALICE, ChatRequest.model_validate({"message": "hi", "async": False}).to_domain())
    assert submission.finished and submission.record.status is Status.COMPLETED


def test_sync_request_falls_back_to_async_when_wait_ends(store, engine, clock):
    formation = parse_formation({"async": {"sync_wait_seconds": 1}})
    ticks = iter(range(1000))
    service = RequestService(
        store, engine, formation, clock=clock, sleep=lambda _: None, monotonic=lambda: next(ticks) * 0.25
    )
    submission = service.submit(ALICE, ChatRequest.model_validate({"message": "slow", "async": False}).to_domain())
    assert not submission.finished
    stored = store.get(submission.record.request_key)
    assert (stored.processing_mode, stored.mode_reason) == ("async", "fallback")


def test_list_is_newest_first_paginated_and_filtered(service, steps, store, clock):
    ids = []
    for i in range(5):
        clock.advance(1)
        ids.append(service.submit(ALICE, NewRequest(message=f"m{i}", request_id=f"r{i}")).record.request_id)
    run_workflow(steps, service.get(ALICE, "r1").request_key, store)

    page, cursor = service.list(ALICE, limit=2, cursor=None, status=None)
    assert [r.request_id for r in page] == ["r4", "r3"]
    page2, _ = service.list(ALICE, limit=2, cursor=cursor, status=None)
    assert [r.request_id for r in page2] == ["r2", "r1"]
    completed, _ = service.list(ALICE, limit=10, cursor=None, status=Status.COMPLETED)
    assert [r.request_id for r in completed] == ["r1"]
    assert service.list(BOB, limit=10, cursor=None, status=None)[0] == []


@pytest.mark.parametrize(
    ("error", "cause", "expected"),
    [
        ("States.Timeout", "", {"type": "timeout", "message": "Task exceeded timeout (300s)", "retryable": True}),
        (
            "TransientProviderError",
            '{"errorMessage": "throttled"}',
            {"type": "provider_error", "message": "throttled", "retryable": True},
        ),
        (
            "KeyError",
            '{"errorMessage": "secret internals"}',
            {"type": "internal_error", "message": "the workflow failed (KeyError)", "retryable": False},
        ),
        (
            "Lambda.ServiceException",
            "down",
            {"type": "internal_error", "message": "the workflow failed (Lambda.ServiceException)", "retryable": True},
        ),
        ("Sandbox.Timedout", "", {"type": "timeout", "message": "Task exceeded timeout (300s)", "retryable": True}),
    ],
)
def test_describe_failure(error, cause, expected):
    assert describe_failure(error, cause, task_timeout=300) == expected


def test_idempotency_key_names_the_request_when_no_request_id(service, engine):
    chat = NewRequest(message="retry-safe")
    first = service.submit(ALICE, chat, idempotency_key="key-123")
    retried = service.submit(ALICE, chat, idempotency_key="key-123")
    other = service.submit(ALICE, chat, idempotency_key="key-456")
    assert first.record.request_id == retried.record.request_id != other.record.request_id
    assert "key-123" not in first.record.request_id
    with pytest.raises(Conflict):
        service.submit(ALICE, NewRequest(message="changed"), idempotency_key="key-123")


def test_a_named_request_retried_after_its_result_expired_is_a_409_not_a_second_run(
    service, steps, store, clock, engine
):
    # Given a request named by an idempotency key, finished, whose result expired (retention: 300 s)
    first = service.submit(ALICE, NewRequest(message="alpha one"), idempotency_key="pay-42")
    run_workflow(steps, first.record.request_key, store)
    clock.advance(301)
    started = len(engine.started)
    # When the client retries it within the idempotency window (a day)
    with pytest.raises(Conflict) as refused:
        service.submit(ALICE, NewRequest(message="alpha one"), idempotency_key="pay-42")
    # Then it is a conflict naming the request and why, and nothing runs again
    assert refused.value.details == {"request_id": first.record.request_id, "reason": "result_expired"}
    assert "stays taken until" in refused.value.message
    assert len(engine.started) == started
    # And the same holds for a request id the client chose
    named = service.submit(ALICE, NewRequest(message="beta", request_id="mine-1"))
    run_workflow(steps, named.record.request_key, store)
    clock.advance(301)
    with pytest.raises(Conflict):
        service.submit(ALICE, NewRequest(message="beta", request_id="mine-1"))


def test_request_id_reused_after_retention_starts_clean_and_old_workers_cannot_touch_it(
    service, steps, store, clock, engine
):
    # Given a finished request whose retention and idempotency window (a day) have passed (the item remains)
    old = service.submit(ALICE, NewRequest(message="alpha one, alpha two", request_id="reused"))
    old_run = Execution(steps, store, old.record.request_key)
    run_workflow(steps, old.record.request_key, store)
    clock.advance(86_401)

    # When the same id is used for a new request
    new = service.submit(ALICE, NewRequest(message="beta one, beta two, beta three", request_id="reused"))
    assert new.record.execution_name != old.record.execution_name
    new_run = Execution(steps, store, new.record.request_key)
    new_run.plan()

    # Then a late worker of the old execution cannot write into it
    assert old_run.run_step(0, "Alpha one")["skipped"] == "not_processing"
    assert old_run.finish()["status"] == "processing"
    assert old_run.mark_failed("States.Timeout")["status"] == "processing"
    for index in range(3):
        new_run.run_step(index)
    new_run.finish()
    result = request_body(service.get(ALICE, "reused"))["result"]["text"]
    assert "Beta three" in result and "Alpha" not in result


@pytest.mark.parametrize(
    ("execution_status", "error_type", "message"),
    [
        ("TIMED_OUT", "timeout", "Workflow exceeded timeout (3600s)"),
        ("ABORTED", "aborted", "the workflow was stopped before it finished"),
        ("FAILED", "internal_error", "the workflow failed (States.DataLimitExceeded)"),
    ],
)
def test_reconciler_ends_requests_the_workflow_could_not(service, steps, store, execution_status, error_type, message):
    record = service.submit(ALICE, NewRequest(message="a, b")).record
    run = Execution(steps, store, record.request_key)
    run.plan()
    outcome = steps.reconcile(record.request_key, run.name, execution_status, "States.DataLimitExceeded", "")
    assert outcome == {"status": "failed", "reconciled": True}
    final = store.get(record.request_key)
    assert (final.error.type, final.error.message) == (error_type, message)
    # Already ended, or another generation's execution: nothing to do.
    assert steps.reconcile(record.request_key, run.name, "ABORTED")["reconciled"] is False
    assert steps.reconcile(record.request_key, "some-other-execution", "ABORTED")["reconciled"] is False


def test_redrive_only_for_failed_requests_and_keeps_the_lineage(service, steps, store, engine, formation, clock):
    record = service.submit(ALICE, NewRequest(message="a, b", request_id="rd")).record
    run = Execution(steps, store, record.request_key)
    run.plan()
    run.run_step(0, "A")
    with pytest.raises(Conflict):
        service.redrive(ALICE, "rd")  # processing, not failed
    run.mark_failed("PermanentProviderError", '{"errorMessage": "no"}')

    store.calls.clear()
    clock.advance(60)  # redriven a minute later: what it keeps lives a minute longer
    resumed = service.redrive(ALICE, "rd")
    # its plan and its finished step's output are kept as long as the new run needs them, before anything else
    # changes (a redrive that fails there changed nothing)
    planned_by = store.get(record.request_key).planned_by
    assert [c for c in store.calls if c.startswith(("keep_run", "transition"))][:2] == [
        f"keep_run:{planned_by}",
        "transition:processing",
    ]
    [kept] = store.outputs(record.request_key, record.execution_name)
    # (as long as the new run and the longest retention its record may get need them)
    timeouts = formation.overlord.workflow.timeouts
    longest = MAX_RESULT_RETENTION_SECONDS
    assert kept["ttl"] == checkpoint_ttl(clock(), workflow_timeout=timeouts.workflow_timeout, retention_seconds=longest)
    assert resumed.status is Status.PROCESSING and resumed.error is None and resumed.expires_at is None
    assert resumed.lineage == record.execution_name != resumed.execution_name
    assert engine.started[-1] == (resumed.execution_name, {"request_key": record.request_key})
    # the old execution can no longer write; the new one skips the finished step
    assert run.run_step(1, "B")["skipped"] == "not_processing"
    second = Execution(steps, store, record.request_key)
    assert second.plan()["proceed"]
    assert second.run_step(0, "A")["skipped"] == "already_done"
    second.run_step(1, "B")
    second.finish()
    assert service.get(ALICE, "rd").status is Status.COMPLETED


def test_a_redrive_that_could_outlive_the_requests_texts_in_the_bucket_is_refused(
    service, steps, store, formation, clock
):
    # Given a failed request (redriven before, so still kept) created almost as long ago as the bucket keeps texts
    record = service.submit(ALICE, NewRequest(message="a, b", request_id="old")).record
    run = Execution(steps, store, record.request_key)
    run.plan()
    run.mark_failed("PermanentProviderError", '{"errorMessage": "no"}')
    kept = timedelta(days=formation.bucket_days, seconds=-formation.overlord.workflow.timeouts.workflow_timeout)
    store.items[record.request_key]["created_at"] = iso(clock() - kept - timedelta(seconds=1))
    store.calls.clear()
    # When it is redriven, it is refused, naming until when it could have been, and nothing changed
    with pytest.raises(Conflict, match="can no longer be redriven") as refused:
        service.redrive(ALICE, "old")
    assert refused.value.details["redrivable_until"] == iso(clock() - timedelta(seconds=1))
    assert store.calls == ["get"] and service.get(ALICE, "old").status is Status.FAILED  # read, never written
    # And a second sooner, it is redriven
    store.items[record.request_key]["created_at"] = iso(clock() - kept)
    assert service.redrive(ALICE, "old").status is Status.PROCESSING


def test_a_redrive_of_a_request_whose_plan_is_no_longer_kept_is_refused(service, steps, store):
    # Given a failed request whose plan (kept on its own item) is gone
    record = service.submit(ALICE, NewRequest(message="a, b", request_id="lost")).record
    run = Execution(steps, store, record.request_key)
    run.plan()
    run.mark_failed("PermanentProviderError", '{"errorMessage": "no"}')
    store.items[record.request_key]["steps"] = []
    # When it is redriven, it is refused (its new run could never work), and it stays failed
    with pytest.raises(Conflict, match="its plan is no longer kept"):
        service.redrive(ALICE, "lost")
    assert service.get(ALICE, "lost").status is Status.FAILED


@pytest.mark.parametrize(
    ("budget", "reason"),
    [
        ({"max_model_calls": 2}, "2 model calls made, the limit is 2"),
        ({"max_tokens": 20}, "tokens used, the limit is 20"),
        ({"max_wall_seconds": 5}, "s elapsed, the limit is 5 s"),
    ],
)
def test_budgets_stop_the_request_and_keep_finished_steps(store, clock, budget, reason):
    formation = parse_formation({"overlord": {"workflow": {"budget": budget}}, "llm": {"demo": {"step_seconds": 0}}})
    timer = FakeTimer()
    service = RequestService(
        store, RecordingEngine(), formation, clock=clock, sleep=timer.sleep, monotonic=timer.monotonic
    )
    steps = WorkflowSteps(store, store, DemoProvider(formation.llm.demo, sleep=lambda _: None), formation, clock=clock)
    pk = service.submit(
        ALICE, ChatRequest.model_validate({"message": "one, two, three", "async": True}).to_domain()
    ).record.request_key
    run = Execution(steps, store, pk)
    run.plan()
    run.run_step(0, "One")
    clock.advance(10)
    with pytest.raises(BudgetExceeded, match=reason):
        run.run_step(1, "Two")
    run.mark_failed("BudgetExceeded", json.dumps({"errorMessage": "budget exceeded: " + reason}))
    final = request_body(store.get(pk))
    assert final["status"] == "failed" and final["error"]["type"] == "budget_exceeded"
    assert final["error"]["retryable"] is False
    assert final["completed_steps"] == 1 and len(store.outputs(pk, run.name)) == 1
    assert final["model_calls"] == 2 and final["tokens_used"] > 0


def test_texts_too_large_for_the_table_live_in_the_bucket(service, steps, store, artifacts):
    record = service.submit(
        ALICE, ChatRequest.model_validate({"message": "a, b [demo output_kb=80]", "async": True}).to_domain()
    )
    run_workflow(steps, record.record.request_key, store)
    final = store.get(record.record.request_key)
    stored_steps = store.outputs(final.request_key, final.checkpoint_lineage)
    assert all(item["text_key"].startswith("texts/") and len(item["text"]) == 2000 for item in stored_steps)
    assert final.result is not None and final.result.text_key is not None and len(final.result.text) == 2000
    whole = request_body(final, stored_text=lambda key: artifacts.get(key).decode())["result"]["text"]
    assert len(whole.encode()) > 160 * 1024 and whole.count("demo-filler") > 10_000
    assert "text_key" not in request_body(final)["result"]
