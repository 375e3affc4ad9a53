"""The sample events in events/ stay valid for the functions they are named after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from asyncagents.tasks import FailureTask, QuestionTask, RequestTask, ScheduledSlot

EVENTS = Path(__file__).resolve().parents[2] / "events"
TASK_MODELS = {
    "workflow_run": RequestTask,
    "workflow_mark_failed": FailureTask,
    "workflow_clarify_wait": QuestionTask,
    "workflow_clarify_timed_out": QuestionTask,
    "schedule_slot": ScheduledSlot,  # what a job's EventBridge Scheduler schedule sends RunScheduleFunction
}


@pytest.mark.parametrize("path", sorted(EVENTS.glob("api_*.json")), ids=lambda p: p.stem)
def test_api_events_are_http_api_v2_events(path):
    event = APIGatewayProxyEventV2(json.loads(path.read_text()))
    assert event.version == "2.0"
    assert event.raw_path.startswith("/v1/")
    # A client key, or a provider's signature (a trigger fired by GitHub)
    assert event.headers.get("x-muxi-client-key") or event.headers.get("x-hub-signature-256")


def test_the_github_sample_is_signed_as_github_signs():
    from asyncagents.domain.triggers.signatures import verify
    from asyncagents.trigger_definitions import Verification

    event = json.loads((EVENTS / "api_post_trigger_github.json").read_text())
    # The README's walkthrough secret; replace it with yours (and re-sign) to send it to a deployed stack
    verify(
        Verification(provider="github"), event["headers"], event["body"].encode(), ["REPLACE_ME_github_secret"], now=0
    )


@pytest.mark.parametrize(("name", "model"), TASK_MODELS.items())
def test_workflow_events_match_the_task_models(name, model):
    model.model_validate(json.loads((EVENTS / f"{name}.json").read_text()))


def test_work_in_flight_from_release_0_1_still_finds_its_request():
    import hashlib

    from asyncagents.domain.webhooks.delivery import WebhookMessage
    from asyncagents.domain.webhooks.payload import delivery_id

    key = "0123456789abcdef0123456789abcdef"
    # Given an execution input and a queued webhook message written by 0.1 (the request named "REQ#<key>")
    task = RequestTask.model_validate({"request_key": f"REQ#{key}", "execution_name": "x"})
    message = WebhookMessage.model_validate(
        {"request_key": f"REQ#{key}", "status": "completed", "delivery_id": "whd_1", "event_time": "t"}
    )
    # Then both name the request by its key, and an event keeps the delivery id 0.1 gave it
    assert task.request_key == message.request_key == key
    before = "whd_" + hashlib.sha256(f"REQ#{key}|completed|t".encode()).hexdigest()[:32]
    assert delivery_id(key, "completed", "t") == delivery_id(f"REQ#{key}", "completed", "t") == before
