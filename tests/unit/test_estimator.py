"""The auto-mode estimator and the sync/async decision."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from asyncagents.api.schemas import ChatRequest
from asyncagents.api.views import accepted_body, request_body
from asyncagents.config import parse_formation
from asyncagents.domain.auth import Principal
from asyncagents.domain.estimator import Estimator, current_analysis, kind_of
from asyncagents.domain.requests import NewRequest, RequestService
from asyncagents.domain.requests.submit import decide_mode
from asyncagents.domain.workload import analyse

from .fakes import FakeTimer, InMemoryStore, RecordingEngine

DEVELOPMENT_SETS = sorted((Path(__file__).resolve().parents[2] / "bench").glob("estimator_dev*.yaml"))


def factors(message: str) -> dict[str, int]:
    return {f.name: f.count for f in analyse(message)}


def test_the_seed_example_is_broken_down_like_the_seed():
    # seeds/000: 3 x 10 s research + 15 s feature comparison + 10 s report + 5 s agent coordination = 60 s.
    estimate = Estimator(InMemoryStore()).estimate("f", "Research 3 competitors, compare features, create report")
    assert [(f.name, f.count, f.seconds) for f in estimate.factors] == [
        ("research", 3, 30),
        ("analysis", 1, 15),
        ("file", 1, 10),
        ("coordination", 1, 5),
    ]
    assert estimate.seconds == 60  # async at the default threshold, as in the seed
    assert estimate.low < estimate.seconds < estimate.high
    assert estimate.range_text() == "30-100 seconds"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("What's the weather in SF?", {"external_api": 1}),
        ("Process 100 documents and extract the key dates", {"batch": 100, "tool": 1, "coordination": 1}),
        ("Research top 10 AI companies", {"research": 10}),
        ("Analyze entire codebase", {"analysis": 1, "code": 5}),
        ("Say hi [demo step_seconds=99]", {"reply": 1}),  # demo directives are not content
    ],
)
def test_factors(message, expected):
    assert factors(message) == expected


def test_estimates_are_deterministic_and_explain_themselves():
    estimator = Estimator(InMemoryStore())
    first = estimator.estimate("f", "Research AI trends and create comprehensive report")
    again = estimator.estimate("f", "Research AI trends and create comprehensive report")
    assert first == again
    assert {f.name for f in first.factors} >= {"research", "analysis", "file"}
    assert first.kind == "analysis+file+research"
    assert first.history_samples == 0 and first.history_weight == 0


def test_history_pulls_later_estimates_toward_actual_durations():
    store = InMemoryStore()
    now = [0.0]
    estimator = Estimator(store, cache_seconds=60, monotonic=lambda: now[0])
    message = "Summarise this paragraph in one sentence"
    before = estimator.estimate("f", message)
    for _ in range(6):
        estimator.record(
            "f", before.kind, before.analytic_seconds, before.analytic_seconds * 4, analysis=before.analysis
        )
    after = estimator.estimate("f", message)  # record() dropped the cached history
    assert after.history_samples == 6
    assert after.history_weight == pytest.approx(6 / 9, abs=1e-3)
    assert after.seconds == pytest.approx(before.analytic_seconds * math.exp(6 / 9 * math.log(4)), rel=0.01)
    # history is per formation and per kind
    assert estimator.estimate("other-formation", message).history_samples == 0
    assert estimator.estimate("f", "Research 3 competitors and create a report").history_samples == 0


def test_history_reads_are_cached_per_container():
    store = InMemoryStore()
    reads = []
    original = store.get_history
    store.get_history = lambda f, k: reads.append(k) or original(f, k)  # type: ignore[method-assign]
    estimator = Estimator(store, cache_seconds=60, monotonic=lambda: 0.0)
    for _ in range(5):
        estimator.estimate("f", "What's the weather in SF?")
    assert len(reads) == 1


@pytest.mark.parametrize("threshold", [30, 60])
def test_the_development_set_is_decided_as_labelled(threshold):
    # The rules were tuned on these sets and the text model trained on them; the floor keeps them from sliding
    # back. How the estimator does on requests it never saw is measured by bench/estimator.py on
    # bench/estimator_heldout4.yaml.
    cases = [case for path in DEVELOPMENT_SETS for case in yaml.safe_load(path.read_text())]
    assert len(cases) >= 1920
    estimator = Estimator(InMemoryStore())
    wrong = [
        case["message"]
        for case in cases
        if (estimator.estimate("f", case["message"]).seconds >= threshold) != (case["seconds"] >= threshold)
    ]
    assert len(wrong) / len(cases) <= 0.12, wrong  # measured: 8-9 % wrong (bench/estimator.py)


QUICK = "What's the weather in SF?"
LONG = "Research 3 competitors, compare features, create report"


@pytest.mark.parametrize(
    ("formation", "body", "mode", "reason"),
    [
        ({}, {"message": QUICK}, "sync", "estimate"),
        ({}, {"message": LONG}, "async", "estimate"),
        ({}, {"message": LONG, "async": False}, "sync", "forced"),
        ({}, {"message": QUICK, "async": True}, "async", "forced"),
        ({}, {"message": QUICK, "threshold_seconds": 3}, "async", "estimate"),  # per-request threshold
        ({}, {"message": LONG, "threshold_seconds": 600}, "sync", "estimate"),
        ({}, {"message": QUICK, "webhook_url": "https://hooks.example/"}, "async", "webhook"),
        ({"async": {"webhook_url": "https://hooks.example/"}}, {"message": QUICK}, "async", "webhook"),
        ({"async": {"mode": "sync"}}, {"message": LONG}, "sync", "formation"),
        ({"async": {"mode": "async"}}, {"message": QUICK}, "async", "formation"),
        ({"async": {"mode": "async"}}, {"message": QUICK, "async": False}, "sync", "forced"),
        ({"async": {"threshold_seconds": 3}}, {"message": QUICK}, "async", "estimate"),
    ],
)
def test_decision_modes_and_overrides(formation, body, mode, reason):
    config = parse_formation(formation)
    estimate = Estimator(InMemoryStore()).estimate("f", body["message"])
    assert decide_mode(ChatRequest.model_validate(body).to_domain(), config, estimate) == (mode, reason)


def test_accepted_answer_carries_the_estimate_and_the_record_keeps_it():
    store = InMemoryStore()
    timer = FakeTimer()
    service = RequestService(
        store,
        RecordingEngine(),
        parse_formation({}),
        sleep=timer.sleep,
        monotonic=timer.monotonic,
        resolver=lambda host, port: ["93.184.216.34"],
        estimator=Estimator(store),
    )
    submission = service.submit(Principal("k", "u"), NewRequest(message=LONG, webhook_url="https://hooks.example/"))
    body = accepted_body(submission.record)
    assert body["delivery"] == "webhook"
    assert body["estimated_time"].endswith("seconds") and body["estimated_seconds"] >= 60
    public = request_body(store.get(submission.record.request_key))
    assert public["mode_reason"] == "webhook"
    assert public["estimate"]["kind"] == kind_of(analyse(LONG))
    assert {f["name"] for f in public["estimate"]["factors"]} >= {"research", "analysis", "file"}
    assert public["estimate"]["factors_seconds"] == sum(f["seconds"] for f in public["estimate"]["factors"])


def test_the_request_shows_the_factors_sum_beside_what_the_text_model_made_of_it():
    store = InMemoryStore()
    service = RequestService(store, RecordingEngine(), parse_formation({}), estimator=Estimator(store))
    message = "Write end-to-end Playwright tests covering signup, login, checkout and password reset for the web app"
    submission = service.submit(Principal("k", "u"), NewRequest(message=message, async_=True))
    shown = request_body(store.get(submission.record.request_key))["estimate"]
    assert shown["factors_seconds"] == 5 and shown["seconds"] > 30


def test_what_the_patterns_read_is_folded_and_bounded():
    # A 32 KB run of spaces made the clause pattern take about 48 s; the patterns now never see one.
    from asyncagents.domain.workload import normalise

    assert normalise(" " * 32_000 + "X [demo step_seconds=1]  Y") == " x y"
    assert len(normalise("word " * 10_000)) == 4000
    assert factors(" " * 32_000 + "x") == {"reply": 1}


def test_history_learned_against_an_earlier_analysis_is_kept_apart_and_forgotten_with_it():
    # Given history learned before the text model (kept under the formation's id itself): everything 10x slower
    store = InMemoryStore()
    message = "Research 3 competitors, compare features, create report"
    for _ in range(20):
        store.add_history("f", kind_of(analyse(message)), math.log(10))
    estimator = Estimator(store, cache_seconds=0)
    # Then today's analysis is not corrected by it
    estimate = estimator.estimate("f", message)
    assert (estimate.history_samples, estimate.seconds) == (0, estimate.analytic_seconds)
    assert estimate.analysis == current_analysis() and estimate.analysis.startswith("text-")
    # And a request estimated before the upgrade, finishing after it, teaches the table's history, not today's
    estimator.record("f", estimate.kind, 60, 120, analysis="")
    assert estimator.estimate("f", message).history_samples == 0
    # And what today's estimates learn is their own, and corrects them
    estimator.record(
        "f", estimate.kind, estimate.analytic_seconds, estimate.analytic_seconds * 2, analysis=estimate.analysis
    )
    assert estimator.estimate("f", message).history_samples == 1
    assert [(k.kind, k.samples) for k in estimator.learned("f")] == [(estimate.kind, 1)]
    # And forgetting forgets both, counting a kind learned in both once
    assert estimator.forget("f") == 1
    assert store.get_history("f", estimate.kind) is None and estimator.learned("f") == []
