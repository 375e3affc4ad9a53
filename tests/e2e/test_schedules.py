"""Scheduled jobs end to end over HTTP: a one-time job fires exactly once on the emulated EventBridge
Scheduler and delivers its signed webhook; a repeated delivery of the slot starts nothing; MUXI's SDK manages
jobs; a formation schedule fires too; bad expressions are 422s naming the field."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from muxi import FormationClient

from asyncagents.domain.records import request_key
from tests.stack_fixture import KEYS, assert_no_access_denied, start_stack, wait_for
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

ADMIN = {"X-Muxi-Admin-Key": KEYS.admin_key}
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, receiver):
    # A formation schedule due a few seconds after the stack starts (a one-time run, in Paris time): late enough
    # that a slow start (a loaded CI machine) has created it before it is due
    soon = (datetime.now(PARIS) + timedelta(seconds=12)).replace(microsecond=0, tzinfo=None)
    schedules = {
        "launch-report": {
            "schedule": soon.isoformat(),
            "timezone": "Europe/Paris",
            "message": "Write the launch report",
            "user_id": "reports",
            "webhook_url": receiver.url("/formation-report"),
        },
        "weekday-digest": {"schedule": "0 9 * * 1-5", "timezone": "Europe/Paris", "message": "Digest"},
    }
    running = start_stack(
        Path(tmp_path_factory.mktemp("schedules")),
        {"async": {"result_retention_seconds": 60}, "schedules": schedules},
        job_schedule_seconds=0.5,
    )
    try:
        yield running
    finally:
        running.stop()
    assert_no_access_denied(running)


@pytest.fixture
def http(stack):
    with httpx.Client(base_url=stack.url, timeout=30, headers=ADMIN) as client:
        yield client


def completed_webhooks(receiver: WebhookReceiver, path: str) -> list[dict]:
    return [json.loads(d.body) for d in receiver.to(path) if d.verified and json.loads(d.body)["status"] == "completed"]


def test_a_one_time_job_fires_exactly_once_and_delivers_its_signed_webhook(stack, http, receiver):
    path = f"/job-{uuid.uuid4().hex[:8]}"
    when = (datetime.now(PARIS) + timedelta(seconds=3)).replace(microsecond=0, tzinfo=None)
    # Given a one-time job, in Paris time, created over HTTP
    created = http.post(
        "/v1/scheduler/jobs",
        json={
            "type": "one_time",
            "schedule": when.isoformat(),
            "timezone": "Europe/Paris",
            "message": "Summarise yesterday's signups",
            "user_id": "ops",
            "webhook_url": receiver.url(path),
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["id"].startswith("job_") and job["expression"] == f"at({when.isoformat()})"
    assert job["next_run"] is not None and job["runs"] == []
    # It is an EventBridge Scheduler schedule in the stack's group, aimed at the schedule function
    schedule = stack.client("scheduler").get_schedule(Name=job["id"], GroupName=stack.schedule_group)
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert schedule["Target"]["DeadLetterConfig"]["Arn"].endswith("ScheduleDeadLetterQueue")

    # When its time comes, the report arrives as the request's signed webhook
    delivered = wait_for(lambda: completed_webhooks(receiver, path), timeout=30)
    assert "Summarise yesterday's signups" in delivered[0]["response"][0]["text"]

    # And the job shows the run and the request it made
    runs = http.get(f"/v1/scheduler/jobs/{job['id']}").json()["runs"]
    assert len(runs) == 1 and runs[0]["request_id"] == delivered[0]["request_id"]
    slot = runs[0]["scheduled_time"]
    request = http.get(
        f"/v1/admin/requests/{runs[0]['request_id']}", params={"key_id": f"schedule:{job['id']}", "user_id": "ops"}
    ).json()
    assert request["schedule_job_id"] == job["id"] and request["mode_reason"] == "schedule"

    # When Scheduler delivers the same slot again (at least once delivery), nothing new starts
    key = request_key(f"schedule:{job['id']}", "ops", runs[0]["request_id"])
    assert len([e for e in stack.executions() if e["name"].startswith(key)]) == 1
    stack.group_scheduler.deliver_again(job["id"], slot.replace(".000000", ""))
    time.sleep(2)
    assert len([e for e in stack.executions() if e["name"].startswith(key)]) == 1
    assert len(http.get(f"/v1/scheduler/jobs/{job['id']}").json()["runs"]) == 1
    assert len([d for d in stack.group_scheduler.deliveries if d[0] == job["id"]]) == 2
    assert len(completed_webhooks(receiver, path)) == 1


def test_a_formation_schedule_fires_without_any_call(stack, receiver):
    delivered = wait_for(lambda: completed_webhooks(receiver, "/formation-report"), timeout=45)
    assert "Write the launch report" in delivered[0]["response"][0]["text"]


def test_muxi_sdk_manages_jobs(stack):
    user = f"sdk-{uuid.uuid4().hex[:6]}"
    with FormationClient(base_url=f"{stack.url}/v1", admin_key=KEYS.admin_key, timeout=30) as client:
        job = client.create_scheduler_job("recurring", "0 9 * * 1-5", "Weekday digest", user)
        assert job["expression"] == "cron(0 9 ? * 2,3,4,5,6 *)" and job["type"] == "recurring"
        listed = client.get_scheduler_jobs(user)
        assert [j["id"] for j in listed["jobs"]] == [job["id"]]
        changed = client.update_scheduler_job(job["id"], message="Weekday digest, shorter", schedule="30 8 * * *")
        assert changed["message"] == "Weekday digest, shorter" and changed["expression"] == "cron(30 8 * * ? *)"
        assert client.pause_scheduler_job(job["id"])["enabled"] is False
        scheduler = stack.client("scheduler")
        assert scheduler.get_schedule(Name=job["id"], GroupName=stack.schedule_group)["State"] == "DISABLED"
        assert client.resume_scheduler_job(job["id"])["next_run"] is not None
        client.delete_scheduler_job(job["id"])
        assert client.get_scheduler_jobs(user)["jobs"] == []
        names = [s["Name"] for s in scheduler.list_schedules(GroupName=stack.schedule_group)["Schedules"]]
        assert job["id"] not in names
        config = client.get_scheduler_config()
        assert config["formation_schedules"] == ["launch-report", "weekday-digest"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"type": "recurring", "schedule": "0 25 * * *"}, "schedule", "Bad hour"),
        ({"type": "recurring", "schedule": "0 9 1 * 1"}, "schedule", "both day-of-month and day-of-week"),
        ({"type": "recurring", "schedule": "cron(0 9 * * ? 2027)"}, "schedule", "year field"),
        ({"type": "recurring", "schedule": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone", "IANA"),
        ({"type": "one_time", "schedule": "2020-01-01T09:00:00"}, "schedule", "in the past"),
        ({"type": "one_time", "schedule": "0 9 * * *"}, "schedule", "not one_time"),
        ({"type": "recurring", "schedule": "0 9 * * *", "webhook_url": "http://10.0.0.1/x"}, "webhook_url", ""),
    ],
)
def test_bad_jobs_are_4xx_naming_the_field(http, body, field, reason):
    answer = http.post("/v1/scheduler/jobs", json={"message": "m", "user_id": "u", **body})
    assert answer.status_code in {400, 422}, answer.text
    assert answer.json()["details"].get("field") == field and reason in answer.json()["message"]


def test_jobs_need_the_admin_key_and_formation_jobs_are_read_only(http):
    assert httpx.get(f"{http.base_url}/v1/scheduler/jobs").status_code == 401
    formation = http.get("/v1/scheduler/jobs/formation-weekday-digest").json()
    assert formation["source"] == "formation" and formation["next_run"]
    assert http.put("/v1/scheduler/jobs/formation-weekday-digest", json={"message": "x"}).status_code == 409
    assert http.delete("/v1/scheduler/jobs/formation-weekday-digest").status_code == 409
    assert http.get("/v1/scheduler/jobs/job_" + "0" * 24).status_code == 404
