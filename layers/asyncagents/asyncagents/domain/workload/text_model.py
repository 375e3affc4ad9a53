"""The learned text model: a correction of the factor table's sum, from the request's words.

The factor table (``factors.analyse``) only knows the words it was written for; a request phrased in other words
("bisect the commits", "a 30-slide deck") gets the few seconds of a plain question. The text model is a ridge
regression of the log of a person's estimate on the message's words and word pairs (TF-IDF) and four numbers
(the table's log estimate, the largest number in the text, the number of words, the number of commas), trained
offline on the labelled development sets (``bench/estimator_train.py``, scikit-learn) and shipped as weights
(``text_model.json``); predicting is a dictionary walk in plain Python. The estimate is the geometric blend
``exp(blend * model + (1 - blend) * log(table))`` when that is more than the table's, else the table's: the model
finds work the table does not see, and never talks the table's own breakdown down (the seed's worked example stays
3 * 10 + 15 + 10 + 5 = 60 s). Chosen by leave-one-set-out cross-validation (``bench/estimator_train.py``): as
accurate as letting the model lower the table, and it keeps the seeds' own examples; the shipped ``blend`` is 1.0
(the model alone, which reads the table's estimate as one of its numbers).
"""

from __future__ import annotations

import json
import math
import re
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

    def log_seconds(self, message: str, table_seconds: float) -> float:
        """The model's own estimate (log seconds)."""
        counts = Counter(term for term in terms(message) if term in self._terms)
        # Sublinear TF times IDF, L2-normalised: what the vectorizer did to the training messages.
        weighted = {term: (1.0 + math.log(count)) * self._terms[term][0] for term, count in counts.items()}
        norm = math.sqrt(sum(value * value for value in weighted.values())) or 1.0
        words = sum(value / norm * self._terms[term][1] for term, value in weighted.items())
        features = numeric_features(message, table_seconds)
        held = [min(max(x, low), high) for x, (low, high) in zip(features, self._ranges, strict=True)]
        numbers = sum(c * x for c, x in zip(self._numeric, held, strict=True))
        return self._intercept + words + numbers

    def seconds(self, message: str, table_seconds: float) -> float:
        """The estimate: the model and the factor table blended (geometrically), never less than the table's."""
        model = min(self.log_seconds(message, table_seconds), _MOST_LOG_SECONDS)
        blended = math.exp(self.blend * model + (1.0 - self.blend) * math.log(max(table_seconds, 1.0)))
        return max(table_seconds, blended)


@cache
def shipped() -> TextModel:
    """The weights shipped with the package (read once per container, on the first estimate)."""
    return TextModel(json.loads(WEIGHTS.read_text()))
