"""The sample events in events/ stay valid for the functions they are named after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from asyncagents.tasks import FailureTask, QuestionTask, RequestTask, StepTask

EVENTS = Path(__file__).resolve().parents[2] / "events"
TASK_MODELS = {
    "workflow_plan": RequestTask,
    "workflow_run_step": StepTask,
    "workflow_finish": RequestTask,
    "workflow_mark_failed": FailureTask,
    "workflow_clarify_wait": QuestionTask,
    "workflow_clarify_timed_out": QuestionTask,
}


@pytest.mark.parametrize("path", sorted(EVENTS.glob("api_*.json")), ids=lambda p: p.stem)
def test_api_events_are_http_api_v2_events(path):
    event = APIGatewayProxyEventV2(json.loads(path.read_text()))
    assert event.version == "2.0"
    assert event.raw_path.startswith("/v1/")
    assert event.headers["x-muxi-client-key"]


@pytest.mark.parametrize(("name", "model"), TASK_MODELS.items())
def test_workflow_events_match_the_task_models(name, model):
    model.model_validate(json.loads((EVENTS / f"{name}.json").read_text()))
