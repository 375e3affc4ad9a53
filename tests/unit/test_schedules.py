"""Schedules without AWS: expressions, time zones across DST changes, slots, and the jobs service."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from asyncagents.config import parse_formation
from asyncagents.domain.errors import BadRequest, Conflict, InvalidData, NotFound, Unavailable
from asyncagents.domain.requests import RequestService
from asyncagents.domain.schedules.jobs import NewJob
from asyncagents.domain.schedules.service import Schedules
from asyncagents.domain.schedules.timing import parse_timing

from .fakes import FakeTimer, InMemoryStore, ManualClock, RecordingEngine, RecordingTelemetry

# -- expressions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expression"),
    [
        ("0 9 * * *", "cron(0 9 * * ? *)"),
        ("0 9 * * 1-5", "cron(0 9 ? * 2,3,4,5,6 *)"),  # Unix Monday-Friday; EventBridge counts Sunday as 1
        ("30 8 * * 5-7", "cron(30 8 ? * 1,6,7 *)"),  # Friday to Sunday (Unix 7 is Sunday too)
        ("0 9 * * MON,WED", "cron(0 9 ? * 2,4 *)"),
        ("0 9 * * */2", "cron(0 9 ? * 1,3,5,7 *)"),  # Sunday, Tuesday, Thursday, Saturday
        ("0 9 * * 1/2", "cron(0 9 ? * 1,2,4,6 *)"),  # Monday, Wednesday, Friday and Sunday (Unix 7)
        ("*/15 * * * *", "cron(0/15 * * * ? *)"),
        ("0 9 1 * *", "cron(0 9 1 * ? *)"),
        ("cron(0 9 ? * MON-FRI *)", "cron(0 9 ? * MON-FRI *)"),  # EventBridge's own form is kept as written
        ("rate(1 hour)", "rate(1 hour)"),
        ("rate(5 minutes)", "rate(5 minutes)"),
        ("2026-12-01T09:00:00", "at(2026-12-01T09:00:00)"),
        ("2026-12-01T08:00:00Z", "at(2026-12-01T09:00:00)"),  # an offset is converted to the zone's time
    ],
)
def test_accepted_forms_become_eventbridge_expressions(written, expression):
    assert parse_timing(written, "Europe/Paris").expression == expression


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("0 25 * * *", "Bad hour"),
        ("0 9 * * 8", "Bad day-of-week"),
        ("0 9 1 * 1", "cannot restrict both"),
        ("cron(0 9 * * * *)", "exactly one of day-of-month and day-of-week must be ?"),
        ("cron(0 9 ? * 2 2027)", "year field must be *"),
        ("cron(0 9 ? * 8 *)", r"use 1-7 \(1 is Sunday\)"),
        ("rate(0 minutes)", "is not a schedule"),
        ("cron(0 9 ? * 2/2 *)", "takes no steps there"),
        ("9999-12-31T23:59:59-12:00", "out of range"),
        ("every day", "is not a schedule"),
    ],
)
def test_bad_expressions_say_what_is_wrong(written, reason):
    with pytest.raises(ValueError, match=reason):
        parse_timing(written, "UTC")


def test_the_same_runs_whichever_form_is_written():
    after = datetime(2026, 11, 30, 12, tzinfo=UTC)
    unix = parse_timing("0 9 * * 1-5", "Europe/Paris").runs_after(after, limit=5)
    eventbridge = parse_timing("cron(0 9 ? * MON-FRI *)", "Europe/Paris").runs_after(after, limit=5)
    assert unix == eventbridge
    assert [run.weekday() for run in unix] == [1, 2, 3, 4, 0]  # Tuesday 1 December to Monday 7 December


def test_daily_nine_in_paris_follows_the_clocks_across_dst():
    timing = parse_timing("0 9 * * *", "Europe/Paris")
    spring = timing.runs_after(datetime(2026, 3, 28, 12, tzinfo=UTC), limit=2)
    assert spring == [datetime(2026, 3, 29, 7, tzinfo=UTC), datetime(2026, 3, 30, 7, tzinfo=UTC)]  # UTC+2 now
    autumn = timing.runs_after(datetime(2026, 10, 24, 12, tzinfo=UTC), limit=2)
    assert autumn == [datetime(2026, 10, 25, 8, tzinfo=UTC), datetime(2026, 10, 26, 8, tzinfo=UTC)]  # UTC+1 again


def test_a_run_in_the_skipped_hour_is_skipped_and_the_repeated_hour_runs_once():
    # As EventBridge Scheduler documents it: 02:30 does not exist in Paris on 29 March 2026
    skipped = parse_timing("30 2 * * *", "Europe/Paris").runs_after(datetime(2026, 3, 28, 12, tzinfo=UTC), limit=1)
    assert skipped == [datetime(2026, 3, 30, 0, 30, tzinfo=UTC)]  # the next day's 02:30 (UTC+2)
    repeated = parse_timing("30 2 * * *", "Europe/Paris").runs_between(
        datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 25, 12, tzinfo=UTC)
    )
    assert repeated == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # its first occurrence (UTC+2)


def test_rates_run_from_the_schedule_creation_and_slots_are_never_owed_twice():
    created = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
    timing = parse_timing("rate(5 minutes)", "UTC")
    # At once (a rate schedule without a start date starts invoking when created), then every five minutes
    assert timing.runs_after(created - timedelta(seconds=1), anchor=created, limit=2) == [
        created,
        created + timedelta(minutes=5),
    ]
    runs = timing.runs_between(created, created + timedelta(minutes=16), anchor=created)
    assert runs == [created + timedelta(minutes=m) for m in (5, 10, 15)]
    # Looked at in two halves, the same runs: none lost, none repeated
    middle = created + timedelta(minutes=7)
    halves = timing.runs_between(created, middle, anchor=created) + timing.runs_between(
        middle, created + timedelta(minutes=16), anchor=created
    )
    assert halves == runs


def test_formation_schedule_names_that_would_collide_are_refused():
    from asyncagents.domain.errors import ConfigError

    entry = {"schedule": "0 9 * * *", "message": "m"}
    with pytest.raises(ConfigError, match="too close to 'daily-report'"):
        parse_formation({"schedules": {"daily-report": entry, "daily_report": entry}})
    with pytest.raises(ConfigError, match=re.escape("schedules.daily: '0 25 * * *': Bad hour")):
        parse_formation({"schedules": {"daily": {**entry, "schedule": "0 25 * * *"}}})


# -- the jobs service ----------------------------------------------------------------------------------


class MemoryJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.run_items: dict[tuple[str, str], dict[str, Any]] = {}

    def create_job(self, job):
        if job["id"] in self.jobs:
            raise Conflict("exists")
        self.jobs[job["id"]] = dict(job)

    def get_job(self, job_id):
        if len(job_id.encode()) > 1024:  # as DynamoDB: a key over 1 KB is a ValidationException (a 500 to the client)
            raise RuntimeError("ValidationException: key too long")
        return self.jobs.get(job_id)

    def list_jobs(self):
        return list(self.jobs.values())

    def replace_job(self, job, *, expected_version):
        from asyncagents.domain.errors import StaleWrite

        if self.jobs.get(job["id"], {}).get("version") != expected_version:
            raise StaleWrite("changed")
        self.jobs[job["id"]] = dict(job)

    def delete_job(self, job_id):
        return self.jobs.pop(job_id, None) is not None

    def record_run(self, job_id, run, *, ttl):
        key = (job_id, run["scheduled_time"])
        if key in self.run_items:
            return False
        self.run_items[key] = run
        return True

    def get_run(self, job_id, scheduled_time):
        return self.run_items.get((job_id, scheduled_time))

    def runs(self, job_id, *, limit):
        found = [run for (job, _), run in self.run_items.items() if job == job_id]
        return sorted(found, key=lambda r: r["scheduled_time"], reverse=True)[:limit]


class MemoryScheduler:
    def __init__(self, *, fail: bool = False) -> None:
        self.schedules: dict[str, dict[str, Any]] = {}
        self.fail = fail
        self.lost_answer = False  # the create reaches Scheduler, its answer does not reach us

    def put(self, name, *, expression, timezone, payload, enabled, flexible_window_minutes, create):
        if self.fail:
            raise RuntimeError("Scheduler is down")
        if self.lost_answer:
            self.schedules[name] = {"expression": expression}
            raise TimeoutError("read timed out")
        if not create and name not in self.schedules:
            raise NotFound("gone")
        self.schedules[name] = {"expression": expression, "timezone": timezone, "payload": payload, "enabled": enabled}

    def delete(self, name):
        self.schedules.pop(name, None)


@pytest.fixture
def telemetry() -> RecordingTelemetry:
    return RecordingTelemetry()


@pytest.fixture
def world(telemetry):
    store, engine, jobs, scheduler = InMemoryStore(), RecordingEngine(), MemoryJobs(), MemoryScheduler()
    clock = ManualClock(datetime(2026, 11, 30, 12, tzinfo=UTC))
    timer = FakeTimer()
    formation = parse_formation(
        {"schedules": {"digest": {"schedule": "0 9 * * *", "timezone": "Europe/Paris", "message": "Digest"}}}
    )
    requests = RequestService(store, engine, formation, clock=clock, sleep=timer.sleep, monotonic=timer.monotonic)
    service = Schedules(jobs, lambda: scheduler, requests, formation.schedules, clock=clock, telemetry=telemetry)
    return service, jobs, scheduler, engine, clock


def _daily(**overrides: Any) -> NewJob:
    fields: dict[str, Any] = {
        "type": "recurring",
        "schedule": "0 9 * * *",
        "message": "Report",
        "user_id": "ops",
        "timezone": "Europe/Paris",
    }
    return NewJob(**{**fields, **overrides})


def test_a_slot_delivered_twice_makes_one_request(world, telemetry):
    service, _, scheduler, engine, _ = world
    job = service.create(_daily()).job
    assert scheduler.schedules[job.id]["payload"] == {
        "job_id": job.id,
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    first = service.fire(job.id, "2026-12-01T08:00:00Z")
    again = service.fire(job.id, "2026-12-01T08:00:00.000Z")  # the same slot, written another way
    later = service.fire(job.id, "2026-12-02T08:00:00Z")
    assert first.submission and later.submission and again.submission is None
    assert first.request_id == again.request_id == first.submission.record.request_id
    assert later.request_id != first.request_id
    assert len({name for name, _ in engine.started}) == 2
    # each slot that ran is a fire; the slot delivered again is a suppressed duplicate
    assert telemetry.values("ScheduleFires") == [1, 1] and telemetry.values("ScheduleDuplicateSlots") == [1]
    view = service.get(job.id)
    assert [run.scheduled_time for run in view.runs] == ["2026-12-02T08:00:00.000000Z", "2026-12-01T08:00:00.000000Z"]
    record = first.submission.record
    assert (record.key_id, record.user_id, record.schedule, record.mode_reason) == (
        f"schedule:{job.id}",
        "ops",
        job.id,
        "schedule",
    )


def test_formation_jobs_fire_and_are_read_only(world):
    service, _, _, engine, _ = world
    fired = service.fire("formation-digest", "2026-12-01T08:00:00Z")
    assert fired.submission is not None and fired.submission.record.prompt == "Digest"
    assert service.get("formation-digest").next_run == "2026-12-01T08:00:00.000000Z"  # 09:00 Paris
    with pytest.raises(Conflict, match="defined in the formation"):
        service.update("formation-digest", {"message": "x"})
    with pytest.raises(Conflict):
        service.delete("formation-digest")
    assert len(engine.started) == 1


def test_deleted_or_paused_jobs_start_nothing(world):
    service, _, scheduler, engine, _ = world
    job = service.create(_daily()).job
    service.pause(job.id)
    assert scheduler.schedules[job.id]["enabled"] is False
    assert service.fire(job.id, "2026-12-01T08:00:00Z").submission is None
    assert service.get(job.id).next_run is None
    service.resume(job.id)
    service.delete(job.id)
    assert job.id not in scheduler.schedules
    assert service.fire(job.id, "2026-12-01T08:00:00Z").reason == "the job was deleted"
    with pytest.raises(NotFound):
        service.get(job.id)
    assert engine.started == []


def test_changes_reach_the_schedule_and_keep_the_job_whole(world):
    service, _, scheduler, _, _ = world
    job = service.create(_daily()).job
    changed = service.update(job.id, {"schedule": "rate(1 hour)", "message": "Hourly", "enabled": None})
    assert changed.job.expression == "rate(1 hour)" and changed.job.enabled is True and changed.job.version == 1
    assert scheduler.schedules[job.id]["expression"] == "rate(1 hour)"
    with pytest.raises(BadRequest, match="user_id: cannot be changed"):
        service.update(job.id, {"user_id": "other"})


def test_an_id_longer_than_any_job_has_is_not_found_without_asking_the_table(world):
    service, *_ = world
    for job_id in ("j" * 65, "j" * 1100):
        for act in (service.get, service.delete, service.pause, lambda i: service.update(i, {"message": "x"})):
            with pytest.raises(NotFound):
                act(job_id)


def test_bad_jobs_and_a_failing_scheduler_leave_nothing_behind(world):
    service, jobs, scheduler, _, _ = world
    with pytest.raises(InvalidData, match=r"schedule: .*Bad hour"):
        service.create(_daily(schedule="0 25 * * *"))
    for timezone in ("Mars/Olympus", "America", "Etc"):  # not a zone; a folder of the zone database, not a zone
        with pytest.raises(InvalidData) as zone:
            service.create(_daily(timezone=timezone))
        assert zone.value.details == {"field": "timezone"}
    with pytest.raises(InvalidData, match="in the past"):
        service.create(_daily(type="one_time", schedule="2026-11-30T12:59:00"))  # 11:59 UTC: before now
    with pytest.raises(InvalidData, match="not one_time"):
        service.create(_daily(type="one_time"))
    with pytest.raises(BadRequest, match="scheduled_time"):
        service.fire("formation-digest", "tomorrow")
    scheduler.fail = True
    with pytest.raises(Unavailable):
        service.create(_daily())
    assert jobs.jobs == {}


def test_a_slot_delivered_after_its_request_expired_still_starts_nothing(world):
    # Lambda keeps an asynchronous event for an hour; the request's retention is five minutes
    service, _, _, engine, clock = world
    job = service.create(_daily()).job
    first = service.fire(job.id, "2026-12-01T08:00:00Z")
    clock.advance(3600)
    late = service.fire(job.id, "2026-12-01T08:00:00Z")
    assert late.submission is None and late.request_id == first.request_id and late.reason == "the slot already ran"
    assert len(engine.started) == 1


def test_a_slot_redelivered_after_the_job_changed_keeps_its_request(world):
    service, jobs, _, engine, _ = world
    job = service.create(_daily()).job
    first = service.fire(job.id, "2026-12-01T08:00:00Z")
    jobs.run_items.clear()  # as if the first delivery died before it recorded its run
    service.update(job.id, {"message": "Report, shorter"})
    again = service.fire(job.id, "2026-12-01T08:00:00Z")
    assert again.request_id == first.request_id
    assert [run.request_id for run in service.get(job.id).runs] == [first.request_id]
    assert len({name for name, _ in engine.started}) == 1


def test_of_two_concurrent_changes_only_the_winner_writes_the_schedule(world):
    service, jobs, scheduler, _, _ = world
    job = service.create(_daily()).job
    stale = dict(jobs.jobs[job.id])
    service.pause(job.id)  # wins
    jobs.jobs[job.id], paused = stale, jobs.jobs[job.id]
    original_get = jobs.get_job
    jobs.get_job = lambda job_id: stale  # the loser read the job before the pause
    jobs.jobs[job.id] = paused
    with pytest.raises(Conflict):
        service.update(job.id, {"message": "lost update"})
    jobs.get_job = original_get
    assert scheduler.schedules[job.id]["enabled"] is False and jobs.jobs[job.id]["enabled"] is False


def test_a_create_whose_answer_was_lost_leaves_no_schedule_and_a_missing_schedule_is_made_again(world):
    service, jobs, scheduler, _, _ = world
    scheduler.lost_answer = True
    with pytest.raises(Unavailable):
        service.create(_daily())
    assert scheduler.schedules == {} and jobs.jobs == {}
    scheduler.lost_answer = False
    job = service.create(_daily()).job
    del scheduler.schedules[job.id]  # e.g. a create that never reached Scheduler
    service.update(job.id, {"message": "Report again"})
    assert scheduler.schedules[job.id]["enabled"] is True
