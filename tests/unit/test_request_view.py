"""The request as clients see it, beyond the seed's fields: each planned step's state through a request's life
(working, waiting on a question, redriven, failed by one step, cancelled) and the estimated cost of its tokens."""

from __future__ import annotations

from typing import Any

import pytest

from asyncagents.api.views import request_body
from asyncagents.domain.records import RequestRecord

STEPS = [{"title": title, "instruction": title} for title in ("Research", "Compare", "Write")]


def record(**fields: Any) -> RequestRecord:
    base = {
        "request_key": "0" * 32,
        "request_id": "req_1",
        "key_id": "key_a",
        "user_id": "u",
        "prompt": "p",
        "fingerprint": "f",
        "formation_id": "f",
        "execution_name": "e",
        "created_at": "2026-12-01T00:00:00.000000Z",
        "steps": STEPS,
        "total_steps": 3,
    }
    return RequestRecord.model_validate({**base, **fields})


def states(**fields: Any) -> list[str]:
    return [step["state"] for step in request_body(record(**fields))["steps"]]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"status": "processing", "done_steps": [0], "step_attempts": {"0": 1, "1": 1}},
            ["done", "running", "pending"],
        ),
        (
            {
                "status": "awaiting_clarification",
                "done_steps": [0],
                "step_attempts": {"0": 1, "1": 1},
                "questions": {
                    "1": {"id": "clr_1", "key": "1", "question": "which?", "recorded_at": "2026-12-01T00:00:01Z"}
                },
            },
            ["done", "waiting", "pending"],
        ),
        (  # redriven: the failed step's attempt was the earlier execution's; it has not started again yet
            {
                "status": "processing",
                "done_steps": [0],
                "step_attempts": {"0": 1, "1": 3},
                "attempts_before_redrive": {"0": 1, "1": 3},
            },
            ["done", "pending", "pending"],
        ),
        (  # two steps at once: step 2 failed the request, step 1 was stopped by it
            {
                "status": "failed",
                "step_attempts": {"0": 1, "1": 3},
                "error": {"type": "provider_error", "message": "x", "retryable": False, "step": 1},
            },
            ["stopped", "failed", "not_run"],
        ),
        ({"status": "cancelled", "done_steps": [0], "step_attempts": {"0": 1, "1": 1}}, ["done", "stopped", "not_run"]),
        ({"status": "completed", "done_steps": [0, 1, 2], "step_attempts": {"0": 1, "1": 1, "2": 2}}, ["done"] * 3),
    ],
)
def test_each_step_shows_its_state(fields, expected):
    assert states(**fields) == expected


def test_the_estimated_cost_comes_with_the_usage_only_when_the_model_is_priced():
    used = record(status="processing", model_calls=2, input_tokens_used=1000, output_tokens_used=500)
    priced = request_body(used, cost_of=lambda i, o: (i * 3 + o * 15) / 1_000_000)
    assert priced["estimated_cost_usd"] == 0.0105 and priced["model_calls"] == 2
    assert "estimated_cost_usd" not in request_body(used, cost_of=lambda i, o: None)
    assert "estimated_cost_usd" not in request_body(used)


def test_an_error_names_its_step_only_when_one_ended_the_request():
    failed = record(status="failed", error={"type": "timeout", "message": "x", "retryable": True})
    assert request_body(failed)["error"] == {"type": "timeout", "message": "x", "retryable": True}
