"""Auto mode, measured: decision accuracy on labelled requests, and how history shrinks the estimate error.

    make bench BENCH=bench/estimator.py

(1) Accuracy: each labelled message (bench/estimator_cases.yaml, and the held-out
    bench/estimator_holdout.yaml that was never used to tune the rules) is estimated with no history and
    decided at the default threshold (60 s).
(1b) Accuracy at the seeds' two thresholds (30 s and 60 s) on the larger sets labelled in seconds by people
    who had not seen the rules: the development sets (bench/estimator_dev*.yaml: the rules were tuned on them and
    the text model trained on them) and the held-out sets bench/estimator_heldout4.yaml and estimator_heldout5.yaml
    (written blind to all of them, never trained or tuned on); overall, and for requests far from the threshold
    (labelled at most half of it, or at least twice it), with issue 15's targets. And the seed's worked example.
(2) Learning: a stream of requests whose actual durations come from the demo provider's model of work
    (its planner's steps times a configured per-step duration, plus Plan/Finish overhead) is replayed
    through the estimator with an in-memory history: estimate, then record the actual duration. The median
    absolute percentage error per window of requests falls as history accumulates.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from asyncagents.config import parse_formation
from asyncagents.domain.estimator import Estimator
from asyncagents.domain.workload import analyse
from asyncagents.providers.demo import DemoProvider

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = parse_formation({}).async_.threshold_seconds
OVERHEAD_SECONDS = 2.0  # Plan + Finish + state transitions

# (message template, seconds per planned step): the "configured step durations" of the replay.
WORKLOADS: list[tuple[str, float]] = [
    ("What is the {thing} of {place}?", 1.5),
    ("Translate '{phrase}' into {language}", 1.0),
    ("Research {n} {nouns}, compare their {aspect}, and write a report", 22.0),
    ("Analyze {n} {docs} and summarise the findings", 6.0),
    ("Investigate {topic}, query the database and produce a chart", 14.0),
    ("Draft a {length} email to {person} about {topic}", 3.0),
]
FILL: dict[str, list[Any]] = {
    "thing": ["population", "capital", "area", "currency"],
    "place": ["Canada", "Peru", "Kenya", "Norway"],
    "phrase": ["good morning", "thank you", "see you soon"],
    "language": ["French", "German", "Japanese"],
    "n": [2, 3, 4, 5, 6, 8, 10],
    "nouns": ["competitors", "vendors", "startups", "frameworks"],
    "aspect": ["pricing", "features", "support"],
    "docs": ["documents", "contracts", "tickets", "invoices"],
    "topic": ["churn", "sign-ups", "latency", "refunds"],
    "length": ["short", "friendly", "formal"],
    "person": ["Sam", "the team", "a customer"],
}


class MemoryHistory:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, float]] = {}

    def get_history(self, formation_id: str, kind: str) -> dict[str, Any] | None:
        return self.items.get((formation_id, kind))

    def add_history(self, formation_id: str, kind: str, log_ratio: float) -> None:
        item = self.items.setdefault((formation_id, kind), {"samples": 0, "sum_log_ratio": 0.0})
        item["samples"] += 1
        item["sum_log_ratio"] += log_ratio


def accuracy(path: Path) -> tuple[int, int, list[str]]:
    cases = yaml.safe_load(path.read_text())
    estimator = Estimator(MemoryHistory())
    misses = []
    for case in cases:
        estimate = estimator.estimate("bench", case["message"])
        decided = "async" if estimate.seconds >= THRESHOLD else "sync"
        if decided != case["expected"]:
            misses.append(f"  expected {case['expected']}, estimated {estimate.seconds:.0f} s: {case['message']}")
    return len(cases) - len(misses), len(cases), misses


# Written blind to the rules, in rounds; the rules were tuned on each after measuring it unseen (the note on
# issue 15 has the unseen figures). The held-out set is measured, never tuned on.
DEVELOPMENT_SETS = (
    "estimator_dev.yaml",
    "estimator_dev2.yaml",
    "estimator_dev3.yaml",
    "estimator_dev4.yaml",
    "estimator_dev5.yaml",
    "estimator_dev6.yaml",
    "estimator_dev7.yaml",  # half hard cases: quick asks full of lists and numbers, short asks implying long work
    "estimator_dev8.yaml",  # held-out set 2 until it was measured (session 11)
    "estimator_dev9.yaml",  # held-out set 3 until it was measured (session 11)
)
# The text model trains on every development set; the held-out sets are written blind to all of them and to the
# model, and never read by the training script: the fourth was measured once with the regression alone, then (with
# nothing looked at but its four figures) with the nearest-messages blend chosen by cross-validation; the fifth was
# written for that blend and measured once. Nothing is tuned on them: a held-out set that has been measured joins the
# development sets when a new one is written.
TRAINING_SETS = DEVELOPMENT_SETS
HELD_OUT_SETS = ("estimator_heldout4.yaml", "estimator_heldout5.yaml")
# Issue 15's goals on the held-out set: at each threshold, and for the requests far from it.
TARGETS = {30: 0.90, 60: 0.85}
FAR_TARGET = 0.95
SEED_EXAMPLE = "Research 3 competitors, compare features, create report"  # seed 000: 3 x 10 + 15 + 10 + 5 = 60 s


def table_seconds(message: str) -> float:
    """The factor table's estimate alone (before the text model)."""
    return sum(factor.seconds for factor in analyse(message))


def accuracy_at(
    cases: list[dict[str, Any]], threshold: float, estimate: Callable[[str], float] | None = None
) -> tuple[float, float, int]:
    """(accuracy, accuracy far from the threshold, how many are far) of the decisions at ``threshold``, by the
    estimator (with no history) or by ``estimate``."""
    estimator = Estimator(MemoryHistory())
    seconds = estimate or (lambda message: estimator.estimate("bench", message).seconds)
    right = far = far_right = 0
    for case in cases:
        expected = case["seconds"] >= threshold
        decided = seconds(case["message"]) >= threshold
        right += expected == decided
        if case["seconds"] <= threshold / 2 or case["seconds"] >= threshold * 2:
            far += 1
            far_right += expected == decided
    return right / len(cases), far_right / far if far else 1.0, far


def _accuracy_row(name: str, cases: list[dict[str, Any]], estimate: Callable[[str], float] | None = None) -> None:
    (at30, far30, n30), (at60, far60, n60) = accuracy_at(cases, 30, estimate), accuracy_at(cases, 60, estimate)
    print(f"{name:<23}  {len(cases):<4}  {at30:6.1%}  {far30:6.1%} of {n30:<4}  {at60:6.1%}  {far60:6.1%} of {n60}")


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def replay(count: int = 240, window: int = 40, seed: int = 7, *, learn: bool = True) -> list[tuple[int, float, int]]:
    rng = random.Random(seed)
    planner = DemoProvider(parse_formation({}).llm.demo, sleep=lambda _: None)
    estimator = Estimator(MemoryHistory(), cache_seconds=0)
    errors: list[float] = []
    rows = []
    for index in range(count):
        template, per_step = rng.choice(WORKLOADS)
        message = template.format(**{key: rng.choice(values) for key, values in FILL.items()})
        steps = len(planner.plan(message, max_steps=8).steps)
        actual = steps * per_step * rng.uniform(0.9, 1.1) + OVERHEAD_SECONDS
        estimate = estimator.estimate("bench", message)
        errors.append(abs(estimate.seconds - actual) / actual * 100)
        if learn:
            estimator.record("bench", estimate.kind, estimate.analytic_seconds, actual, analysis=estimate.analysis)
        if (index + 1) % window == 0:
            rows.append((index + 1, statistics.median(errors[-window:]), estimate.history_samples))
    return rows


HOSTILE = ["a, " * 2000, "a b c, " * 600, "1 2 3 4 " * 500, "- a " * 1000, "a-b, c.d e, " * 300 + "and x", " " * 32_000]


def analysis_times() -> tuple[float, float]:
    """(median ms for a typical request, worst ms over hostile 4 KB inputs) of the whole estimate (the factor table
    and the text model): the accept path pays this."""
    estimator = Estimator(None)
    estimator.estimate("bench", SEED_EXAMPLE)  # the text model's weights load once per container
    typical = []
    for _ in range(9):
        started = time.perf_counter()
        for _ in range(100):
            estimator.estimate("bench", SEED_EXAMPLE)
        typical.append((time.perf_counter() - started) * 10)
    worst = 0.0
    for text in HOSTILE:
        started = time.perf_counter()
        estimator.estimate("bench", text)
        worst = max(worst, (time.perf_counter() - started) * 1000)
    return statistics.median(typical), worst


def main() -> int:
    print(f"threshold: {THRESHOLD:g} s (formation default)")
    for name in ("estimator_cases.yaml", "estimator_holdout.yaml"):
        right, total, misses = accuracy(ROOT / "bench" / name)
        print(f"\n(1) decision accuracy on {name}: {right}/{total} = {right / total:.1%}")
        print("\n".join(misses))
    print("\n(1b) decision accuracy at both thresholds (labels in seconds, no history)")
    print("set                      n     at 30 s  far from 30 s   at 60 s  far from 60 s")
    print("-----------------------  ----  -------  --------------  -------  --------------")
    every_development_case = []
    for name in DEVELOPMENT_SETS:
        cases = yaml.safe_load((ROOT / "bench" / name).read_text())
        every_development_case += cases
        _accuracy_row(name, cases)
    _accuracy_row("all development sets", every_development_case)
    held_out = {name: yaml.safe_load((ROOT / "bench" / name).read_text()) for name in HELD_OUT_SETS}
    for name, cases in held_out.items():
        _accuracy_row(name, cases)
        _accuracy_row("  its factor table alone", cases, table_seconds)
    for name, cases in held_out.items():
        print(f"\nissue 15's targets, on {name}:")
        for threshold, (overall, far, _) in ((30, accuracy_at(cases, 30)), (60, accuracy_at(cases, 60))):
            for what, value, goal in (("", overall, TARGETS[threshold]), (" far from it", far, FAR_TARGET)):
                print(f"  at {threshold} s{what}: {value:.1%} (goal at least {goal:.0%}): {_verdict(value >= goal)}")
    example = Estimator(MemoryHistory()).estimate("bench", SEED_EXAMPLE)
    factors = ", ".join(f"{f['name']} x{f['count']}" for f in example.model_dump().get("factors", []))
    print(f"\nseed 000's worked example: {example.seconds:.0f} s (seed: 60 s) for {SEED_EXAMPLE!r}: {factors}")
    typical_ms, worst_ms = analysis_times()
    print(f"\nanalysis time on the accept path: {typical_ms:.2f} ms typical, {worst_ms:.1f} ms worst (hostile 4 KB)")
    print("\n(2) estimate error while history accumulates (median absolute % error per window)")
    print("requests seen  with history  analysis alone  history samples of the last kind")
    print("-------------  ------------  --------------  --------------------------------")
    for (seen, error, samples), (_, alone, _) in zip(replay(), replay(learn=False), strict=True):
        print(f"{seen:<13}  {error:11.1f}%  {alone:13.1f}%  {samples}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
