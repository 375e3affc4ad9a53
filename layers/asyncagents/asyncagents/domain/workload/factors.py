"""The factors of a request's duration, read from its message: the seed's table, and what it leaves out.

seeds/000 "Execution Time Estimation" adds, per factor found, a time per unit, and works an example:
"Research 3 competitors, compare features, create report" = 3 x 10 s research + 15 s comparison + 10 s report
+ 5 s agent coordination = 60 s. Each factor here has the seed's range per unit and a typical value (the
seed's example gives four of them); the estimate is the sum of the typical values, the range the sum of the
lows and highs.

The seed's table cannot tell a 300-page document from a one-page one, or 1,000 invoices from one, so the
reader also counts what the request names: pages read, words written, items handled one by one, and
engineering changes that need edit-build-test loops.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from asyncagents.domain.factor import Factor
from asyncagents.domain.workload import code_words
from asyncagents.domain.workload import vocabulary as words
from asyncagents.domain.workload.reading import (
    Quantity,
    ask_of,
    clauses_of,
    enumerated,
    governing_verbs,
    normalise,
    quantities,
    without_code_specs,
)

# seconds per unit: (low, typical, high)
UNIT_SECONDS: dict[str, tuple[float, float, float]] = {
    "research": (5, 10, 15),  # per source (seed: 5-15 s; its example: 10 s)
    "analysis": (10, 15, 30),  # per analysis (seed: 10-30 s; its example: 15 s)
    "deep_analysis": (10, 30, 30),  # a model, a statistic, an audit: the top of the seed's range
    "tool": (1, 3, 10),  # per tool run (seed: 1-10 s)
    "file": (5, 10, 20),  # per generated file (seed: 5-20 s; its example: 10 s)
    "external_api": (2, 6, 10),  # per system called (seed: 2-10 s)
    "coordination": (1, 5, 5),  # per coordinating agent, one per four steps (seed: 1-5 s; its example: 5 s)
    "reply": (1, 2, 4),  # a plain model reply, when nothing else is asked
    "reading": (0.5, 1.5, 3),  # per page read
    "writing": (1.5, 3, 6),  # per hundred words written
    "code": (10, 25, 60),  # per code change with its build and test run
    "document": (5, 10, 20),  # per long input handled one by one
    "item": (2, 7, 14),  # per short input handled one by one
    "light": (0.5, 1.25, 2.5),  # per tiny input handled one by one
}
_STEPS_PER_AGENT = 4
_WORDS_PER_PAGE = 250
_WORDS_PER_SLIDE = 100
_LINES_PER_PAGE = 50
_RESULTS_PER_PAGE = 25
_ROWS_PER_QUERY = 100_000
_CODE_PROJECT_CHANGES = 5
_MAX_SOURCES = 50
_MAX_ITEMS = 5000
_DATA_SCALE = 1000
_ROWS_PER_LIGHT_ITEM = 100
_UNCOUNTED_CRAWL = 20  # pages of a site crawled when nobody says how many


@dataclass(frozen=True)
class _Request:
    """What the reader found in a request, shared by the factor readers."""

    ask: str
    clauses: list[str]
    writing: set[str]  # clauses whose work is writing
    counted: list[Quantity]
    per_item: bool  # something is done to each item ("summarise each", "reply to them")
    mechanical: bool  # the items are only moved, converted or labelled, never read through


def analyse(message: str) -> list[Factor]:
    """The factors found in ``message`` (deterministic, no model call)."""
    ask = without_code_specs(ask_of(normalise(message)))
    if words.KNOWLEDGE_QUESTION.search(ask):
        return [_factor("reply", 1)]  # "how do I ...": an answer, not the work itself
    clauses = clauses_of(ask)
    verbs = governing_verbs(clauses)
    per_item = bool(words.PER_ITEM_VERBS.search(ask))
    request = _Request(
        ask=ask,
        clauses=clauses,
        writing={clause for clause, verb in verbs.items() if verb in words.WRITING_VERBS},
        counted=_how_handled(_largest_per_noun(quantities(clauses)), verbs, per_item),
        per_item=per_item,
        mechanical=bool(words.MECHANICAL_VERBS.search(ask)) and not words.READING_VERBS.search(ask),
    )
    factors = [
        *_research(request),
        *_analysis(request),
        *_handled_one_by_one(request),
        *_reading_and_writing(request),
        *_tools_and_systems(request),
        *_code(request),
        *_files(request),
    ]
    if len(clauses) > 1:
        factors.append(_factor("coordination", math.ceil(len(clauses) / _STEPS_PER_AGENT)))
    return factors or [_factor("reply", 1)]


def _how_handled(counted: list[Quantity], verbs: dict[str, str], per_item: bool) -> list[Quantity]:
    """Things only fetched ("scrape the 20 newest posts") are read off a listing; thousands of things nothing
    is done to one by one ("a chart from 1,200 survey responses") are data."""
    handled = []
    for quantity in counted:
        if quantity.unit in {"item", "light", "document"} and not per_item:
            if verbs.get(quantity.clause) in words.RETRIEVAL_VERBS:
                quantity = replace(quantity, unit="listed")
            elif quantity.count >= _DATA_SCALE:
                quantity = replace(quantity, unit="row")
        elif quantity.unit == "row" and per_item:
            # "standardise 120,000 address records": every row is worked on, a light item per hundred
            quantity = replace(quantity, unit="light", count=max(1, quantity.count // _ROWS_PER_LIGHT_ITEM))
        handled.append(quantity)
    return handled


def _factor(name: str, count: float, unit: str | None = None) -> Factor:
    low, typical, high = UNIT_SECONDS[unit or name]
    return Factor(
        name=name,
        count=max(1, round(count)) if count > 0 else 0,
        low=round(low * count, 1),
        high=round(high * count, 1),
        seconds=round(typical * count, 1),
    )


def _sum(name: str, parts: Iterable[Factor]) -> list[Factor]:
    """One factor made of several parts (items of different weights, analyses of two depths)."""
    parts = [part for part in parts if part.count > 0]
    if not parts:
        return []
    return [
        Factor(
            name=name,
            count=sum(part.count for part in parts),
            low=round(sum(part.low for part in parts), 1),
            high=round(sum(part.high for part in parts), 1),
            seconds=round(sum(part.seconds for part in parts), 1),
        )
    ]


def _largest_per_noun(found: list[Quantity]) -> list[Quantity]:
    """A noun counted twice ("12 contracts ... each of the 12") counts once, with its largest count."""
    largest: dict[tuple[str, str], Quantity] = {}
    for quantity in found:
        key = (words.singular(quantity.noun), quantity.unit)
        if key not in largest or quantity.count > largest[key].count:
            largest[key] = quantity
    return list(largest.values())


def _research(request: _Request) -> list[Factor]:
    ask = request.ask
    sources = [
        quantity.count
        for quantity in request.counted
        if quantity.unit == "source"
        and not (quantity.clause in request.writing and quantity.noun in words.WRITTEN_WORDS)
        and (not quantity.weak or words.RESEARCH_CONTEXT.search(quantity.clause))  # "for a startup" is no source
    ]
    if sources:
        return [_factor("research", min(max(sources), _MAX_SOURCES))]
    named = enumerated(ask)  # "compare Dyson, Shark and Miele": one source each
    if named >= 2 and (words.RESEARCH_VERBS.search(ask) or words.COMPARING.search(ask)):
        return [_factor("research", min(named, _MAX_SOURCES))]
    if words.RESEARCH_VERBS.search(ask):
        return [_factor("research", 5)]  # seed: "complex research (5+ sources)"
    return []


def _analysis(request: _Request) -> list[Factor]:
    deep = {match.group(1) for match in words.DEEP_ANALYSIS_WORDS.finditer(request.ask)}
    light = {match.group(1) for match in words.ANALYSIS_WORDS.finditer(request.ask)}
    return _sum(
        "analysis",
        [_factor("analysis", min(len(deep), 3), "deep_analysis"), _factor("analysis", min(len(light), 3))]
        if deep or light
        else [],
    )


def _handled_one_by_one(request: _Request) -> list[Factor]:
    parts = []
    for quantity in request.counted:
        unit = quantity.unit
        if quantity.weak or unit not in {"document", "item", "light", "listed", "page"}:
            continue
        if quantity.clause in request.writing and words.WRITTEN_PIECES.fullmatch(quantity.noun):
            continue  # pieces written ("12 blog posts") are priced by their words
        if unit == "listed":
            if not request.per_item:
                continue  # read off a listing: a page of results per tool run (below)
            unit = "light"
        if unit == "page":
            if quantity.clause in request.writing or not words.WEB_HINTS.search(request.ask):
                continue  # pages written or read (below)
            unit = "item"  # web pages, fetched one by one
        if request.mechanical:
            unit = "light"  # "rename the 30 PDFs", "tag these 12 recipes": nothing is read through
        if quantity.clause in request.writing and words.singular(quantity.noun) in words.PEOPLE:
            unit = "light"  # "a short welcome for each of the 20 members": a few lines each
        parts.append(_factor("batch", min(quantity.count, _MAX_ITEMS), unit))
    return _sum("batch", parts)


def _reading_and_writing(request: _Request) -> list[Factor]:
    ask, counted, writing = request.ask, request.counted, request.writing
    pages = 0.0
    written = 0.0
    # pages stamped or converted are not read; web pages are fetched (above)
    skip_pages = request.mechanical or bool(words.WEB_HINTS.search(ask))
    for quantity in counted:
        if quantity.unit == "page" and quantity.clause in writing:
            written += quantity.count * _WORDS_PER_PAGE
        elif quantity.unit == "page" and not skip_pages:
            pages += quantity.count
        elif quantity.unit == "line":
            pages += quantity.count / _LINES_PER_PAGE
        elif quantity.unit == "slide" and quantity.clause in writing:
            written += quantity.count * _WORDS_PER_SLIDE
        elif quantity.unit == "slide":
            pages += quantity.count / 2  # slides read: about half a page each
    pieces, copies = _written_pieces(counted, writing, code=bool(code_words.CODE_CONTEXT.search(ask)))
    said = [quantity.count for quantity in counted if quantity.unit == "word"]
    # Words said beat the usual length: "a 500-word post", "12 posts, each around 1,200 words".
    each = copies if re.search(r"\beach\b", ask) else 1
    written = max(written, max(said) * each if said else pieces)
    factors = []
    if pages >= 1:
        factors.append(_factor("reading", pages))
    if written >= 200:
        factors.append(_factor("writing", written / 100))
    return factors


def _written_pieces(counted: list[Quantity], writing: set[str], *, code: bool) -> tuple[float, int]:
    """Words of the pieces a writing verb asks for, by their usual length ("12 blog posts": 12 x 800), and
    how many pieces. In one clause the longest piece counts ("copy for a landing page" is one piece)."""
    total = 0.0
    pieces = 0
    for clause in writing:
        longest, copies = 0.0, 0
        for match in words.WRITTEN_PIECES.finditer(clause):
            piece = match.group(1)
            if code and piece == "script":
                continue  # "write a Python script" is code, not a podcast script
            counts = [q.count for q in counted if q.clause == clause and words.singular(q.noun) in piece.split()]
            size = words.WRITTEN_WORDS[piece] * max(counts or [1])
            if size > longest:
                longest, copies = size, max(counts or [1])
        total += longest
        pieces += copies
    return total, max(pieces, 1)


def _tools_and_systems(request: _Request) -> list[Factor]:
    ask = request.ask
    runs = float(min(len({match.group(1) for match in words.TOOL_WORDS.finditer(ask)}), 5))
    for quantity in request.counted:
        if quantity.unit == "listed" and not request.per_item:
            runs += math.ceil(quantity.count / _RESULTS_PER_PAGE) - 1
        elif quantity.unit == "row":
            runs += min(20, quantity.count // _ROWS_PER_QUERY)
    if re.search(r"\bcrawl\b", ask) and not any(q.unit in {"page", "item"} for q in request.counted):
        runs += _UNCOUNTED_CRAWL  # "crawl our docs": a site's worth of pages
    systems = {match.group(1) for match in words.EXTERNAL_SYSTEMS.finditer(ask)}
    factors = [_factor("tool", runs)] if runs >= 1 else []
    if systems:
        factors.append(_factor("external_api", min(len(systems), 6)))
    return factors


def _code(request: _Request) -> list[Factor]:
    ask, clauses = request.ask, request.clauses
    if not code_words.CODE_CONTEXT.search(ask):
        # "fix the broken formulas in this workbook" is no engineering change; "migrate our boards" is
        moves = {match.group(1) for match in code_words.DATA_PROJECTS.finditer(ask)}
        return [_factor("code", _CODE_PROJECT_CHANGES * min(len(moves), 2))] if moves else []
    projects = {match.group(1) for match in code_words.CODE_PROJECTS.finditer(ask)}
    projects |= {match.group(1) for match in code_words.DATA_PROJECTS.finditer(ask)}
    # "profile the endpoint, find the bottleneck and make it faster": each step of code work is a change
    changes = sum(
        1
        for clause in clauses
        if (clause.split()[0] in code_words.CODE_VERBS or code_words.CODE_CHANGES.search(clause))
        and not code_words.CODE_PROJECTS.search(clause)  # a project's own step is in the project
    )
    # "search with Elasticsearch: indexing job, query API, relevance tuning and tests": a change per part
    changes = max(changes, enumerated(ask, after_colon=True))
    count = changes + _CODE_PROJECT_CHANGES * min(len(projects), 2)
    return [_factor("code", count)] if count else []


def _files(request: _Request) -> list[Factor]:
    ask = request.ask
    nouns = {match.group(1) for match in words.FILE_OUTPUTS.finditer(ask)}
    charts = sum(quantity.count for quantity in request.counted if quantity.unit == "chart" and not quantity.weak)
    count = min(len(nouns), 5) + min(charts, 20)
    if not charts and any(word in ask for word in (" chart", " plot", " graph", "visuali")):
        count += 1
    return [_factor("file", count)] if count else []
