"""A request's events, as the data layer writes them on moto's DynamoDB: every status write and step write
appends its event in the same conditional write, numbers never move, a refused write appends nothing, a
record past the cap still ends with its terminal event, and a record from before events keeps its numbers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from asyncagents.data import request_updates as request_updates_module
from asyncagents.data.request_records import RequestRecords
from asyncagents.data.table_keys import request_item_key
from asyncagents.domain.errors import StaleWrite
from asyncagents.domain.progress import EventType, progress_events
from asyncagents.domain.records import Usage
from asyncagents.domain.statuses import Status
from tests.integration.requests_table import create_request, requests_table

pytestmark = pytest.mark.integration

TABLE = "events-requests"


@pytest.fixture
def table() -> Iterator[tuple[Any, RequestRecords]]:
    with requests_table(TABLE) as made:
        yield made


@pytest.fixture
def client(table) -> Any:
    return table[0]


@pytest.fixture
def records(table) -> RequestRecords:
    return table[1]


def accepted(records: RequestRecords, name: str = "r1") -> str:
    return create_request(
        records, name, prompt="a, b", execution_name="exec-1", lineage="exec-1", status_message="Request accepted"
    )


def plan(records: RequestRecords, key: str) -> None:
    records.transition(
        key,
        to=Status.PROCESSING,
        allowed_from={Status.PENDING},
        set_fields={
            "steps": [{"title": "A", "instruction": "a"}, {"title": "B", "instruction": "b"}],
            "total_steps": 2,
            "status_message": "Planned 2 steps",
            "step_attempts": {"0": 0, "1": 0},
        },
        event=EventType.PLANNED,
    )


def test_each_write_appends_its_event_and_the_replay_shows_the_progress_at_each(records):
    # Given an accepted request, planned into two steps
    key = accepted(records)
    plan(records, key)
    # When its steps start and finish (one retried) and it completes
    records.start_step(key, 0, generation="exec-1", title="A", message="Working on A")
    records.start_step(key, 0, generation="exec-1", title="A", message="Working on A (again)")
    records.count_step_done(key, 0, generation="exec-1", message="Finished A", usage=Usage())
    records.start_step(key, 1, generation="exec-1", title="B", message="Working on B")
    records.count_step_done(key, 1, generation="exec-1", message="Finished B", usage=Usage())
    records.transition(
        key, to=Status.COMPLETED, allowed_from={Status.PROCESSING}, set_fields={"status_message": "Completed"}
    )
    # Then every write is one numbered event, with the progress as it stood then
    record = records.get(key)
    events = progress_events(record)
    assert [(e.id, e.type, e.status, e.progress, e.current_step) for e in events] == [
        (1, "accepted", "pending", 0, None),
        (2, "planned", "processing", 5, None),
        (3, "step_started", "processing", 5, "A"),
        (4, "step_started", "processing", 5, "A"),
        (5, "step_completed", "processing", 50, "A"),
        (6, "step_started", "processing", 50, "B"),
        (7, "step_completed", "processing", 95, "B"),
        (8, "completed", "completed", 100, None),
    ]
    assert events[3].message == "Working on A (again)" and events[3].step == 0
    assert all(e.at.endswith("Z") for e in events)


def test_a_refused_write_appends_nothing(records):
    # Given a request that was cancelled
    key = accepted(records)
    plan(records, key)
    records.transition(key, to=Status.CANCELLED, allowed_from={Status.PROCESSING})
    before = records.get(key).events
    # When a late step tries to start and to count, and a second ending is tried
    with pytest.raises(StaleWrite):
        records.start_step(key, 0, generation="exec-1", title="A", message="late")
    with pytest.raises(StaleWrite):
        records.count_step_done(key, 0, generation="exec-1", message="late", usage=Usage())
    with pytest.raises(StaleWrite):
        records.transition(key, to=Status.FAILED, allowed_from={Status.PROCESSING})
    # Then the events are the same: the last one is the cancellation
    after = records.get(key).events
    assert after == before and after[-1]["type"] == "cancelled"


def test_past_the_cap_step_progress_goes_unrecorded_but_the_writes_and_status_changes_are(records, monkeypatch):
    # Given a cap of 4 entries
    monkeypatch.setattr(request_updates_module, "MAX_PROGRESS_ENTRIES", 4)
    key = accepted(records)
    plan(records, key)  # entries: accepted, planned
    records.start_step(key, 0, generation="exec-1", title="A", message="A 1")  # 3
    records.start_step(key, 0, generation="exec-1", title="A", message="A 2")  # 4: full
    # When more progress is written
    started = records.start_step(key, 0, generation="exec-1", title="A", message="A 3")
    records.count_step_done(key, 0, generation="exec-1", message="Finished A", usage=Usage())
    # Then the writes happened, without their events
    assert started.step_attempts == {"0": 3, "1": 0} and started.status_message == "A 3"
    record = records.get(key)
    assert record.completed_steps == 1 and len(record.events) == 4
    # And a refused write past the cap is still refused (the retry without the event keeps its conditions)
    with pytest.raises(StaleWrite):
        records.count_step_done(key, 0, generation="exec-1", message="twice", usage=Usage())
    # And status changes are still recorded, the end too, with the record's own final numbers
    records.transition(key, to=Status.AWAITING_CLARIFICATION, allowed_from={Status.PROCESSING}, event=EventType.WAITING)
    records.transition(
        key, to=Status.PROCESSING, allowed_from={Status.AWAITING_CLARIFICATION}, event=EventType.ANSWERED
    )
    records.transition(key, to=Status.COMPLETED, allowed_from={Status.PROCESSING}, set_fields={"total_steps": 1})
    events = progress_events(records.get(key))
    assert [e.type for e in events] == [
        "accepted",
        "planned",
        "step_started",
        "step_started",
        "waiting",
        "answered",
        "completed",
    ]
    assert events[4].status == "awaiting_clarification"
    assert (events[-1].completed_steps, events[-1].progress) == (1, 100)


def test_a_record_from_before_events_keeps_its_numbers(records, client):
    # Given a record written before events were recorded (no events attribute)
    key = accepted(records)
    client.update_item(TableName=TABLE, Key=request_item_key(key), UpdateExpression="REMOVE events")
    old = progress_events(records.get(key))
    assert [(e.id, e.type) for e in old] == [(1, "accepted")]
    # When the workflow writes to it
    plan(records, key)
    # Then event 1 is still there and the new one is 2
    events = progress_events(records.get(key))
    assert [(e.id, e.type) for e in events] == [(1, "accepted"), (2, "planned")]
    assert events[0].at == "2026-01-01T00:00:00.000000Z"


def test_steps_start_together_and_a_done_write_starts_the_next_all_or_nothing(records):
    # Given a planned request (steps 0 and 1; a third added to the plan's attempts for the chain below)
    key = accepted(records)
    plan(records, key)
    # When both steps start in one write
    both = records.start_steps(key, [(0, "A"), (1, "B")], generation="exec-1", message="Working on B")
    # Then each has its attempt and its call counted, and its own started event
    assert both.step_attempts == {"0": 1, "1": 1} and both.model_calls == 2 and both.current_step == "B"
    assert [(e["type"], e.get("step")) for e in both.events[-2:]] == [("step_started", 0), ("step_started", 1)]
    # When step 0 is counted done with a start of step 1 that cannot happen (step 1 is done meanwhile)
    records.count_step_done(key, 1, generation="exec-1", message="Finished B", usage=Usage())
    with pytest.raises(StaleWrite):
        records.count_step_done(
            key, 0, generation="exec-1", message="Finished A", usage=Usage(), then_start=[(1, "B")], start_message="x"
        )
    # Then nothing of that write happened: step 0 is not done, no attempt or call was added
    refused = records.get(key)
    assert refused.done_steps == {1} and refused.step_attempts == {"0": 1, "1": 1} and refused.model_calls == 2
    # When a done write starts a step that may start
    records.transition(
        key,
        to=Status.PROCESSING,
        allowed_from={Status.PROCESSING},
        set_fields={"step_attempts": {"0": 1, "1": 1, "2": 0}},
    )
    chained = records.count_step_done(
        key,
        0,
        generation="exec-1",
        message="Finished A",
        usage=Usage(input_tokens=3),
        then_start=[(2, "C")],
        start_message="Working on C",
        derived=True,
    )
    # Then the step is done and the next started, in that one write, with both events in order
    assert chained.done_steps == {0, 1} and chained.step_attempts["2"] == 1 and chained.model_calls == 3
    assert chained.status_message == "Working on C" and chained.current_step == "C" and chained.input_tokens_used == 3
    assert [(e["type"], e.get("step")) for e in chained.events[-2:]] == [("step_completed", 0), ("step_started", 2)]
    # And a start that is never used goes back
    records.unstart_step(key, 2)
    given_back = records.get(key)
    assert given_back.step_attempts["2"] == 0 and given_back.model_calls == 2
    # And a wave refused as a whole (the request ended) starts nothing
    records.transition(key, to=Status.CANCELLED, allowed_from={Status.PROCESSING})
    with pytest.raises(StaleWrite):
        records.start_steps(key, [(2, "C")], generation="exec-1", message="late")
    assert records.get(key).step_attempts["2"] == 0


def test_entries_are_stored_with_short_names_and_older_entries_replay_unchanged(client):
    # Given a request whose first entry was written by an older version (the domain's names, its moment as ISO text)
    moment = datetime(2026, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)
    ms = {"N": str(round(moment.timestamp() * 1000))}
    records = RequestRecords(client, TABLE, clock=lambda: moment)
    key = accepted(records)
    older = {"M": {"type": {"S": "accepted"}, "at": {"S": "2026-01-01T00:00:00.123456Z"}, "status": {"S": "pending"}}}
    client.update_item(
        TableName=TABLE,
        Key=request_item_key(key),
        UpdateExpression="SET events[0] = :older",
        ExpressionAttributeValues={":older": older},
    )
    # When writes append their entries (the plan, a step started with its message, a step done)
    plan(records, key)
    records.start_step(key, 0, generation="exec-1", title="A", message="Working on A")
    records.count_step_done(key, 0, generation="exec-1", message="A done", usage=Usage())
    # Then each new entry is a map of one-letter names, its type a number, its moment in epoch milliseconds (a map
    # still, as a release before could read it)
    stored = client.get_item(TableName=TABLE, Key=request_item_key(key))["Item"]["events"]["L"]
    assert stored[0] == older
    assert stored[2] == {"M": {"t": {"N": "2"}, "a": ms, "i": {"N": "0"}, "m": {"S": "Working on A"}}}
    assert set(stored[1]["M"]) == {"t", "a", "s", "n"} and stored[1]["M"]["t"] == {"N": "1"}
    # And every entry replays as it was written, the older one too
    events = progress_events(records.get(key))
    assert [e.at for e in events] == ["2026-01-01T00:00:00.123456Z"] + ["2026-03-04T05:06:07.891000Z"] * 3
    assert [e.type for e in events] == ["accepted", "planned", "step_started", "step_completed"]
    assert events[2].message == "Working on A" and events[3].message == "A done"
