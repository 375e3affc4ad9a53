"""How long a request will take, before it runs: the seed's factor table, blended with history.

``workload.analyse`` reads the message into factors (the seed's research, analysis, tools, files, external
calls and coordination, plus pages read, words written, items handled one by one and code changes); their
typical seconds add up to the factor table's estimate, which the learned text model (``workload.text_model``)
corrects from the message's words: the analysis is their blend, and the range (the sums of the factors' lows
and highs) is scaled alike. Each request also gets a *kind* (which factors it has); actual durations of
finished requests are kept per formation and kind as the log of actual/analysed, and later estimates of that
kind are corrected by their geometric mean, weighted by how many there are (n / (n + 3)).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache
from pydantic import Field

from asyncagents.domain.factor import Factor
from asyncagents.domain.ports import HistoryStore
from asyncagents.model_base import LazyModel

__all__ = ["Estimate", "Estimator", "Factor", "LearnedKind", "kind_of"]

HISTORY_PRIOR = 3  # samples before history weighs as much as the analysis
MOST_SECONDS = 30 * 86_400.0  # the longest estimate made
# History's ratios are measured against the analysis that made the estimate (the text model's weights: a retraining
# is another analysis). History learned against another one (the factor table alone, before the text model, has
# none) would correct this one wrongly, so each analysis keeps its own; forgetting forgets this one's and the table's.
_TABLE_ALONE = ""  # history kept under the formation's id itself


def _history_scope(formation_id: str, analysis: str) -> str:
    return f"{formation_id}@{analysis}" if analysis else formation_id


def current_analysis() -> str:
    """The analysis estimates are made with now (the shipped text model's)."""
    from asyncagents.domain.workload.text_model import shipped

    return shipped().analysis


class Estimate(LazyModel):
    """A duration range with its reasons. ``seconds`` is what the decision compares to the threshold."""

    low: float
    high: float
    seconds: float
    kind: str
    analytic_seconds: float
    factors_seconds: float = 0.0  # the factor table's sum, before the text model's correction
    analysis: str = ""  # what made it (the text model's weights); history is kept per analysis
    factors: list[Factor] = Field(default_factory=list)
    history_samples: int = 0
    history_weight: float = 0.0

    def range_text(self) -> str:
        """``"45-60 seconds"`` (rounded to 5 s, as people say it)."""

        def five(value: float) -> int:
            return max(5, int(5 * round(value / 5)))

        low, high = five(self.low), five(self.high)
        return f"{low}-{max(low, high)} seconds" if high > low else f"about {low} seconds"


class LearnedKind(LazyModel):
    """A kind of request the estimator has history for: ``correction`` multiplies its analysis now."""

    kind: str
    samples: int
    correction: float


def kind_of(factors: list[Factor]) -> str:
    """Requests of one kind share history: the factors present, coordination aside ("simple" if none)."""
    names = sorted(f.name for f in factors if f.name not in {"coordination", "reply"})
    return "+".join(names) or "simple"


class Estimator:
    """Estimates with history, read through a short per-container cache (the accept path stays at one
    write and one StartExecution when warm). Without a history store, the analysis alone."""

    def __init__(
        self,
        history: HistoryStore | None,
        *,
        cache_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._history = history
        self._cache: TTLCache[tuple[str, str], dict[str, Any] | None] = TTLCache(
            maxsize=256, ttl=cache_seconds, timer=monotonic
        )
        self._lock = threading.Lock()

    def estimate(self, formation_id: str, message: str) -> Estimate:
        # The workload reader (its vocabularies: about 20 ms to import) loads with the first estimate, not with
        # every function that names the estimator.
        from asyncagents.domain.workload import analyse
        from asyncagents.domain.workload.text_model import shipped

        factors = analyse(message)
        table = sum(f.seconds for f in factors)
        analytic = shipped().seconds(message, table)
        scale = analytic / table if table > 0 else 1.0
        # Counts multiply ("a billion posts of a billion words"): past a month, an estimate says nothing more.
        low = min(sum(f.low for f in factors) * scale, MOST_SECONDS)
        high = min(sum(f.high for f in factors) * scale, MOST_SECONDS)
        analytic = min(analytic, MOST_SECONDS)
        kind = kind_of(factors)
        samples, mean_log_ratio = self._learned(formation_id, kind)
        weight = samples / (samples + HISTORY_PRIOR)
        correction = math.exp(weight * mean_log_ratio)
        return Estimate(
            low=round(low * correction, 1),
            high=round(high * correction, 1),
            seconds=round(analytic * correction, 1),
            kind=kind,
            analytic_seconds=round(analytic, 1),
            factors_seconds=round(table, 1),
            analysis=current_analysis(),
            factors=factors,
            history_samples=samples,
            history_weight=round(weight, 3),
        )

    def record(
        self, formation_id: str, kind: str, analytic_seconds: float, actual_seconds: float, *, analysis: str
    ) -> None:
        """Learn from a finished request: how far off its ``analysis`` was (the estimate's), as a log ratio."""
        if analytic_seconds <= 0 or actual_seconds <= 0 or self._history is None:
            return
        scope = _history_scope(formation_id, analysis)
        self._history.add_history(scope, kind, math.log(actual_seconds / analytic_seconds))
        with self._lock:
            self._cache.pop((scope, kind), None)

    def learned(self, formation_id: str) -> list[LearnedKind]:
        """What history has taught the estimator, per kind of request: how many requests, and the factor its
        analysis is multiplied by now."""
        if self._history is None:
            return []
        kinds = []
        learned = self._history.learned(_history_scope(formation_id, current_analysis()))
        for item in sorted(learned, key=lambda found: str(found["kind"])):
            samples = int(item.get("samples", 0))
            mean = float(item.get("sum_log_ratio", 0.0)) / samples if samples > 0 else 0.0
            weight = samples / (samples + HISTORY_PRIOR)
            kinds.append(
                LearnedKind(kind=str(item["kind"]), samples=samples, correction=round(math.exp(weight * mean), 3))
            )
        return kinds

    def forget(self, formation_id: str) -> int:
        """Forget what this formation learned, for today's analysis and the table's (this container's cache too);
        returns how many kinds."""
        if self._history is None:
            return 0
        scopes = [_history_scope(formation_id, current_analysis()), _history_scope(formation_id, _TABLE_ALONE)]
        kinds = {str(item["kind"]) for scope in scopes for item in self._history.learned(scope)}
        for scope in scopes:
            self._history.forget(scope)
        with self._lock:
            for key in [key for key in self._cache if key[0] in scopes]:
                self._cache.pop(key, None)
        return len(kinds)

    def _learned(self, formation_id: str, kind: str) -> tuple[int, float]:
        if self._history is None:
            return 0, 0.0
        key = (_history_scope(formation_id, current_analysis()), kind)
        with self._lock:
            item = self._cache.get(key, _MISSING)
        if item is _MISSING:
            item = self._history.get_history(key[0], kind)
            with self._lock:
                self._cache[key] = item
        found = item if isinstance(item, dict) else {}
        samples = int(found.get("samples", 0))
        if samples <= 0:
            return 0, 0.0
        return samples, float(found.get("sum_log_ratio", 0.0)) / samples


_MISSING: Any = object()
