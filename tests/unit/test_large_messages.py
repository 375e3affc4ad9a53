"""A message over 1 KB lives in the bucket, its preview in the record: every model call still gets all of it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from asyncagents.config import parse_formation
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import Conflict, RequestExpired, Unavailable
from asyncagents.domain.messages import INLINE_MESSAGE_BYTES, MESSAGE_PREVIEW_CHARS, message_fields
from asyncagents.domain.questions import new_question
from asyncagents.domain.requests import NewRequest, RequestService
from asyncagents.domain.statuses import Status
from asyncagents.domain.webhooks.payload import build_payload, snapshot_of
from asyncagents.domain.workflow import WorkflowSteps
from asyncagents.providers.demo import DemoProvider

from .fakes import FakeTimer, InMemoryStore, ManualClock, MemoryArtifacts, RecordingEngine

ALICE = Principal(key_id="key_a", user_id="alice")
# The clauses the demo plans from come after the preview: only the whole message gives three steps.
LONG = "Background: " + "the quarterly figures region by region " * 80 + "then compare vendors, write a summary"


class CountingArtifacts(MemoryArtifacts):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get(self, key: str) -> bytes:
        self.reads.append(key)
        return super().get(key)


class RecordingDemo(DemoProvider):
    """The demo provider, noting the message each kind of call got."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.messages: dict[str, list[str]] = {"plan": [], "step": [], "finish": []}

    def plan(self, message, **kwargs):
        self.messages["plan"].append(message)
        return super().plan(message, **kwargs)

    def run_step(self, step, context):
        self.messages["step"].append(context.message)
        return super().run_step(step, context)

    def finish(self, message, outputs, clarifications=None):
        self.messages["finish"].append(message)
        return super().finish(message, outputs, clarifications)


@pytest.fixture
def formation():
    return parse_formation({"llm": {"demo": {"step_seconds": 0}}})


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def artifacts() -> CountingArtifacts:
    return CountingArtifacts()


def _service(store, formation, artifacts) -> RequestService:
    timer = FakeTimer()
    clock = ManualClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
    return RequestService(
        store,
        RecordingEngine(),
        formation,
        clock=clock,
        sleep=timer.sleep,
        monotonic=timer.monotonic,
        artifacts=artifacts,
    )


def test_a_long_message_is_kept_in_the_bucket_and_every_call_gets_all_of_it(store, formation, artifacts) -> None:
    # Given a 3 KB message, accepted
    record = _service(store, formation, artifacts).submit(ALICE, NewRequest(message=LONG)).record
    stored = store.get(record.request_key)

    # Then the record keeps a preview and the bucket the whole message, named by the request and its body
    assert stored.prompt == LONG[:MESSAGE_PREVIEW_CHARS] and stored.prompt_key
    assert stored.prompt_key.startswith(f"texts/{record.request_key}/message-")
    assert artifacts.objects[stored.prompt_key] == (LONG.encode(), "text/plain; charset=utf-8")

    # When the workflow runs it (the Run function: plan, steps, answer)
    provider = RecordingDemo(formation.llm.demo, sleep=lambda _: None)
    steps = WorkflowSteps(store, store, provider, formation, artifacts=artifacts)
    steps.run(record.request_key, stored.execution_name, deadline=time.time() + 600)

    # Then the planner, each step and the answer had the whole message: three steps, split where the preview ends
    done = store.get(record.request_key)
    assert done.status is Status.COMPLETED and done.total_steps == 3
    assert provider.messages == {"plan": [LONG], "step": [LONG] * 3, "finish": [LONG]}
    assert len(provider.plan(stored.prompt, max_steps=50).steps) == 1  # what the preview alone would have given
    assert artifacts.reads == [stored.prompt_key]  # read once by the container, not by every call


@pytest.mark.parametrize(
    ("size", "in_bucket"), [(INLINE_MESSAGE_BYTES, False), (INLINE_MESSAGE_BYTES + 1, True)], ids=["1 KB", "over"]
)
def test_up_to_1_kb_a_message_stays_in_its_record(store, formation, artifacts, size, in_bucket) -> None:
    message = "é" * (size // 2) + "x" * (size % 2)  # bytes, not characters, count
    record = _service(store, formation, artifacts).submit(ALICE, NewRequest(message=message)).record
    stored = store.get(record.request_key)
    assert (stored.prompt_key is not None, bool(artifacts.objects)) == (in_bucket, in_bucket)
    assert stored.prompt == (message[:MESSAGE_PREVIEW_CHARS] if in_bucket else message)


def test_without_a_bucket_a_long_message_stays_in_its_record(store, formation) -> None:
    record = _service(store, formation, None).submit(ALICE, NewRequest(message=LONG)).record
    stored = store.get(record.request_key)
    assert (stored.prompt, stored.prompt_key) == (LONG, None)


def test_a_conflicting_body_never_overwrites_the_accepted_message(store, formation, artifacts) -> None:
    # Given a long message accepted under the client's request id
    service = _service(store, formation, artifacts)
    first = service.submit(ALICE, NewRequest(message=LONG, request_id="report-7")).record
    # When another body comes with the same id (409), and the same body again (the same request)
    with pytest.raises(Conflict):
        service.submit(ALICE, NewRequest(message=LONG + " and more", request_id="report-7"))
    again = service.submit(ALICE, NewRequest(message=LONG, request_id="report-7")).record
    # Then the accepted request's message is still its own
    key = store.get(first.request_key).prompt_key
    assert again.request_key == first.request_key and artifacts.get(key) == LONG.encode()


def test_a_question_webhook_carries_the_whole_original_message(store, formation, artifacts) -> None:
    # Given a long request waiting for an answer
    record = _service(store, formation, artifacts).submit(ALICE, NewRequest(message=LONG)).record
    asked = new_question("Which region first?", step_index=None, step_title="Planning", now=datetime.now(UTC))
    asked = asked.model_copy(update={"token": "task-token", "asked_at": asked.recorded_at})  # waited on
    waiting = store.get(record.request_key).model_copy(
        update={"status": Status.AWAITING_CLARIFICATION, "questions": {asked.key: asked}}
    )
    # Then the queued snapshot keeps the reference, and the body sent has the whole message, not the key
    assert snapshot_of(waiting)["original_message_key"] == waiting.prompt_key
    sent = build_payload(waiting, stored_text=lambda key: artifacts.get(key).decode())
    assert sent["original_message"] == LONG and "original_message_key" not in sent


class DownBucket(CountingArtifacts):
    """A bucket that refuses writes (an outage)."""

    def put(self, key: str, content: bytes, content_type: str) -> None:
        raise ConnectionError("the bucket is down")


def test_a_repeat_of_a_named_request_does_not_store_its_message_again(store, formation, artifacts) -> None:
    # Given a long message accepted under the client's request id
    first = _service(store, formation, artifacts).submit(ALICE, NewRequest(message=LONG, request_id="report-8"))
    stored = dict(artifacts.objects)
    # When the client retries it, and sends a conflicting body under the same id, while the bucket is down
    down = DownBucket()
    again = _service(store, formation, down).submit(ALICE, NewRequest(message=LONG, request_id="report-8"))
    with pytest.raises(Conflict):
        _service(store, formation, down).submit(ALICE, NewRequest(message=LONG + " more", request_id="report-8"))
    # Then the retry is the same request, the conflict a 409: neither touched the bucket
    assert again.record.request_key == first.record.request_key
    assert down.objects == {} and artifacts.objects == stored


def test_a_message_the_bucket_cannot_take_is_not_accepted_and_can_be_sent_again(store, formation, artifacts) -> None:
    # When the bucket refuses a long message
    with pytest.raises(Unavailable):
        _service(store, formation, DownBucket()).submit(ALICE, NewRequest(message=LONG, request_id="report-9"))
    # Then nothing was recorded (a 503: the client sends it again), and sent again it is accepted
    assert store.items == {}
    accepted = _service(store, formation, artifacts).submit(ALICE, NewRequest(message=LONG, request_id="report-9"))
    assert store.get(accepted.record.request_key).prompt_key in artifacts.objects


def test_a_named_request_whose_result_expired_is_answered_as_before(store, formation, artifacts) -> None:
    # Given a long named request that ended, and whose result expired (its record is still in the table)
    service = _service(store, formation, artifacts)
    first = service.submit(ALICE, NewRequest(message=LONG, request_id="report-10")).record
    store.items[first.request_key]["expires_at"] = 1.0
    # When it is sent again: the expired record is not the request (409 result_expired, as for any named request)
    with pytest.raises(RequestExpired):
        service.submit(ALICE, NewRequest(message=LONG, request_id="report-10"))


def test_two_bodies_under_one_request_never_share_an_object(artifacts) -> None:
    # Two different bodies sent at the same moment under one request id (before either record exists): each stores
    # its own object, so whichever record wins points at its own message
    first = message_fields(artifacts, "a" * 32, "1" * 32, LONG)
    second = message_fields(artifacts, "a" * 32, "2" * 32, LONG + " and more")
    assert first["prompt_key"] != second["prompt_key"]
    assert artifacts.get(first["prompt_key"]) == LONG.encode()
    assert artifacts.get(second["prompt_key"]) == (LONG + " and more").encode()
