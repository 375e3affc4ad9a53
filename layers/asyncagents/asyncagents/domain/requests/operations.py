"""Reading, listing, cancelling and redriving a caller's requests."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import Conflict, NotFound, StaleWrite
from asyncagents.domain.lifecycle import Endings
from asyncagents.domain.ports import RequestStore, WorkflowEngine
from asyncagents.domain.progress import EventType
from asyncagents.domain.records import REQUEST_ID_PATTERN, RequestRecord, execution_name_for, request_key
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import iso, parse_iso

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


class Lookup:
    """The caller's requests: unknown, expired and other users' requests are all ``NotFound``."""

    def __init__(self, store: RequestStore, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def get(self, principal: Principal, request_id: str) -> RequestRecord:
        record = self._store.get(self.key(principal, request_id), with_delivery=True)
        if record is None or record.is_expired(self._clock()):
            raise NotFound(f"request {request_id} not found")
        return record

    def list(
        self, principal: Principal, *, limit: int, cursor: str | None, status: Status | None
    ) -> tuple[list[RequestRecord], str | None]:
        return self._store.list_for_owner(
            principal.key_id,
            principal.user_id,
            limit=limit,
            cursor=cursor,
            status=status,
            now_epoch=self._clock().timestamp(),
        )

    @staticmethod
    def key(principal: Principal, request_id: str) -> str:
        if not _REQUEST_ID.match(request_id):
            raise NotFound(f"request {request_id} not found")
        return request_key(principal.key_id, principal.user_id, request_id)


class Operations:
    """Cancel (a client's call) and redrive (an operator's)."""

    def __init__(
        self,
        store: RequestStore,
        engine: WorkflowEngine,
        lookup: Lookup,
        endings: Endings,
        clock: Callable[[], datetime],
        *,
        kept_until: Callable[[datetime], int] | None = None,
        redrivable_until: Callable[[RequestRecord], datetime] | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        self._lookup = lookup
        self._endings = endings
        self._clock = clock
        # When what a run started at a moment keeps (its plan, its checkpoints) may be forgotten (epoch seconds).
        self._kept_until = kept_until
        # Until when a request's texts in the bucket outlast a new run of it.
        self._redrivable_until = redrivable_until

    def cancel(self, principal: Principal, request_id: str) -> tuple[RequestRecord, bool]:
        """Mark the request cancelled and stop its execution. Returns the record and whether it was
        already cancelled. A completed or failed request is a ``Conflict`` naming its status."""
        try:
            current = self._lookup.get(principal, request_id)
            record = self._endings.end(current, Status.CANCELLED, {"status_message": "Request cancelled by user"})
        except StaleWrite as stale:
            latest: RequestRecord | None = stale.details.get("current")
            if latest is None or latest.is_expired(self._clock()):
                raise NotFound(f"request {request_id} not found") from None
            if latest.status is Status.CANCELLED:
                # Stopped again: the cancel that wrote it may have lost its answer before stopping anything (its
                # retry is refused as stale), or failed to stop; both calls do nothing the second time.
                self._stop(latest)
                return latest, True
            raise Conflict(
                f"request {request_id} is already {latest.status.value} and cannot be cancelled",
                details={"request_id": request_id, "status": latest.status.value},
            ) from None
        self._stop(record)
        return record, False

    def _stop(self, record: RequestRecord) -> None:
        """Stop a cancelled request's execution and end its waits (best effort: the cancel itself stands)."""
        try:
            self._engine.stop(record.execution_name, cause="Request cancelled by user")
        except Exception:  # the workers' checkpoints stop the work anyway
            logger.exception("could not stop execution %s", record.execution_name)
        # StopExecution ends waits on task tokens on AWS; ending them explicitly as well costs little and
        # covers engines that do not (moto), so a cancelled request never leaves a wait behind.
        for question in record.questions.values():
            if question.token:
                try:
                    self._engine.fail_task(question.token, error="RequestCancelled", cause="Request cancelled by user")
                except Exception:
                    logger.exception("could not end the wait for question %s", question.id)

    def redrive(self, principal: Principal, request_id: str) -> RequestRecord:
        """Resume a failed request in a new execution of the same lineage: finished steps are skipped
        (their checkpoints are kept), the failed step and those after it run again.

        The one way a terminal status is ever left, and only by an operator: ``failed`` goes back to
        ``processing``, the error is kept as ``redriven_error``, ``redrive_count`` grows.
        """
        record = self._lookup.get(principal, request_id)
        if record.status is not Status.FAILED:
            raise Conflict(
                f"request {request_id} is {record.status.value}; only failed requests can be redriven",
                details={"request_id": request_id, "status": record.status.value},
            )
        attempt = record.redrive_count + 1
        now = self._clock()
        if record.planned_by and not record.steps:
            raise Conflict(
                f"request {request_id} can no longer be redriven: its plan is no longer kept; submit it again",
                details={"request_id": request_id},
            )
        if self._redrivable_until is not None and now > (until := self._redrivable_until(record)):
            raise Conflict(
                f"request {request_id} can no longer be redriven: a new run could outlive its message and outputs in "
                f"the bucket (kept for a run started until {iso(until)}); submit it again",
                details={"request_id": request_id, "redrivable_until": iso(until)},
            )
        execution_name = execution_name_for(record.request_key, now, redrive=attempt)
        if self._kept_until is not None:
            # First: the plan and the finished steps' outputs live as long as the new run and its retention need them
            # (a step counted done is not run again, so its output must still be there when it is read). Only ever
            # lengthened, so a redrive that then fails (or loses to another) changed nothing that matters.
            self._store.keep_run(
                record.request_key,
                planned_by=record.planned_by or None,
                lineage=record.checkpoint_lineage,
                until=self._kept_until(now),
            )
        resumed = self._store.transition(
            record.request_key,
            to=Status.PROCESSING,
            allowed_from={Status.FAILED},
            set_fields={
                "execution_name": execution_name,
                "lineage": record.checkpoint_lineage,
                "redrive_count": attempt,
                "generation_started_at": iso(now),  # the sweeper's grace period starts again
                "redriven_error": record.error.model_dump(exclude_none=True) if record.error else None,
                "attempts_before_redrive": dict(record.step_attempts),
                "status_message": f"Redriven: resuming after {record.completed_steps} finished step(s)",
                # Questions left open by the failed execution are asked again by the new one. The time since the
                # failure is nobody's work (``max_wall_seconds`` counts the agent's): not charged.
                "questions": {},
                "questions_version": record.questions_version + 1,
                "waited_ms": record.waited_ms + _not_the_agents_time(record, now),
            },
            remove_fields=(
                *("error", "ended_at", "duration_ms", "expires_at", "ttl", "current_step", "awaiting_since"),
                "answer_counted",  # the new execution counts its own answer's call (an earlier one may have been made)
            ),
            generation=record.execution_name,
            event=EventType.REDRIVEN,
        )
        self._engine.start(execution_name, {"request_key": record.request_key})
        return resumed


def _not_the_agents_time(record: RequestRecord, now: datetime) -> int:
    """Milliseconds since a failed request stopped working: since it failed, or since it began to wait for its user's
    answer (a record ended while waiting, by a release that did not count that wait at the end)."""
    since = record.awaiting_since or record.ended_at
    return max(0, int((now - parse_iso(since)).total_seconds() * 1000)) if since else 0
