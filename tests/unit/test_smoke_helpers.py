"""The smoke suite's event builder: a trigger's data fields and ``when`` paths become one event, even when a
template reads both a value and a field inside it."""

from __future__ import annotations

from asyncagents.smoke import _put


def test_paths_build_one_event_and_a_parent_read_as_a_value_becomes_an_object():
    data: dict = {}
    for path in ("data.issue", "data.issue.title", "customer.email", "$.action"):
        _put(data, path, "smoke")
    _put(data, "$.action", "opened")
    assert data == {"issue": {"title": "smoke"}, "customer": {"email": "smoke"}, "action": "opened"}
    _put(data, "issue", "smoke")  # the object stays: its fields are what the template reads
    assert data["issue"] == {"title": "smoke"}
