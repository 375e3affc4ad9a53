"""How a request's progress entries (``domain.progress.entry``) are stored: maps with one-letter names and the type as
a number.

Every write of a request record pays for its whole size, events included, and a request appends two entries a step:
``{"type": "step_started", "at": 1796150063250, "step": 0}`` takes about 38 bytes; ``{"t": 2, "a": 1796150063250,
"i": 0}``, about 21. Still a map, so that a release before 0.3 (which reads entries as maps) still reads the record
after a rollback (it replays such entries as bare status events); entries written as 0.2 wrote them are read as they
are."""

from __future__ import annotations

from typing import Any

# The stored code of each entry type is its position here: append new types, never reorder or remove one.
_TYPES = (
    "accepted",
    "planned",
    "step_started",
    "step_completed",
    "question",
    "waiting",
    "answered",
    "redriven",
    "status",
    "completed",
    "failed",
    "cancelled",
)
_CODES = {name: code for code, name in enumerate(_TYPES)}
# Each field's stored name (the type's is "t").
_NAMES = {"at": "a", "step": "i", "status": "s", "total": "n", "message": "m", "title": "h"}
_FIELDS = {short: name for name, short in _NAMES.items()}


def stored(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as stored (a type this release does not know keeps its name)."""
    fields = {_NAMES.get(name, name): value for name, value in entry.items() if name != "type" and value is not None}
    return {"t": _CODES.get(entry["type"], entry["type"]), **fields}


def entry_of(value: dict[str, Any]) -> dict[str, Any]:
    """An entry as the domain writes it, from its stored form (or as 0.2 stored it: the domain's own names)."""
    if "t" not in value:
        return value
    kind = value["t"]
    if not isinstance(kind, str):  # an int, or a Decimal from a stream image
        kind = int(kind)
    name = _TYPES[kind] if isinstance(kind, int) and 0 <= kind < len(_TYPES) else str(kind)
    return {"type": name, **{_FIELDS.get(short, short): found for short, found in value.items() if short != "t"}}


def entries_of(values: Any) -> list[dict[str, Any]]:
    return [entry_of(value) for value in values or []]
