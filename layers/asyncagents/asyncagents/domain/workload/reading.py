"""Reading a request: what it asks (not its preamble), its steps, and the quantities it names.

Everything here is deterministic string work on the normalised message (lower case, bounded length), so the
accept path stays fast and the same message always reads the same.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from asyncagents.domain.workload import code_words
from asyncagents.domain.workload import vocabulary as words

_MAX_ANALYSED_CHARS = 4000
_SENTENCES = re.compile(r"(?<=[.!?:])\s+")
_ACTION_AFTER_AND = (
    r"(?:create|write|draft|make|build|send|produce|generate|compare|analy[sz]e|summari[sz]e|email|post|add|"
    r"fix|run|label|tag|sync|assign|match|flag|find|list|check|extract|rank|explain|give|recommend|render)"
)
# Steps end at punctuation, at "then", at "and <verb>", and at bullets (" - item", "• item").
_CLAUSES = re.compile(rf"\s*(?:[;,.!?:](?=\s|$)|—|•|\s-\s|\band then\b|\bthen\b|\band\b(?=\s+{_ACTION_AFTER_AND}))\s*")
_TOKENS = re.compile(r"[$#]?~?\d[\d,.]*[km]?(?:-[a-z]+)?%?|[a-z][a-z0-9'\u2019/-]*|\.[a-z0-9]+|[^\s\w]")
_APPROXIMATELY = frozenset({"about", "around", "roughly", "approximately", "approx", "over", "nearly", "~"})


def normalise(message: str) -> str:
    """What the patterns read: lower case, demo directives removed, whitespace folded (some patterns are
    quadratic in a long run of it) and capped, so the accept path stays fast whatever a client sends."""
    text = re.sub(r"\s+", " ", re.sub(r"\[demo[^\]]*\]", " ", message.lower()))[:_MAX_ANALYSED_CHARS]
    if text.isascii():
        return text
    # "résumés" reads as "resumes": accents dropped, so the vocabulary needs one spelling
    return "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))


def ask_of(text: str) -> str:
    """The part of the message that asks for work. A closing question that stands on its own is the whole
    ask: what comes before it is context ("I'm writing a memo for all 300 staff ... what is the mileage
    rate?"), unless the question points back at it ("... which of them expire first?")."""
    sentences = [sentence for sentence in _SENTENCES.split(text.strip()) if sentence.strip(" .")]
    if len(sentences) > 1 and (sentences[-1].rstrip().endswith("?") or words.ASKING.search(sentences[-1])):
        last = sentences[-1]
        if not words.BACK_REFERENCES.search(last) and not _mentions_a_number(last, " ".join(sentences[:-1])):
            return last
    return text


def _mentions_a_number(question: str, context: str) -> bool:
    # "There are 12 contracts. Which ones expire this year?" - the question needs the context's count.
    return bool(re.search(r"\b(which ones|which of|how many of)\b", question)) and bool(re.search(r"\d", context))


def without_code_specs(text: str) -> str:
    """Drop what a piece of code to be written should do: "a one-liner that counts lines in all files" is one
    snippet, not work on all files."""
    return code_words.CODE_SPEC.sub(lambda match: match.group(0)[: match.start("spec") - match.start(0)], text)


def clauses_of(text: str) -> list[str]:
    """The steps a request reads as: its sentences and clauses, split on punctuation and "then"/"and <verb>"."""
    return [clause for clause in _CLAUSES.split(text) if clause and clause.strip(" .")]


_LISTED_NAMES = re.compile(
    r"(?:\b[\w.'&+-]+(?: [\w.'&+-]+){0,2}, ){1,12}[\w.'&+-]+(?: [\w.'&+-]+){0,2},? (?:and|or|&) [\w.'&+-]+"
)


def enumerated(ask: str, *, after_colon: bool = False) -> int:
    """How many things the longest list in the request names ("the US, UK, EU, Singapore and Japan": 5), or
    how many bullets it has; 0 if none. A list of steps ("segment them, find the drivers") is no list. With
    ``after_colon``, only a list that follows a colon counts ("search: indexing job, query API and tests")."""
    if after_colon:
        ask = ask.partition(":")[2]
    longest = 0
    for match in _LISTED_NAMES.finditer(ask):
        names = re.split(r",? (?:and|or|&) |, ", match.group(0))
        if not any(name.split()[0] in words.STEP_VERBS for name in names if name.split()):
            longest = max(longest, len(names))
    bullets = len(re.findall(r"(?:^|\s)(?:-|•|\*) \w", ask))
    return max(longest, bullets if bullets >= 2 else 0)


@dataclass(frozen=True)
class Quantity:
    """A counted noun: ``count`` units of ``noun`` (its class says what one costs), said in ``clause``."""

    count: int
    noun: str
    unit: str
    clause: str
    counted: bool = True  # False when the count is assumed ("every customer")
    weak: bool = False  # counted by an article only ("a blog post")


def tokens_of(clause: str) -> list[str]:
    """Words, numbers (with what is glued to them: "300-page", "~150") and punctuation; possessives folded."""
    return [re.sub("['\u2019]s$", "", token) for token in _TOKENS.findall(clause)]


def governing_verbs(clauses: list[str]) -> dict[str, str]:
    """The verb each clause's work is done by: its own first verb, or the one before it ("make a picture
    book: 16 pages of text" - the pages are made)."""
    verbs: dict[str, str] = {}
    current = ""
    for clause in clauses:
        own = next((word for word in clause.split()[:3] if word in words.STEP_VERBS), "")
        current = own or current
        verbs[clause] = current
    return verbs


def quantities(clauses: list[str]) -> list[Quantity]:
    """Every quantity the clauses name. Assumed ones ("all emails", "each of the refunds") only count when the
    request names no number of things handled one by one."""
    explicit: list[Quantity] = []
    assumed: list[Quantity] = []
    per_item = any(re.search(r"\b(each|every)\b", clause) for clause in clauses)
    for clause in clauses:
        tokens = tokens_of(clause)
        explicit += _counted(tokens, clause)
        assumed += _scoped(tokens, clause)
        if per_item:
            assumed += _uncounted_plurals(tokens, clause)
    one_by_one = {"source", "document", "item", "light", "listed", "page"}
    if any(not q.weak and q.unit in one_by_one and words.noun_class(q.noun) for q in explicit):
        return explicit
    return explicit + assumed


def _counted(tokens: list[str], clause: str) -> list[Quantity]:
    found = []
    for index, token in enumerate(tokens):
        count, suffix = _number(tokens, index)
        if count is None or (index > 0 and tokens[index - 1] in words.CURRENCY_SIGNS):
            continue  # "€1,200" is money
        if suffix:  # "300-page", "a 12-email sequence"; "30-minute" and "four-day" are measures
            if unit := words.noun_class(suffix):
                found.append(Quantity(count, suffix, unit, clause))
            continue
        noun = _head_noun(tokens, index + 1)
        if noun is not None and count > 1 and not words.is_plural(noun):
            noun = None  # "Node 20 app", "page 12 of the report": a name or a place, not a count
        noun = noun or _noun_before_brackets(tokens, index)
        if noun is not None:
            unit = words.noun_class(noun) or "light"
            if index > 0 and tokens[index - 1] == "top" and unit in {"document", "item", "light"}:
                unit = "listed"  # "the top 20 customers by revenue": one ranked list, not 20 customers
            found.append(Quantity(count, noun, unit, clause, weak=token in words.WEAK_NUMBERS))
    return found


def _uncounted_plurals(tokens: list[str], clause: str) -> list[Quantity]:
    """Things handled one by one but not counted ("match each of yesterday's refunds"): a typical collection."""
    found = []
    for token in tokens:
        unit = words.noun_class(token)
        if unit in {"document", "item", "light"} and words.singular(token) != token:
            found.append(Quantity(words.UNCOUNTED_COLLECTION, token, unit, clause, counted=False))
    return found


def _scoped(tokens: list[str], clause: str) -> list[Quantity]:
    found = []
    for index, token in enumerate(tokens):
        if token == "which":  # "which US states have ...": all of a known collection
            noun = _head_noun(tokens, index + 1, reach=3)
            if noun is not None and words.singular(noun) in words.KNOWN_COLLECTIONS:
                count = words.KNOWN_COLLECTIONS[words.singular(noun)]
                found.append(Quantity(count, noun, words.noun_class(noun) or "source", clause, counted=False))
            continue
        if token not in words.SCOPE_WORDS:
            continue
        if any(_number(tokens, ahead)[0] for ahead in range(index + 1, min(index + 4, len(tokens)))):
            continue  # "all 500 emails": the number counts; "send each a welcome email": one email each
        noun = _head_noun(tokens, index + 1, reach=5)
        if noun is not None:
            count = words.KNOWN_COLLECTIONS.get(words.singular(noun), words.UNCOUNTED_COLLECTION)
            unit = words.noun_class(noun) or ("light" if words.is_plural(noun) else "")
            found.append(Quantity(count, noun, unit, clause, counted=False))
    return found


def _number(tokens: list[str], index: int) -> tuple[int | None, str]:
    """The number a token says, and the noun glued to it ("300-page" → 300, "page"); None if it is none
    (a price, a percentage, an issue number, a year)."""
    # "$50k", "#482" and "15%" are read as one token each, and none of them is a number of things.
    value, _, suffix = tokens[index].lstrip("~").partition("-")
    if suffix in words.NUMBER_WORDS and value in words.NUMBER_WORDS:  # "twenty-two"
        return words.NUMBER_WORDS[value] + words.NUMBER_WORDS[suffix], ""
    if suffix in {"odd", "ish", "plus"}:  # "forty-odd", "20-ish"
        suffix = ""
    amount: float | None
    if value[:1].isdigit():
        amount = _digits(value)
        if amount is None or (1900 <= amount <= 2100 and "," not in value):
            return None, ""
    else:
        amount = words.NUMBER_WORDS.get(value)
        if amount is None:
            return None, ""
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        amount *= words.SCALES.get(following, 1)
    # "9" * 400 reads as a float's infinity (which int() refuses): a count that large is just "very many".
    return int(min(amount, MAX_COUNT)), suffix


# The most things a request can count: more adds nothing to a decision (and keeps the arithmetic finite).
MAX_COUNT = 10**9


def _digits(value: str) -> float | None:
    scale = {"k": 1000, "m": 1_000_000}.get(value[-1], 1)
    try:
        return float(value.rstrip("km").replace(",", "")) * scale
    except ValueError:
        return None


def _head_noun(tokens: list[str], start: int, reach: int = 4) -> str | None:
    """The noun a number counts: the last word of the phrase after it, if it is a noun the reader knows or an
    unknown plural ("40 recipes"), else the last known noun in it ("12 vendor contracts"). None for a
    measure ("3 years of sales")."""
    phrase: list[str] = []
    for token in tokens[start : start + reach]:
        if token in words.SCALES or (token == "of" and not phrase):
            continue
        if token in words.PHRASE_ENDS or not (token[:1].isalnum() or token[:1] == "."):
            break
        phrase.append(token)
    if not phrase or phrase[-1] in words.MEASURES:
        return None
    last = phrase[-1]
    if words.noun_class(last) or (words.is_plural(last) and last[:1].isalpha() and len(last) > 3):
        return last
    return next((token for token in reversed(phrase) if words.noun_class(token)), None)


def _noun_before_brackets(tokens: list[str], index: int) -> str | None:
    """``issues in the repo (~150)``, ``every listing (there are about 3,000)``: a bracketed number counts
    the noun a little before it: the one after "every", "all" or "each" if there is one, else a known one."""
    opening = index - 1
    while opening >= 0 and tokens[opening] in _APPROXIMATELY:
        opening -= 1
    if opening >= 1 and tokens[opening - 1 : opening + 1] in (["there", "are"], ["it", "has"]):
        opening -= 2
    after = tokens[index + 1 : index + 4]
    closed = after[:1] == [")"] or after == ["of", "them", ")"]  # "(~150)", "(twenty-two of them)"
    if opening < 0 or tokens[opening] != "(" or not closed:
        return None
    before = tokens[max(0, opening - 10) : opening]
    for position in range(len(before) - 1, -1, -1):
        if before[position] in words.SCOPE_WORDS and (noun := _head_noun(before, position + 1)):
            return noun
    return next((token for token in reversed(before[-8:]) if words.noun_class(token)), None)
