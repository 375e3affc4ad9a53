"""Progress entries as stored: maps of one-letter names that read back as the entries written, whatever they hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from asyncagents.data.event_entries import entry_of, stored
from asyncagents.domain.progress import EventType, entry
from asyncagents.domain.statuses import Status

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", list(EventType))
def test_every_entry_type_has_a_code_and_reads_back(kind):
    written = entry(kind, AT, status=Status.PROCESSING, message='a | b, "c" é', step=3, title="T", total=7)
    assert isinstance(stored(written)["t"], int)  # a code, not the type's name
    assert all(len(name) == 1 for name in stored(written))
    assert entry_of(stored(written)) == written


def test_an_entry_keeps_only_what_it_has_and_an_unknown_type_keeps_its_name():
    started = entry(EventType.STEP_STARTED, AT, step=0)
    assert stored(started) == {"t": 2, "a": round(AT.timestamp() * 1000), "i": 0}
    assert entry_of(stored(started)) == started
    later = {"type": "paused", "at": 5, "message": "m"}  # a type of a later release
    assert entry_of(stored(later)) == later
    assert entry_of({"type": "accepted", "at": "2026-01-01T00:00:00Z"}) == {
        "type": "accepted",
        "at": "2026-01-01T00:00:00Z",
    }


def test_a_stream_image_has_its_entries_as_the_domain_wrote_them():
    from boto3.dynamodb.types import TypeDeserializer

    from asyncagents.data.dynamo import serialize
    from asyncagents.data.request_items import request_image

    written = [entry(EventType.ACCEPTED, AT, status=Status.PENDING), entry(EventType.STEP_STARTED, AT, step=0)]
    # As the stream hands them over: deserialised, numbers as Decimals
    events = [TypeDeserializer().deserialize(serialize(stored(e))) for e in written]
    image = {"pk": "REQ#" + "a" * 32, "sk": "REQUEST", "status": "processing", "events": events}
    assert request_image(image)["events"] == written
