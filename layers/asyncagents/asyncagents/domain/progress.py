"""A request's progress as an ordered, numbered list of events, for clients that follow it.

Every write that changes what a client sees (a status, the plan, a step starting or finishing, a question)
appends one compact entry to the record's ``events`` list in the same conditional write: the list is never a
second source of truth, and DynamoDB serialises the writes on one item, so an entry's position is its number
for ever (1, 2, 3, ...). ``progress_events`` replays the entries into the events clients receive, with the
progress as it stood at each one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import iso, parse_iso
from asyncagents.model_base import LazyModel

# Step entries kept per request: a request that retries every step of a long plan many times stops recording
# its steps' starts and ends there (its status changes and its end are always recorded), so the record stays
# far below DynamoDB's 400 KB (a step entry is 100 to 350 bytes, its title included).
MAX_PROGRESS_ENTRIES = 300


def step_started_message(index: int, title: str) -> str:
    return f"Working on step {index + 1}: {title}"


def planned_message(total: int) -> str:
    return f"Planned {total} step{'s' if total != 1 else ''}"


def step_finished_message(index: int, total: int, title: str) -> str:
    return f"Finished step {index + 1} of {total}: {title}"


class EventType(StrEnum):
    ACCEPTED = "accepted"
    PLANNED = "planned"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    QUESTION = "question"  # a question for the user was recorded (the workflow waits on it next)
    WAITING = "waiting"  # the workflow waits for the user's answer
    ANSWERED = "answered"  # a question was closed: answered, or unanswered past its timeout
    REDRIVEN = "redriven"
    STATUS = "status"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in {EventType.COMPLETED, EventType.FAILED, EventType.CANCELLED}


def entry(
    event_type: EventType,
    at: datetime | str,
    *,
    status: Status | None = None,
    message: str | None = None,
    step: int | None = None,
    title: str | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """One stored entry: what happened, when, and only what the replay cannot know otherwise."""
    fields = {
        "type": event_type.value,
        # Epoch milliseconds (8 bytes where the ISO text takes 27: every write of the record pays for its entries).
        "at": round((parse_iso(at) if isinstance(at, str) else at).timestamp() * 1000),
        "status": status.value if status else None,
        "message": message,
        "step": step,
        "title": title,
        "total": total,
    }
    return {name: value for name, value in fields.items() if value is not None}


def transition_entry(
    to: Status, at: datetime, set_fields: dict[str, Any], event_type: EventType | None = None
) -> dict[str, Any]:
    """The entry of a status write: ``event_type`` as the writer names it, else the terminal status's own
    type or ``status``."""
    if event_type is None:
        event_type = EventType(to.value) if to.is_terminal else EventType.STATUS
    return entry(
        event_type,
        at,
        status=to,
        # A plan's message is made again by the replay (the record's may already name the first step it started).
        message=None if event_type is EventType.PLANNED else set_fields.get("status_message"),
        total=set_fields.get("total_steps"),
    )


class ProgressEvent(LazyModel):
    """One event as clients receive it: its number, what happened, and the progress at that moment."""

    id: int
    type: str
    at: str
    status: str
    progress: int
    total_steps: int
    completed_steps: int
    current_step: str | None = None
    message: str
    step: int | None = None  # the step's index (0-based) for step events

    @property
    def is_terminal(self) -> bool:
        return self.type in {t.value for t in EventType if t.is_terminal}


def _percent(status: str, completed: int, total: int) -> int:
    # As RequestRecord.progress: planning 5 %, steps 90 %, composing the answer 5 %; 100 only when completed.
    if status == Status.COMPLETED.value:
        return 100
    return 0 if total == 0 else 5 + (90 * min(completed, total)) // total


def _step_message(record: RequestRecord, kind: str, stored: dict[str, Any], total: int) -> str | None:
    """A step entry's message, which it does not store (every write pays for the record's size, entries included):
    the writer's, made again from the step's index and title."""
    if kind == EventType.PLANNED and total:
        return planned_message(total)
    step = stored.get("step")
    if step is None or kind not in (EventType.STEP_STARTED, EventType.STEP_COMPLETED):
        return None
    index = int(step)
    title = stored.get("title") or (record.steps[index].title if index < len(record.steps) else "")
    if kind == EventType.STEP_STARTED:
        return step_started_message(index, str(title))
    return step_finished_message(index, total or len(record.steps), str(title))


def _moment(at: Any, created_at: str) -> str:
    """An entry's moment as clients see it (ISO): stored as epoch milliseconds, or as ISO text by older writes."""
    if at is None or at == "":
        return created_at
    if isinstance(at, str):
        return at
    return iso(datetime.fromtimestamp(int(at) / 1000, UTC))


def _planned_title(record: RequestRecord, step: Any) -> str | None:
    """A step's title as the plan has it (step entries written since titles left them do not store it)."""
    return record.steps[int(step)].title if step is not None and int(step) < len(record.steps) else None


def progress_events(record: RequestRecord) -> list[ProgressEvent]:
    """The request's events, numbered from 1, with the progress each one saw. A record written before events
    were recorded gets one event that describes it as it is now (its first write after the upgrade stores an
    entry in that place, so the numbers do not move)."""
    entries = record.events or [{"type": EventType.ACCEPTED.value, "at": record.created_at}]
    status = Status.PENDING.value
    total = 0
    finished: set[Any] = set()  # a step that ran again (its output was gone) is counted once
    current: str | None = None
    message = record.status_message
    events: list[ProgressEvent] = []
    for number, stored in enumerate(entries, start=1):
        kind = str(stored.get("type") or EventType.STATUS.value)
        status = str(stored.get("status") or status)
        if "total" in stored:
            total = int(stored["total"])
        message = str(stored.get("message") or _step_message(record, kind, stored, total) or message)
        if kind == EventType.STEP_STARTED:
            current = stored.get("title") or _planned_title(record, stored.get("step")) or current
        elif kind == EventType.STEP_COMPLETED:
            finished.add(stored.get("step", number))  # entries from before steps were named: each its own
        completed = len(finished)
        if not record.events:  # a record from before events: as it is now
            status, total, completed, current = (
                record.status.value,
                record.total_steps,
                record.completed_steps,
                record.current_step,
            )
        terminal = kind in {t.value for t in EventType if t.is_terminal}
        if terminal and number == len(entries) and record.status.is_terminal:
            # The end as the record holds it (authoritative even when progress entries were capped).
            status, total, completed, current = record.status.value, record.total_steps, record.completed_steps, None
        events.append(
            ProgressEvent(
                id=number,
                type=kind,
                at=_moment(stored.get("at"), record.created_at),
                status=status,
                progress=_percent(status, completed, total),
                total_steps=total,
                completed_steps=completed,
                current_step=current,
                message=message,
                step=stored.get("step"),
            )
        )
    return events
