"""How long a request will take, before it runs: the seed's factor table, blended with history.

The analysis is deterministic and local (no model call on the accept path): it reads the message for the
factors of seeds/000 "Execution Time Estimation" and adds their time ranges:

| factor             | time added           |
|--------------------|----------------------|
| research           | 5-15 s per source    |
| complex analysis   | 10-30 s              |
| tool execution     | 1-10 s per tool      |
| file generation    | 5-20 s per file      |
| external API calls | 2-10 s per call      |
| agent coordination | 1-5 s per agent      |

plus a base model reply (1-4 s), stretched by a complexity score (length, and how many kinds of work the
request mixes). Each request also gets a *kind* (which factors it has); actual durations
of finished requests are kept per formation and kind as the log of actual/estimated, and later estimates
of that kind are corrected by their geometric mean, weighted by how many there are (n / (n + 3)).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache
from pydantic import BaseModel, Field

from asyncagents.domain.ports import HistoryStore

# seconds (low, high) per unit
FACTOR_RANGES: dict[str, tuple[float, float]] = {
    "research": (5, 15),
    "analysis": (10, 30),
    "tool": (1, 10),
    "file": (5, 20),
    "external_api": (2, 10),
    "coordination": (1, 5),
}
BASE_RANGE = (1.0, 4.0)
_MAX_ANALYSED_CHARS = 4000
HISTORY_PRIOR = 3  # samples before history weighs as much as the analysis

_NUMBER_WORDS = {
    "a couple of": 2, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "dozen": 12, "a dozen": 12, "several": 3, "multiple": 4, "many": 5, "few": 3, "a few": 3,
}  # fmt: skip
_COUNT = r"(\d{1,4}|a couple of|a dozen|a few|two|three|four|five|six|seven|eight|nine|ten|dozen|several|multiple|many)"
_SOURCE_NOUNS = (
    r"(?:sources?|competitors?|companies|company|papers?|articles?|websites?|sites?|vendors?|products?|studies|"
    r"reports?|startups?|providers?|tools?|frameworks?|libraries|databases?|markets?|countries|brands?|blogs?|"
    r"news outlets?|journals?)"
)
_SOURCE_COUNT = re.compile(rf"\b(?:top\s+)?{_COUNT}\s+(?:\w+\s+){{0,2}}?{_SOURCE_NOUNS}\b")
_TOP_N = re.compile(r"\btop\s+(\d{1,4})\b")
_RESEARCH = re.compile(
    r"\b(research|investigate|survey|literature review|find out|gather information|look into|study|"
    r"market analysis|competitive analysis|multi-source|multiple sources|deep dive)\b"
)
_ANALYSIS = re.compile(
    r"\b(analy[sz]e|analysis|compare|comparison|evaluate|evaluation|assess|assessment|audit|benchmark|"
    r"in-depth|comprehensive|thorough|strategy|strategic|forecast|root cause|review (?:the|all|every)|"
    r"identify (?:trends|patterns|risks)|trends|security|analytics)\b"
)
_TOOLS = re.compile(
    r"\b(search|look up|lookup|query|queries|fetch|scrape|crawl|calculate|compute|run|execute|translate|"
    r"convert|extract|parse|transcribe|classify|tag|index|process|summari[sz]e each|ocr)\b"
)
_FILE_NOUNS = (
    r"(report|pdf|spreadsheet|excel|csv|slides?|presentation|deck|document|docx|chart|graph|diagram|"
    r"dashboard|whitepaper|memo|newsletter|brief|table|plan|review)s?"
)
# A file is generated when a making verb governs a file noun within a few words ("create a PDF report").
_FILES = re.compile(
    r"\b(?:create|write|generate|produce|build|draft|prepare|make|export|compile|put together|deliver|open)\b"
    rf"(?:\W+[\w'-]+){{0,5}}?\W+{_FILE_NOUNS}\b"
)
_EXTERNAL = re.compile(
    r"\b(api|apis|weather|stock|stocks|github|gitlab|slack|jira|email|emails|calendar|crm|salesforce|"
    r"hubspot|webhook|database|sql|notion|google drive|sharepoint|twitter|linkedin|zendesk)\b"
)
_BULK = re.compile(
    rf"\b{_COUNT}\s+(?:\w+\s+){{0,2}}?(documents?|files?|pdfs?|emails?|tickets?|records?|images?|pages?)\b"
)
_WHOLE = re.compile(
    r"\b(?:entire|whole|all (?:the |of the |my |our )?)\s*(?:codebase|repository|repo|database|inbox|archive|"
    r"emails|files|documents|tickets|records|repositories)\b"
)
# Plural collections with no count given ("our GitHub repositories", "Jira tickets"): a handful each.
_PLURAL_BULK = re.compile(
    r"\b(repositories|repos|emails|tickets|documents|files|records|pdfs|spreadsheets|invoices|contracts)\b"
)
_ACTION_AFTER_AND = (
    r"(?:create|write|draft|make|build|send|produce|generate|compare|analy[sz]e|summari[sz]e|email|post)"
)
_CLAUSES = re.compile(rf"\s*(?:[;,.!?]|\band then\b|\bthen\b|\band\b(?=\s+{_ACTION_AFTER_AND}))\s*", re.IGNORECASE)


class Factor(BaseModel):
    name: str
    count: int
    low: float
    high: float


def complexity_of(message: str, factors: list[Factor]) -> float:
    """A 0-1 score of how involved the request reads: its length and how many kinds of work it mixes.
    It stretches the base reply time (a long, many-sided request gets a longer answer)."""
    words = len(message.split())
    kinds = sum(1 for f in factors if f.name != "coordination")
    return round(min(1.0, words / 120) * 0.5 + min(1.0, kinds / 4) * 0.5, 3)


class Estimate(BaseModel):
    """A duration range with its reasons. ``seconds`` is what the decision compares to the threshold."""

    low: float
    high: float
    seconds: float
    kind: str
    analytic_seconds: float
    factors: list[Factor] = Field(default_factory=list)
    history_samples: int = 0
    history_weight: float = 0.0
    complexity: float = 0.0

    def range_text(self) -> str:
        """``"45-60 seconds"`` (rounded to 5 s, as people say it)."""

        def five(value: float) -> int:
            return max(5, int(5 * round(value / 5)))

        low, high = five(self.low), five(self.high)
        return f"{low}-{max(low, high)} seconds" if high > low else f"about {low} seconds"


def _number(text: str) -> int:
    text = text.strip().lower()
    return int(text) if text.isdigit() else _NUMBER_WORDS.get(text, 1)


def normalise(message: str) -> str:
    """What the patterns read: lower case, demo directives removed, whitespace folded (the patterns are
    quadratic in a long run of it) and capped, so the accept path stays fast whatever a client sends."""
    return re.sub(r"\s+", " ", re.sub(r"\[demo[^\]]*\]", " ", message.lower()))[:_MAX_ANALYSED_CHARS]


def analyse(message: str) -> list[Factor]:
    """The seed's factors found in ``message`` (deterministic, no model)."""
    text = normalise(message)
    counts: dict[str, int] = {}
    sources = [_number(m.group(1)) for m in _SOURCE_COUNT.finditer(text)]
    sources += [int(m.group(1)) for m in _TOP_N.finditer(text)]
    if sources:
        counts["research"] = min(max(sources), 50)
    elif _RESEARCH.search(text):
        counts["research"] = 4  # research with no count given: a few sources (seeds: "complex research, 5+")
    analysis = {m.group(1) for m in _ANALYSIS.finditer(text)}
    if analysis:
        counts["analysis"] = min(len(analysis), 3)
    tools = len({m.group(1) for m in _TOOLS.finditer(text)})
    bulk = [_number(m.group(1)) for m in _BULK.finditer(text)]
    if bulk:
        tools = max(tools, min(max(bulk), 100))  # one tool run per document or file processed
    elif _PLURAL_BULK.search(text):
        tools = max(tools, 5)
    if _WHOLE.search(text):
        tools = max(tools, 20)
    if tools:
        counts["tool"] = tools
    files = {m.group(1) for m in _FILES.finditer(text)}
    if files:
        counts["file"] = min(len(files), 5)
    external = {m.group(1) for m in _EXTERNAL.finditer(text)}
    if external:
        counts["external_api"] = min(len(external), 5)
    clauses = [c for c in _CLAUSES.split(text) if c and c.strip(" .")]
    counts["coordination"] = max(1, min(len(clauses), 12))
    return [
        Factor(name=name, count=count, low=FACTOR_RANGES[name][0] * count, high=FACTOR_RANGES[name][1] * count)
        for name, count in counts.items()
    ]


class LearnedKind(BaseModel):
    """A kind of request the estimator has history for: ``correction`` multiplies its analysis now."""

    kind: str
    samples: int
    correction: float


def kind_of(factors: list[Factor]) -> str:
    """Requests of one kind share history: the factors present, coordination aside ("simple" if none)."""
    names = sorted(f.name for f in factors if f.name != "coordination")
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
        factors = analyse(message)
        complexity = complexity_of(message, factors)
        stretch = 1 + 2 * complexity
        low = BASE_RANGE[0] * stretch + sum(f.low for f in factors)
        high = BASE_RANGE[1] * stretch + sum(f.high for f in factors)
        analytic = (low + high) / 2
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
            factors=factors,
            history_samples=samples,
            history_weight=round(weight, 3),
            complexity=complexity,
        )

    def record(self, formation_id: str, kind: str, analytic_seconds: float, actual_seconds: float) -> None:
        """Learn from a finished request: how far off the analysis was, as a log ratio."""
        if analytic_seconds <= 0 or actual_seconds <= 0 or self._history is None:
            return
        self._history.add_history(formation_id, kind, math.log(actual_seconds / analytic_seconds))
        with self._lock:
            self._cache.pop((formation_id, kind), None)

    def learned(self, formation_id: str) -> list[LearnedKind]:
        """What history has taught the estimator, per kind of request: how many requests, and the factor its
        analysis is multiplied by now."""
        if self._history is None:
            return []
        kinds = []
        for item in sorted(self._history.learned(formation_id), key=lambda found: str(found["kind"])):
            samples = int(item.get("samples", 0))
            mean = float(item.get("sum_log_ratio", 0.0)) / samples if samples > 0 else 0.0
            weight = samples / (samples + HISTORY_PRIOR)
            kinds.append(
                LearnedKind(kind=str(item["kind"]), samples=samples, correction=round(math.exp(weight * mean), 3))
            )
        return kinds

    def forget(self, formation_id: str) -> int:
        """Forget what this formation learned (this container's cache too); returns how many kinds."""
        if self._history is None:
            return 0
        forgotten = self._history.forget(formation_id)
        with self._lock:
            for key in [key for key in self._cache if key[0] == formation_id]:
                self._cache.pop(key, None)
        return forgotten

    def _learned(self, formation_id: str, kind: str) -> tuple[int, float]:
        if self._history is None:
            return 0, 0.0
        key = (formation_id, kind)
        with self._lock:
            item = self._cache.get(key, _MISSING)
        if item is _MISSING:
            item = self._history.get_history(formation_id, kind)
            with self._lock:
                self._cache[key] = item
        found = item if isinstance(item, dict) else {}
        samples = int(found.get("samples", 0))
        if samples <= 0:
            return 0, 0.0
        return samples, float(found.get("sum_log_ratio", 0.0)) / samples


_MISSING: Any = object()
