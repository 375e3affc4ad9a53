"""Faults the local stack can inject, to show that nothing accepted is lost when parts of AWS misbehave.

``LocalStack.faults`` is read on every event, so a test (or a person at ``make local``) can switch a fault on
and off while the stack runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ContainerKilled(BaseException):
    """The function's container died mid-invocation (out of memory, a crash): no ``except Exception`` runs."""


@dataclass
class Faults:
    # Execution status events EventBridge loses on the way to the reconciler (AWS: best-effort delivery).
    drop_status_events: bool = False
    # Functions (logical ids) whose every invocation fails.
    failing_functions: set[str] = field(default_factory=set)
    # The API's container dies after writing a request and before starting its workflow, this many times.
    kill_api_before_start: int = 0
    # Request ids whose completion, on the table's stream, every function fails on (a poison record).
    poison_completions: set[str] = field(default_factory=set)

    def drops(self, event: dict[str, Any]) -> bool:
        return self.drop_status_events

    def check(self, function: str, event: dict[str, Any]) -> None:
        if function in self.failing_functions:
            raise InjectedFailure(f"{function} fails (fault injected)")
        for record in event.get("Records", []) if self.poison_completions else []:
            image = (record.get("dynamodb") or {}).get("NewImage") or {}
            request_id = (image.get("request_id") or {}).get("S")
            if request_id in self.poison_completions and (image.get("status") or {}).get("S") == "completed":
                raise InjectedFailure(f"{function} fails on the completion of {request_id} (poison record)")

    def kill_before_start(self) -> None:
        if self.kill_api_before_start > 0:
            self.kill_api_before_start -= 1
            raise ContainerKilled("the API's container died between the write and the start (fault injected)")


class InjectedFailure(RuntimeError):
    """A function failed because a test asked it to."""
