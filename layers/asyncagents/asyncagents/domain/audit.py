"""Audit records of what admin keys did: who (the key), what (the call and its answer), when.

Every call an admin key made is recorded once its answer is known, refusals included (a 404 on someone's request is
a look at it too); calls without a valid admin key are not (anyone could fill the log with them). The record is
written before the answer leaves: if it cannot be written, the call still answers, and the failure is logged
where CloudWatch keeps it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from asyncagents.domain.ports import AuditStore
from asyncagents.domain.times import iso, utc_now

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    at: str
    key_id: str
    action: str  # the method and the path, with its query string
    status: int  # the HTTP status answered
    request_id: str  # API Gateway's id of the call (in its access logs too)


class Audit:
    """Records admin calls and lists them. The store and the clock are injected."""

    def __init__(self, store: AuditStore, *, retention_days: int, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._retention_seconds = retention_days * 86_400
        self._clock = clock

    def record(self, *, key_id: str, action: str, status: int, request_id: str) -> None:
        now = self._clock()
        entry = AuditEntry(
            entry_id=secrets.token_hex(16),
            at=iso(now),
            key_id=key_id,
            action=action[:2048],
            status=status,
            request_id=request_id,
        )
        try:
            self._store.append(asdict(entry), forget_at=int(now.timestamp()) + self._retention_seconds)
        except Exception:
            logger.error("could not write the audit record %s", asdict(entry), exc_info=True)

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[AuditEntry], str | None]:
        items, next_cursor = self._store.page(limit=limit, cursor=cursor)
        fields = set(AuditEntry.__dataclass_fields__)
        return [AuditEntry(**{k: v for k, v in item.items() if k in fields}) for item in items], next_cursor
