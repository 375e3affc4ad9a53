"""Calibrate the workload reader's typical seconds per unit on the development sets (never the held-out one).

    .venv/bin/python bench/estimator_calibrate.py

The seed fixes four typical values (research 10 s per source, analysis 15 s, file 10 s, coordination 5 s:
its worked example). The others are searched one at a time, in rounds, over multipliers of their current
value, keeping the one that decides most development requests right at both thresholds (30 s and 60 s),
ties going to the smallest change. It prints the values found; copying them into
``asyncagents.domain.workload.factors.UNIT_SECONDS`` is a deliberate, reviewed step.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from asyncagents.domain.workload import factors

ROOT = Path(__file__).resolve().parents[1]
SEED_FIXED = {"research", "analysis", "file", "coordination"}
MULTIPLIERS = (0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0)


def development_cases() -> list[dict[str, Any]]:
    return [
        case
        for path in sorted((ROOT / "bench").glob("estimator_dev*.yaml"))
        for case in yaml.safe_load(path.read_text())
    ]


def right(cases: list[dict[str, Any]], analysed: list[list[factors.Factor]]) -> int:
    total = 0
    for case, found in zip(cases, analysed, strict=True):
        seconds = sum(f.seconds for f in found)
        total += sum((case["seconds"] >= t) == (seconds >= t) for t in (30, 60))
    return total


def analyse_all(cases: list[dict[str, Any]]) -> list[list[factors.Factor]]:
    return [factors.analyse(case["message"]) for case in cases]


def main() -> int:
    cases = development_cases()
    base = dict(factors.UNIT_SECONDS)
    best = right(cases, analyse_all(cases))
    print(f"{len(cases)} development requests; decided right now: {best}/{2 * len(cases)} (both thresholds)")
    for _round in range(3):
        changed = False
        for name in [unit for unit in base if unit not in SEED_FIXED]:
            original = factors.UNIT_SECONDS[name]
            scores = []
            for multiplier in MULTIPLIERS:
                low, typical, high = original
                factors.UNIT_SECONDS[name] = (low, round(typical * multiplier, 2), high)
                scores.append((right(cases, analyse_all(cases)), -abs(multiplier - 1), multiplier))
            score, _, multiplier = max(scores)
            factors.UNIT_SECONDS[name] = (original[0], round(original[1] * multiplier, 2), original[2])
            if score > best:
                best, changed = score, True
                print(f"  {name}: typical {original[1]} -> {factors.UNIT_SECONDS[name][1]}  ({score})")
            else:
                factors.UNIT_SECONDS[name] = original
        if not changed:
            break
    print("typical seconds per unit:")
    for name, (_, typical, _) in factors.UNIT_SECONDS.items():
        print(f"  {name:14} {typical:g}{'  (seed)' if name in SEED_FIXED else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
