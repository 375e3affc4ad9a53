"""Scheduled jobs on moto: the jobs and runs in the real table, and the schedules EventBridge Scheduler gets
(the stack's group, the role it runs with, the target, the retry policy and the dead-letter queue)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from asyncagents.data.schedule_jobs import ScheduleJobs
from asyncagents.data.scheduler import RETRY_POLICY, EventBridgeSchedules
from asyncagents.domain.errors import Conflict, NotFound, StaleWrite
from asyncagents.local.stack import create_table
from asyncagents.local.template import read_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/stack-SchedulerRole"
TARGET = "arn:aws:lambda:us-east-1:123456789012:function:stack-RunScheduleFunction"
DLQ = "arn:aws:sqs:us-east-1:123456789012:stack-ScheduleDeadLetterQueue"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, "jobs-requests", read_stack(ROOT / "template.yaml").table_properties)
        scheduler = boto3.client("scheduler", region_name="us-east-1")
        scheduler.create_schedule_group(Name="stack-jobs")
        engine = EventBridgeSchedules(
            scheduler, group="stack-jobs", role_arn=ROLE, target_arn=TARGET, dead_letter_arn=DLQ
        )
        yield {"jobs": ScheduleJobs(dynamodb, "jobs-requests"), "engine": engine, "scheduler": scheduler}


def test_create_update_delete_reach_the_scheduler_with_the_stack_role_and_group(aws):
    engine, scheduler = aws["engine"], aws["scheduler"]
    payload = {"job_id": "job_1", "scheduled_time": "<aws.scheduler.scheduled-time>"}
    arguments = {"expression": "cron(0 9 * * ? *)", "timezone": "Europe/Paris", "payload": payload}
    engine.put("job_1", **arguments, enabled=True, flexible_window_minutes=0, create=True)
    engine.put("job_1", **arguments, enabled=True, flexible_window_minutes=0, create=True)  # a retried create
    schedule = scheduler.get_schedule(Name="job_1", GroupName="stack-jobs")
    target = schedule["Target"]
    assert (target["Arn"], target["RoleArn"]) == (TARGET, ROLE)
    assert target["RetryPolicy"] == RETRY_POLICY and target["DeadLetterConfig"] == {"Arn": DLQ}
    assert json.loads(target["Input"]) == payload
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (
        "cron(0 9 * * ? *)",
        "Europe/Paris",
    )

    engine.put(
        "job_1", expression="rate(1 hour)", timezone="UTC", payload=payload, enabled=False, flexible_window_minutes=15,
        create=False,
    )  # fmt: skip
    schedule = scheduler.get_schedule(Name="job_1", GroupName="stack-jobs")
    assert (schedule["ScheduleExpression"], schedule["State"]) == ("rate(1 hour)", "DISABLED")
    assert schedule["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}

    engine.delete("job_1")
    engine.delete("job_1")  # already gone: fine
    assert scheduler.list_schedules(GroupName="stack-jobs")["Schedules"] == []
    with pytest.raises(NotFound):
        engine.put("job_1", **arguments, enabled=True, flexible_window_minutes=0, create=False)


def test_jobs_are_written_conditionally_and_a_slot_is_recorded_once(aws):
    jobs = aws["jobs"]
    job = {"id": "job_a", "type": "recurring", "schedule": "0 9 * * *", "message": "m", "version": 0}
    jobs.create_job(job)
    with pytest.raises(Conflict):
        jobs.create_job(job)
    jobs.replace_job({**job, "message": "changed", "version": 1}, expected_version=0)
    with pytest.raises(StaleWrite):
        jobs.replace_job({**job, "message": "lost update", "version": 1}, expected_version=0)
    assert jobs.get_job("job_a")["message"] == "changed"
    jobs.create_job({**job, "id": "job_b"})
    assert [j["id"] for j in jobs.list_jobs()] == ["job_a", "job_b"]

    # A slot delivered twice is recorded once; runs come newest first, whatever else the partition holds
    run = {"scheduled_time": "2026-12-01T08:00:00.000000Z", "request_id": "req_1", "fired_at": "t"}
    assert jobs.record_run("job_a", run, ttl=2_000_000_000) is True
    assert jobs.record_run("job_a", {**run, "request_id": "req_2"}, ttl=2_000_000_000) is False
    jobs.record_run("job_a", {**run, "scheduled_time": "2026-12-02T08:00:00.000000Z"}, ttl=2_000_000_000)
    jobs.record_run("job_b", {**run, "scheduled_time": "2026-12-03T08:00:00.000000Z"}, ttl=2_000_000_000)
    runs = jobs.runs("job_a", limit=10)
    assert [r["scheduled_time"] for r in runs] == ["2026-12-02T08:00:00.000000Z", "2026-12-01T08:00:00.000000Z"]
    assert runs[1]["request_id"] == "req_1" and "ttl" not in runs[0]
    assert jobs.runs("job_a", limit=1) == runs[:1]

    assert jobs.delete_job("job_a") is True and jobs.delete_job("job_a") is False
    assert [j["id"] for j in jobs.list_jobs()] == ["job_b"]
