"""What the domain needs from storage and from the workflow engine (implemented in ``asyncagents.data``,
faked in unit tests)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from asyncagents.domain.records import RequestRecord, Status


class RequestStore(Protocol):
    def create(self, fields: dict[str, Any], *, now_epoch: float) -> RequestRecord | None: ...

    def get(self, pk: str) -> RequestRecord | None: ...

    def transition(
        self,
        pk: str,
        *,
        to: Status,
        allowed_from: Iterable[Status],
        set_fields: dict[str, Any] | None = None,
        remove_fields: Iterable[str] = (),
        generation: str | None = None,
        expected: dict[str, Any] | None = None,
        increments: dict[str, int] | None = None,
    ) -> RequestRecord: ...

    def set_fields(self, pk: str, fields: dict[str, Any], *, only_in: Iterable[Status] = ()) -> RequestRecord: ...

    def list_for_owner(
        self, owner: str, *, limit: int, cursor: str | None, status: Status | None, now_epoch: float
    ) -> tuple[list[RequestRecord], str | None]: ...

    def start_step(self, pk: str, index: int, *, generation: str, title: str, message: str) -> RequestRecord: ...

    def finish_step(
        self,
        pk: str,
        index: int,
        *,
        generation: str,
        lineage: str,
        output: dict[str, Any],
        message: str,
        ttl: int,
        tokens: int = 0,
        calls: int = 1,
    ) -> None: ...

    def step_outputs(self, pk: str, lineage: str) -> list[dict[str, Any]]: ...


class KeyStore(Protocol):
    def put_key(self, *, secret_hash: str, key_id: str, kind: str, label: str, created_at: str) -> None: ...

    def get_key(self, secret_hash: str) -> dict[str, Any] | None: ...

    def revoke_key(self, key_id: str, *, revoked_at: str) -> bool: ...


class WorkflowEngine(Protocol):
    def start(self, execution_name: str, payload: dict[str, Any]) -> None: ...

    def stop(self, execution_name: str, *, cause: str) -> None: ...

    def resume(self, task_token: str, output: dict[str, Any]) -> bool: ...

    def fail_task(self, task_token: str, *, error: str, cause: str) -> bool: ...
