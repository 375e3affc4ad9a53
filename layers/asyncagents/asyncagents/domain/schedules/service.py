"""Scheduled jobs: create, read, change, pause, resume, delete (each one an EventBridge Scheduler schedule),
and fire a slot: exactly one request per job and scheduled time, however often Scheduler delivers it."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import BadRequest, Conflict, InvalidData, NotFound, StaleWrite, Unavailable
from asyncagents.domain.ports import JobStore, ScheduleEngine
from asyncagents.domain.requests import RequestService, Submission
from asyncagents.domain.requests.submit import NewRequest
from asyncagents.domain.schedules.jobs import (
    FORMATION_PREFIX,
    JobRun,
    NewJob,
    ScheduledJob,
    formation_job,
    job_type_of,
    schedule_input,
)
from asyncagents.domain.schedules.timing import Timing, parse_timing
from asyncagents.domain.telemetry import NO_TELEMETRY, Telemetry, schedule_slot
from asyncagents.domain.times import iso, parse_iso
from asyncagents.schedule_definitions import ScheduleDefinition

logger = logging.getLogger(__name__)
RUNS_SHOWN = 10
RUN_RETENTION_SECONDS = 90 * 86_400
_CHANGEABLE = frozenset({"schedule", "timezone", "message", "title", "session_id", "webhook_url", "enabled"})
_LONGEST_JOB_ID = 64


@dataclass(frozen=True)
class JobView:
    """A job with what it did and will do: its last runs (newest first) and its next run."""

    job: ScheduledJob
    runs: list[JobRun]
    next_run: str | None


@dataclass(frozen=True)
class SlotFired:
    """What a delivered slot did: ``submission`` when it submitted (or found, within its retention) the
    slot's request; ``request_id`` the slot's request whenever it has one; ``reason`` why nothing started."""

    job_id: str
    submission: Submission | None
    reason: str = ""
    request_id: str | None = None


class Schedules:
    """The scheduler API and the schedule function's work. The store, the engine and the clock are injected."""

    def __init__(
        self,
        store: JobStore,
        engine: Callable[[], ScheduleEngine],
        requests: RequestService,
        formation_schedules: Mapping[str, ScheduleDefinition],
        *,
        clock: Callable[[], datetime],
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._telemetry = telemetry
        self._store = store
        self._engine = engine
        self._requests = requests
        self._formation = {FORMATION_PREFIX + name: formation_job(name, d) for name, d in formation_schedules.items()}
        self._clock = clock

    # -- the API -----------------------------------------------------------------------------------

    def create(self, new: NewJob) -> JobView:
        timing = self._timing(new.schedule, new.timezone, future_only=True)
        if new.webhook_url:
            self._requests.check_webhook_url(new.webhook_url)
        if job_type_of(timing) != new.type:
            raise InvalidData(
                f"schedule: {new.schedule!r} is a {job_type_of(timing).replace('_', '-')} schedule, not {new.type}",
                details={"field": "schedule"},
            )
        now = iso(self._clock())
        job = ScheduledJob(
            id="job_" + secrets.token_hex(12),
            type=new.type,
            schedule=new.schedule,
            expression=timing.expression,
            timezone=new.timezone,
            message=new.message,
            title=new.title,
            user_id=new.user_id,
            session_id=new.session_id,
            webhook_url=new.webhook_url,
            flexible_window_minutes=new.flexible_window_minutes,
            enabled=new.enabled,
            created_at=now,
            updated_at=now,
        )
        self._store.create_job(job.model_dump())
        try:
            self._put(job, timing, create=True)
        except Exception:
            # Nothing half-made stays: no record without its schedule, and no schedule (the create may have
            # reached Scheduler although the answer was lost) without its record.
            self._forget_quietly(job.id)
            raise
        return self._view(job)

    def list(self, user_id: str | None = None) -> list[JobView]:
        jobs = [*self._formation.values(), *(ScheduledJob.model_validate(j) for j in self._store.list_jobs())]
        return [self._view(job) for job in jobs if user_id is None or job.user_id == user_id]

    def get(self, job_id: str) -> JobView:
        return self._view(self._job(job_id))

    def update(self, job_id: str, changes: Mapping[str, Any]) -> JobView:
        job = self._changeable(job_id)
        # null clears what may be absent (a session, a webhook); for the rest it means "unchanged"
        changes = {k: v for k, v in changes.items() if v is not None or k in {"session_id", "webhook_url"}}
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise BadRequest(f"{sorted(unknown)[0]}: cannot be changed", details={"field": sorted(unknown)[0]})
        if changes.get("webhook_url"):
            self._requests.check_webhook_url(changes["webhook_url"])
        updated = job.model_copy(update={**changes, "updated_at": iso(self._clock()), "version": job.version + 1})
        timing = self._timing(updated.schedule, updated.timezone, future_only="schedule" in changes)
        updated = updated.model_copy(update={"expression": timing.expression, "type": job_type_of(timing)})
        # The record first (conditional on the version read): of two concurrent changes one wins, and only
        # the winner writes the schedule, so the record and the schedule agree.
        self._replace(updated, job.version)
        try:
            self._put(updated, timing, create=False)
        except Exception:
            self._replace(job.model_copy(update={"version": updated.version + 1}), updated.version)
            raise
        return self._view(updated)

    def pause(self, job_id: str) -> JobView:
        return self.update(job_id, {"enabled": False})

    def resume(self, job_id: str) -> JobView:
        return self.update(job_id, {"enabled": True})

    def delete(self, job_id: str) -> None:
        """The schedule first: a job whose schedule could not be deleted is kept (and the call can be repeated)."""
        self._changeable(job_id)
        try:
            self._engine().delete(job_id)
        except Exception as error:
            logger.exception("EventBridge Scheduler could not delete %s", job_id)
            raise Unavailable(f"the schedule of job {job_id} could not be deleted; try again") from error
        self._store.delete_job(job_id)

    # -- the schedule function ---------------------------------------------------------------------

    def fire(self, job_id: str, scheduled_time: str) -> SlotFired:
        """Submit the job's request for this slot. The request is named by the job and the slot, and written
        conditionally: a slot delivered twice (Scheduler delivers at least once, and retries) starts one."""
        try:
            moment = datetime.fromisoformat(scheduled_time.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise BadRequest(f"scheduled_time: {scheduled_time!r} is not an ISO 8601 time with a zone")
        slot = iso(moment)
        recorded = self._store.get_run(job_id, slot)
        if recorded is not None:  # a delivery of a slot that already ran (even past its request's retention)
            self._telemetry.emit(schedule_slot(duplicate=True), metadata={"job_id": job_id})
            return SlotFired(job_id, None, "the slot already ran", request_id=str(recorded["request_id"]))
        job = self._formation.get(job_id) or _job_or_none(self._store.get_job(job_id))
        if job is None:
            return SlotFired(job_id, None, "the job was deleted")
        if not job.enabled:
            return SlotFired(job_id, None, "the job is paused")
        new = NewRequest(
            message=job.message,
            async_=True,
            forced_by="schedule",
            webhook_url=job.webhook_url,
            session_id=job.session_id,
            schedule=job.id,
        )
        principal = Principal(key_id=f"schedule:{job.id}", user_id=job.user_id)
        submission: Submission | None = None
        try:
            submission = self._requests.submit(
                principal, new, idempotency_key=f"schedule\x00{job.id}\x00{slot}", limited=False
            )
            request_id = submission.record.request_id
        except Conflict as conflict:  # the job changed since this slot first ran: the slot's request stands
            request_id = str(conflict.details.get("request_id"))
        run = JobRun(scheduled_time=slot, request_id=request_id, fired_at=iso(self._clock()))
        self._store.record_run(job.id, run.model_dump(), ttl=int(self._clock().timestamp()) + RUN_RETENTION_SECONDS)
        self._telemetry.emit(schedule_slot(duplicate=False), metadata={"job_id": job_id, "request_id": request_id})
        return SlotFired(job_id, submission, request_id=request_id)

    # -- helpers -----------------------------------------------------------------------------------

    def _timing(self, schedule: str, timezone: str, *, future_only: bool) -> Timing:
        try:
            return parse_timing(schedule, timezone, now=self._clock() if future_only else None)
        except ValueError as error:
            field = "timezone" if "time zone" in str(error) else "schedule"
            raise InvalidData(f"{field}: {error}", details={"field": field}) from None

    def _job(self, job_id: str) -> ScheduledJob:
        # Each job's id names its EventBridge schedule, 64 characters at most: a longer one is no job (and would be
        # a key DynamoDB refuses).
        known = len(job_id) <= _LONGEST_JOB_ID
        job = self._formation.get(job_id) or (_job_or_none(self._store.get_job(job_id)) if known else None)
        if job is None:
            raise NotFound(f"scheduled job {job_id!r} not found", details={"job_id": job_id})
        return job

    def _changeable(self, job_id: str) -> ScheduledJob:
        job = self._job(job_id)
        if job.source == "formation":
            raise Conflict(
                f"job {job_id} is defined in the formation: change formation.yaml and deploy",
                details={"job_id": job_id, "source": "formation"},
            )
        return job

    def _put(self, job: ScheduledJob, timing: Timing, *, create: bool) -> None:
        arguments: dict[str, Any] = {
            "expression": timing.expression,
            "timezone": job.timezone,
            "payload": schedule_input(job.id),
            "enabled": job.enabled,
            "flexible_window_minutes": job.flexible_window_minutes,
        }
        try:
            try:
                self._engine().put(job.id, **arguments, create=create)
            except NotFound:  # its schedule is gone (a create that never reached Scheduler): make it again
                self._engine().put(job.id, **arguments, create=True)
        except (InvalidData, Conflict):
            raise
        except Exception as error:
            logger.exception("EventBridge Scheduler refused job %s", job.id)
            raise Unavailable(f"the schedule of job {job.id} could not be written; try again") from error

    def _forget_quietly(self, job_id: str) -> None:
        try:
            self._engine().delete(job_id)
        except Exception:
            logger.exception("could not delete the schedule of %s after a failed create", job_id)
        self._store.delete_job(job_id)

    def _replace(self, job: ScheduledJob, expected_version: int) -> None:
        try:
            self._store.replace_job(job.model_dump(), expected_version=expected_version)
        except StaleWrite:
            raise Conflict(f"job {job.id} was changed meanwhile; read it and try again") from None

    def _view(self, job: ScheduledJob) -> JobView:
        runs = [JobRun.model_validate(r) for r in self._store.runs(job.id, limit=RUNS_SHOWN)]
        upcoming = job.timing().runs_after(self._clock(), anchor=_anchor(job)) if job.enabled else []
        return JobView(job=job, runs=runs, next_run=iso(upcoming[0]) if upcoming else None)


def _job_or_none(item: dict[str, Any] | None) -> ScheduledJob | None:
    return ScheduledJob.model_validate(item) if item is not None else None


def _anchor(job: ScheduledJob) -> datetime | None:
    return parse_iso(job.created_at) if job.created_at else None


__all__ = ["JobView", "NewJob", "ScheduledJob", "Schedules", "SlotFired"]
