"""What a request's life measures (``domain.telemetry``), the EMF lines those measures become, and the seed's four
figures computed from the metrics (``domain.monitoring``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from asyncagents.data.emf_metrics import EmfMetrics
from asyncagents.domain.errors import BadRequest, TransientProviderError
from asyncagents.domain.monitoring import Monitoring, window_seconds
from asyncagents.domain.records import Usage
from asyncagents.domain.telemetry import model_call, request_change
from asyncagents.domain.workflow.measured import MeasuredProvider

from .fakes import RecordingTelemetry

STARTED = {"status": "processing", "created_at": "2026-11-30T10:00:00Z", "started_at": "2026-11-30T10:00:02Z"}


def ended(status: str, **fields) -> dict:
    return {**STARTED, "status": status, "ended_at": "2026-11-30T10:00:12Z", "total_steps": 3, **fields}


def test_a_request_that_ends_measures_its_outcome_duration_and_work():
    # Given a request that completed after 12 s (work began 2 s in), with three steps, four calls, 900 tokens
    done = ended("completed", model_calls=4, input_tokens_used=600, output_tokens_used=300)
    # When its end is measured
    measures = request_change(STARTED, done)
    # Then the outcome, the duration, the time to first progress and the work are there, with their units
    assert measures == {
        "RequestsCompleted": (1, "Count"),
        "RequestDuration": (12000.0, "Milliseconds"),
        "TimeToFirstProgress": (2000.0, "Milliseconds"),
        "RequestSteps": (3.0, "Count"),
        "RequestModelCalls": (4.0, "Count"),
        "RequestTokens": (900.0, "Count"),
    }


@pytest.mark.parametrize(
    ("new", "outcome"),
    [
        (ended("failed", error={"type": "provider_error"}), "RequestsFailed"),
        (ended("failed", error={"type": "timeout"}), "RequestsTimedOut"),  # not counted as failed as well
        (ended("cancelled"), "RequestsCancelled"),
        ({**STARTED, "status": "awaiting_clarification"}, "Clarifications"),
    ],
)
def test_each_outcome_is_a_metric_of_its_own(new, outcome):
    measures = request_change(STARTED, new)
    assert outcome in measures
    assert not {"RequestsCompleted", "RequestsFailed", "RequestsTimedOut", "RequestsCancelled"} - {outcome} & set(
        measures
    )


def test_changes_that_end_nothing_measure_nothing():
    assert request_change(STARTED, {**STARTED, "completed_steps": 1}) == {}  # progress
    assert request_change(ended("completed"), {**ended("completed"), "webhook_status": "delivered"}) == {}
    assert request_change(None, {**STARTED, "status": "pending"}) == {}  # accepted: counted by the submit path
    assert request_change(STARTED, None) == {}


def test_model_calls_are_measured_with_throttles_told_apart_from_failures():
    telemetry = RecordingTelemetry()
    ticks = iter([10.0, 10.25, 20.0, 20.5, 30.0, 31.0])

    class Model:
        name = "scripted"

        def __init__(self):
            self.answers = [Usage(input_tokens=70, output_tokens=30), TransientProviderError("ThrottlingException")]

        def run_step(self, step, context):
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return type("Output", (), {"usage": answer})()

        def finish(self, message, outputs, clarifications=None):
            raise ValueError("the model answered nonsense")

    provider = MeasuredProvider(Model(), telemetry, monotonic=lambda: next(ticks))
    provider.run_step(None, None)
    with pytest.raises(TransientProviderError):
        provider.run_step(None, None)
    with pytest.raises(ValueError):
        provider.finish("m", [])
    assert telemetry.values("ModelLatency") == [250.0, 500.0, 1000.0]
    assert telemetry.values("ModelTokens") == [100.0]
    assert telemetry.values("ModelThrottles") == [1] and telemetry.values("ModelErrors") == [1]
    assert model_call(0.1, error=RuntimeError("chat completions answered HTTP 429: slow down"))["ModelThrottles"]
    assert "ModelThrottles" not in model_call(0.1, error=RuntimeError("order 4291 has 429 items"))  # a number


def test_an_emf_line_names_its_metrics_units_and_the_stack_dimension_and_keeps_ids_out_of_dimensions():
    lines: list[str] = []
    EmfMetrics("asyncagents", {"Stack": "prod"}, write=lines.append).emit(
        {"RequestsCompleted": (1, "Count"), "RequestDuration": (1500.0, "Milliseconds")},
        metadata={"request_id": "req_1"},
    )
    (document,) = [json.loads(line) for line in lines]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "asyncagents" and directive["Dimensions"] == [["Stack"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "RequestsCompleted": "Count",
        "RequestDuration": "Milliseconds",
    }
    assert document["Stack"] == "prod" and document["request_id"] == "req_1"
    assert document["RequestDuration"] in (1500.0, [1500.0])
    EmfMetrics("asyncagents", {"Stack": "prod"}, write=lines.append).emit({})
    assert len(lines) == 1  # nothing to measure, no line


class Totals:
    def __init__(self, values: dict):
        self.values = values
        self.asked: list = []

    def totals(self, wanted, start, end):
        self.asked.append((list(wanted), start, end))
        return {key: float(self.values.get(key, 0)) for key in wanted}


class Depth:
    def unfinished_requests(self) -> int:
        return 4

    def webhook_backlog(self) -> tuple[int, int]:
        return 7, 2

    def webhook_dead_letters(self) -> int:
        return 1


def test_the_four_figures_come_from_the_window_sums_and_the_live_depth():
    # Given, in the last hour, 6 completed (36 s in all), 1 failed, 1 timed out, 2 cancelled; 9 webhooks delivered,
    # 3 retries, 1 dead-lettered
    metrics = Totals(
        {
            ("RequestsCompleted", "Sum"): 6,
            ("RequestsFailed", "Sum"): 1,
            ("RequestsTimedOut", "Sum"): 1,
            ("RequestsCancelled", "Sum"): 2,
            ("RequestDuration", "Sum"): 36000 + 4000 + 6000,
            ("RequestDuration", "SampleCount"): 8,
            ("WebhookDelivered", "Sum"): 9,
            ("WebhookRetried", "Sum"): 3,
            ("WebhookDead", "Sum"): 1,
            ("WebhookAttempts", "Sum"): 13,
        }
    )
    now = datetime(2026, 11, 30, 12, 0, 0, 400000, tzinfo=UTC)
    figures = Monitoring(metrics, Depth(), clock=lambda: now).figures("1h")
    # Then the averages and rates are over what ended (cancelled requests are neither successes nor failures)
    assert figures.average_duration_seconds == 5.75
    assert figures.success_rate == 0.75
    assert figures.webhook_delivery_success_rate == 0.9
    assert (figures.queue_depth.unfinished_requests, figures.queue_depth.webhook_backlog) == (4, 7)
    assert figures.requests.cancelled == 2 and figures.webhooks.retried == 3
    # and the window is the last hour, up to the end of this second
    _, start, end = metrics.asked[0]
    assert (end - start).total_seconds() == 3600 and end == datetime(2026, 11, 30, 12, 0, 1, tzinfo=UTC)


def test_with_nothing_ended_the_rates_are_unknown_not_zero():
    figures = Monitoring(Totals({}), Depth(), clock=lambda: datetime.now(UTC)).figures("15m")
    assert (figures.average_duration_seconds, figures.success_rate, figures.webhook_delivery_success_rate) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("window", ["0m", "1s", "15d", "h", "1.5h", "-1h", "100000d"])
def test_a_window_out_of_bounds_or_shape_is_refused_naming_it(window):
    with pytest.raises(BadRequest) as refused:
        window_seconds(window)
    assert refused.value.details == {"field": "window"} and str(refused.value).startswith("window:")


def test_windows_from_a_minute_to_fourteen_days():
    assert [window_seconds(w) for w in ("1m", "90m", "24h", "14d")] == [60, 5400, 86400, 1209600]


def test_the_schemas_pattern_admits_exactly_the_windows_the_rule_admits():
    """Every window the API's schema lets through is answered (no 400 for schema-valid input), and the reverse."""
    import re

    from asyncagents.domain.monitoring import WINDOW_PATTERN

    for unit, seconds in (("m", 60), ("h", 3600), ("d", 86400)):
        for amount in range(0, 20200 if unit == "m" else 400):
            window = f"{amount}{unit}"
            admitted = 60 <= amount * seconds <= 14 * 86400
            assert bool(re.match(WINDOW_PATTERN, window)) is admitted, window
