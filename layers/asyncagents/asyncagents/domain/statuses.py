"""A request's statuses and the transitions between them (every status write names where it may come from)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    AWAITING_CLARIFICATION = "awaiting_clarification"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

# Every status write names the statuses it may come from; nothing leaves a terminal status.
ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.PROCESSING, Status.FAILED, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.AWAITING_CLARIFICATION}),
    Status.AWAITING_CLARIFICATION: frozenset({Status.PROCESSING, Status.FAILED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}

# Statuses in which the workflow works (a step may run while another step's question waits).
WORKING = frozenset({Status.PROCESSING, Status.AWAITING_CLARIFICATION})


def sources_of(target: Status) -> frozenset[Status]:
    """The statuses from which ``target`` may be written."""
    return frozenset(source for source, targets in ALLOWED_TRANSITIONS.items() if target in targets)
