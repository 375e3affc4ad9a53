"""The learned text model: a correction of the factor table's sum, from the request's words.

The factor table (``factors.analyse``) only knows the words it was written for; a request phrased in other words
("bisect the commits", "a 30-slide deck") gets the few seconds of a plain question. The text model is a ridge
regression of the log of a person's estimate on the message's words and word pairs (TF-IDF) and four numbers
(the table's log estimate, the largest number in the text, the number of words, the number of commas), blended
half and half with the labels of the ten training messages nearest in words (the cosine of their TF-IDF vectors,
each label weighted by it), trained offline on the labelled development sets (``bench/estimator_train.py``,
scikit-learn) and shipped as weights (``text_model.json``: per term its IDF, coefficient and postings); predicting
is a dictionary walk in plain Python. The estimate is the geometric blend
``exp(blend * model + (1 - blend) * log(table))`` when that is more than the table's, else the table's: the model
finds work the table does not see, and never talks the table's own breakdown down (the seed's worked example stays
3 * 10 + 15 + 10 + 5 = 60 s). Chosen by leave-one-set-out cross-validation (``bench/estimator_train.py``): as
accurate as letting the model lower the table, and it keeps the seeds' own examples; the shipped ``blend`` is 1.0
(the model alone, which reads the table's estimate as one of its numbers).
"""

from __future__ import annotations

import base64
import heapq
import json
import math
import re
import sys
from array import array
from collections import Counter
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

WEIGHTS = Path(__file__).with_name("text_model.json")
# The tokens scikit-learn's TfidfVectorizer makes by default (words of two characters or more, lower-cased).
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_NUMBER = re.compile(r"\d[\d,]*")
# The model's own estimate is held to a day (whatever weights a retraining ships, exp() stays finite).
_MOST_LOG_SECONDS = math.log(86_400)


def numeric_features(message: str, table_seconds: float) -> list[float]:
    """The four numbers the model reads besides the words (the training script uses this very function)."""
    numbers = [float(digits) for digits in (n.replace(",", "") for n in _NUMBER.findall(message)) if digits.isdigit()]
    return [
        math.log(max(table_seconds, 1.0)),
        math.log1p(max(numbers) if numbers else 0.0),
        math.log(max(len(message.split()), 1)),
        float(message.count(",")),
    ]


def terms(message: str) -> list[str]:
    """Words and adjacent word pairs, as the vectorizer it was trained with makes them."""
    tokens = _TOKEN.findall(message.lower())
    return tokens + [f"{first} {second}" for first, second in pairwise(tokens)]


class TextModel:
    """Weights of the trained model: per term its IDF and coefficient, the numbers' coefficients, the
    intercept, and the blend with the factor table."""

    def __init__(self, weights: dict[str, Any]) -> None:
        self._terms: dict[str, list[float]] = weights["terms"]
        self._numeric: list[float] = weights["numeric"]
        # Each number is held within what the training messages had: a pasted 5,000-word text or a 400-digit
        # number is not extrapolated (the words' part is L2-normalised, hence bounded already).
        self._ranges: list[list[float]] = weights.get("numeric_range") or [[-math.inf, math.inf]] * len(self._numeric)
        self._intercept = float(weights["intercept"])
        self.blend = float(weights["blend"])
        # Which weights these are (the trainer's fingerprint of them): the estimator keeps history per analysis.
        self.analysis = str(weights.get("analysis") or "text-model")
        neighbours = weights.get("neighbours") or {}
        self._neighbour_count = int(neighbours.get("count", 0))
        self._neighbour_share = float(neighbours.get("share", 0.0))
        self._labels: list[float] = neighbours.get("log_seconds", [])
        # The training messages that have each term, and its TF-IDF weight in each: a term's entry ends with where
        # its postings start and end in these two arrays (packed little-endian by the trainer).
        self._indexes, self._weights = (
            _unpacked("H", neighbours.get("indexes", "")),
            _unpacked("f", neighbours.get("weights", "")),
        )

    def log_seconds(self, message: str, table_seconds: float) -> float:
        """The model's own estimate (log seconds): the regression's, blended with the labels of the training
        messages nearest in words when there are any."""
        counts = Counter(term for term in terms(message) if term in self._terms)
        # Sublinear TF times IDF, L2-normalised: what the vectorizer did to the training messages.
        weighted = {term: (1.0 + math.log(count)) * self._terms[term][0] for term, count in counts.items()}
        norm = math.sqrt(sum(value * value for value in weighted.values())) or 1.0
        vector = {term: value / norm for term, value in weighted.items()}
        words = sum(value * self._terms[term][1] for term, value in vector.items())
        features = numeric_features(message, table_seconds)
        held = [min(max(x, low), high) for x, (low, high) in zip(features, self._ranges, strict=True)]
        numbers = sum(c * x for c, x in zip(self._numeric, held, strict=True))
        regression = self._intercept + words + numbers
        nearest = self._nearest(vector)
        if nearest is None:
            return regression
        return (1.0 - self._neighbour_share) * regression + self._neighbour_share * nearest

    def _nearest(self, vector: dict[str, float]) -> float | None:
        """The labels of the ``count`` training messages most like this one (cosine of their TF-IDF vectors),
        averaged by likeness; None when no training message shares a term with it."""
        if not self._neighbour_count:
            return None
        likeness: dict[int, float] = {}
        for term, value in vector.items():
            start, end = int(self._terms[term][2]), int(self._terms[term][3])
            for document, weight in zip(self._indexes[start:end], self._weights[start:end], strict=True):
                likeness[document] = likeness.get(document, 0.0) + value * weight
        if not likeness:
            return None
        # The most alike first; between equals, the earlier training message (as the trainer ranks them).
        # Only messages sharing a term are in ``likeness`` (TF-IDF weights are positive: each has a likeness > 0).
        chosen = heapq.nsmallest(
            self._neighbour_count, likeness, key=lambda document: (-round(likeness[document], 9), document)
        )
        total = sum(likeness[document] for document in chosen)
        return sum(likeness[document] * self._labels[document] for document in chosen) / total

    def seconds(self, message: str, table_seconds: float) -> float:
        """The estimate: the model and the factor table blended (geometrically), never less than the table's."""
        model = min(self.log_seconds(message, table_seconds), _MOST_LOG_SECONDS)
        blended = math.exp(self.blend * model + (1.0 - self.blend) * math.log(max(table_seconds, 1.0)))
        return max(table_seconds, blended)


def _unpacked(typecode: str, encoded: str) -> array[Any]:
    values = array(typecode, base64.b64decode(encoded))
    if sys.byteorder != "little":
        values.byteswap()
    return values


@cache
def shipped() -> TextModel:
    """The weights shipped with the package (read once per container, on the first estimate)."""
    return TextModel(json.loads(WEIGHTS.read_text()))
