"""The conditions every workflow write carries, against the real data layer on moto's DynamoDB: a step of a
request that is no longer working (cancelled, failed, or moved to another execution) can neither start nor be
counted, and its counters stay as they were."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from asyncagents.data.request_records import RequestRecords
from asyncagents.domain.errors import StaleWrite
from asyncagents.domain.records import RequestRecord, Usage, request_key
from asyncagents.domain.statuses import Status
from asyncagents.local.stack import create_table
from asyncagents.local.template import read_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TABLE = "guards-requests"


@pytest.fixture
def records() -> Iterator[RequestRecords]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE, read_stack(ROOT / "template.yaml").table_properties)
        yield RequestRecords(client, TABLE)


def planned(records: RequestRecords, status: Status) -> RequestRecord:
    """A request planned into two steps, left in ``status`` (by the conditional writes themselves)."""
    key = request_key("key_1", "user", f"guard-{status.value}")
    fields = {
        "request_key": key,
        "request_id": f"guard-{status.value}",
        "key_id": "key_1",
        "user_id": "user",
        "status": Status.PENDING.value,
        "prompt": "a, b",
        "fingerprint": "f",
        "formation_id": "f",
        "execution_name": "exec-1",
        "lineage": "exec-1",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "questions": {},
        "questions_version": 0,
    }
    assert records.create(fields, now_epoch=0) is None
    steps = [{"title": "A", "instruction": "a"}, {"title": "B", "instruction": "b"}]
    record = records.transition(
        key,
        to=Status.PROCESSING,
        allowed_from={Status.PENDING},
        set_fields={"steps": steps, "total_steps": 2, "step_attempts": {"0": 0, "1": 0}},
    )
    if status is not Status.PROCESSING:
        record = records.transition(key, to=status, allowed_from={Status.PROCESSING})
    return record


def counters(record: RequestRecord) -> tuple[int, int, int, set[int], dict[str, int]]:
    return record.completed_steps, record.model_calls, record.tokens_used, record.done_steps, record.step_attempts


def test_a_working_request_starts_and_counts_its_steps_once(records):
    # Given a processing request
    record = planned(records, Status.PROCESSING)
    # When a step starts (its attempt and the model call it is about to make counted in one write) and is counted done
    started = records.start_step(record.request_key, 0, generation="exec-1", title="A", message="m")
    assert started.model_calls == 1
    records.count_step_done(record.request_key, 0, generation="exec-1", message="done", usage=Usage(input_tokens=7))
    # Then its attempt, its count and its usage are recorded, and a second count or start is refused
    assert started.step_attempts == {"0": 1, "1": 0} and started.current_step == "A"
    with pytest.raises(StaleWrite):
        records.count_step_done(
            record.request_key, 0, generation="exec-1", message="again", usage=Usage(input_tokens=7)
        )
    with pytest.raises(StaleWrite):
        records.start_step(record.request_key, 0, generation="exec-1", title="A", message="m")
    assert counters(records.get(record.request_key)) == (1, 1, 7, {0}, {"0": 1, "1": 0})


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.FAILED, Status.COMPLETED])
def test_a_step_of_an_ended_request_can_neither_start_nor_count(records, status):
    # Given a request that ended (a cancel, a failure, a completion) while its workflow still runs
    record = planned(records, status)
    before = counters(records.get(record.request_key))
    # When a late attempt of a step starts, or one that was already running tries to count its result
    with pytest.raises(StaleWrite) as refused:
        records.start_step(record.request_key, 1, generation="exec-1", title="B", message="Working on step 2")
    assert refused.value.details["current"].status is status  # the record as it is now, from the same call
    with pytest.raises(StaleWrite):
        records.count_step_done(
            record.request_key, 1, generation="exec-1", message="done", usage=Usage(input_tokens=50)
        )
    # Then nothing about the request changed: no progress, no calls, no tokens, no attempt, no status text
    after = records.get(record.request_key)
    assert counters(after) == before and after.status is status and after.current_step is None
    # Except that a call an attempt made anyway (it was paid) is counted, with its tokens, and nothing else
    records.add_usage(record.request_key, calls=1, usage=Usage(input_tokens=3, output_tokens=4))
    paid = records.get(record.request_key)
    assert (paid.model_calls, paid.tokens_used, paid.input_tokens_used, paid.output_tokens_used) == (
        before[1] + 1,
        before[2] + 7,
        3,
        4,
    )
    assert (paid.status, paid.completed_steps, paid.done_steps) == (status, before[0], before[3])


def test_a_step_of_another_execution_can_neither_start_nor_count(records):
    # Given a processing request redriven into a new execution
    record = planned(records, Status.PROCESSING)
    records.set_fields(record.request_key, {"execution_name": "exec-2"})
    # When the old execution's step runs; then it is refused
    with pytest.raises(StaleWrite):
        records.start_step(record.request_key, 0, generation="exec-1", title="A", message="m")
    with pytest.raises(StaleWrite):
        records.count_step_done(record.request_key, 0, generation="exec-1", message="done", usage=Usage(input_tokens=5))
    assert counters(records.get(record.request_key)) == (0, 0, 0, set(), {"0": 0, "1": 0})


def test_the_unfinished_index_holds_exactly_the_requests_that_are_not_terminal(records):
    # Given requests through every kind of status write: created, ended, redriven, replaced after expiry
    def unfinished() -> set[str]:
        return set(records.unfinished(created_before="9999-01-01T00:00:00.000000Z"))

    working = planned(records, Status.PROCESSING)
    cancelled = planned(records, Status.CANCELLED)
    failed = planned(records, Status.FAILED)
    assert unfinished() == {working.request_key}
    # When a failed request is redriven, it is back; when the working one completes, it is out
    records.transition(failed.request_key, to=Status.PROCESSING, allowed_from={Status.FAILED})
    records.transition(working.request_key, to=Status.COMPLETED, allowed_from={Status.PROCESSING})
    assert unfinished() == {failed.request_key}
    # When an expired request's id is reused, the new request is in; the cancelled one never came back
    records.set_fields(cancelled.request_key, {"expires_at": 1.0})
    fields = {
        **cancelled.model_dump(mode="json", exclude_none=True),
        "status": "pending",
        "request_key": cancelled.request_key,
    }
    assert records.create(fields, now_epoch=2.0) is None
    assert unfinished() == {failed.request_key, cancelled.request_key}


def test_a_write_that_needs_an_attribute_absent_is_refused_once_it_is_there(records):
    # Given a processing request whose plan was stored by a write named "t1"
    record = planned(records, Status.PROCESSING)
    records.transition(
        record.request_key, to=Status.PROCESSING, allowed_from={Status.PROCESSING}, set_fields={"planned_by": "t1"}
    )
    # When the same write comes again (an SDK retry whose answer was lost); then it is refused, the record as it was
    with pytest.raises(StaleWrite) as refused:
        records.transition(
            record.request_key,
            to=Status.PROCESSING,
            allowed_from={Status.PROCESSING},
            set_fields={"planned_by": "t1"},
            increments={"model_calls": 3},
            absent=("planned_by",),
        )
    assert refused.value.details["current"].planned_by == "t1"
    assert records.get(record.request_key).model_calls == record.model_calls
