"""The estimator's learned text model: the shipped weights, how they predict, and how they meet the factor table."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from asyncagents.domain.estimator import Estimator
from asyncagents.domain.workload import analyse
from asyncagents.domain.workload.text_model import WEIGHTS, TextModel, numeric_features, shipped, terms

from .fakes import InMemoryStore

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def trainer():
    sys.path.insert(0, str(BENCH))
    try:
        import estimator_train

        yield estimator_train
    finally:
        sys.path.remove(str(BENCH))


def test_the_weights_were_trained_on_the_development_sets_and_factor_table_as_they_are(trainer):
    # Given the shipped weights' record of what they were trained on
    recorded = json.loads(WEIGHTS.read_text())["trained_on"]
    # When the training files and the factor table's estimates of them are fingerprinted now
    current = trainer.fingerprint(trainer.training_cases())
    # Then they are the same: a change to a set or to the rules needs `make train-estimator` (and a new measure)
    assert recorded == current
    assert not [name for name in recorded if "heldout" in name]  # the held-out sets are never trained on


def test_the_model_predicts_from_tf_idf_terms_and_the_four_numbers():
    # Given a model with two terms, an intercept and a coefficient for the table's log estimate only
    model = TextModel(
        {
            "terms": {"crawl": [2.0, 1.5], "the site": [3.0, -0.5]},
            "numeric": [1.0, 0, 0, 0],
            "intercept": 0.25,
            "blend": 1.0,
        }
    )
    # When it reads a message with both terms (and an unknown word), twice the first
    message = "Crawl crawl the site"
    assert terms(message) == ["crawl", "crawl", "the", "site", "crawl crawl", "crawl the", "the site"]
    crawl, site = (1 + math.log(2)) * 2.0, 1.0 * 3.0
    norm = math.hypot(crawl, site)
    expected = 0.25 + crawl / norm * 1.5 + site / norm * -0.5 + math.log(20)
    # Then its log estimate is the intercept, the L2-normalised sublinear TF-IDF terms and the numbers
    assert model.log_seconds(message, 20) == pytest.approx(expected)
    assert model.seconds(message, 20) == pytest.approx(math.exp(expected))


def _packed(typecode: str, values: list[float]) -> str:
    import base64
    from array import array

    packed = array(typecode, values)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def test_the_regression_is_blended_with_the_labels_of_the_nearest_training_messages():
    # Given a model whose regression says e^1 for anything, and four training messages: "crawl" alone (label 2), "crawl
    # site" twice (labels 4 and 6, with weights 0.6 "crawl" and 0.8 "site"), "site" alone (label 8); two neighbours
    model = TextModel(
        {
            # [idf, coefficient, where the term's postings start and end]
            "terms": {"crawl": [1.0, 0.0, 0, 3], "site": [1.0, 0.0, 3, 6]},
            "numeric": [0, 0, 0, 0],
            "intercept": 1.0,
            "blend": 1.0,
            "neighbours": {
                "count": 2,
                "share": 0.5,
                "log_seconds": [2.0, 4.0, 6.0, 8.0],
                "indexes": _packed("H", [0, 1, 2, 1, 2, 3]),
                "weights": _packed("f", [1.0, 0.6, 0.6, 0.8, 0.8, 1.0]),
            },
        }
    )
    # When it reads "site": likeness 0.8 to messages 1 and 2 and 1.0 to message 3; the two nearest are 3, then 1
    # (between equals, the earlier message)
    nearest = (1.0 * 8.0 + 0.8 * 4.0) / 1.8
    assert model.log_seconds("site", 1.0) == pytest.approx(0.5 * 1.0 + 0.5 * nearest, rel=1e-6)
    # And a message sharing no term with any training message is the regression's alone
    assert model.log_seconds("nothing known", 1.0) == pytest.approx(1.0)


def test_the_models_own_estimate_is_held_to_a_day_whatever_its_weights():
    runaway = TextModel({"terms": {}, "numeric": [0, 0, 0, 0], "intercept": 5_000.0, "blend": 1.0})
    assert runaway.seconds("anything", 2.0) == pytest.approx(86_400)


def test_the_numbers_it_reads():
    assert numeric_features("Resize 1,200 photos, then 30 more", 40.0) == pytest.approx(
        [math.log(40), math.log1p(1200), math.log(6), 2.0]  # the thousands separator is a comma too
    )
    assert numeric_features("", 0.0) == [0.0, 0.0, 0.0, 0.0]


def test_the_model_never_lowers_the_factor_tables_estimate():
    # Given a model that thinks everything takes a second
    model = TextModel({"terms": {}, "numeric": [0, 0, 0, 0], "intercept": 0.0, "blend": 0.7})
    # Then the estimate is the table's own
    assert model.seconds("Research 3 competitors, compare features, create report", 60.0) == 60.0
    # And the shipped model keeps the seed's worked example at the seed's 60 s
    estimate = Estimator(InMemoryStore()).estimate("f", "Research 3 competitors, compare features, create report")
    assert (estimate.seconds, estimate.factors_seconds, estimate.analytic_seconds) == (60, 60, 60)


def test_work_the_factor_table_misses_is_estimated_long():
    # Given requests whose words the factor table does not know (it gives each the seconds of a plain question)
    messages = [
        "convert all 1200 .docx files in the archive to PDF and index them",
        "Write end-to-end Playwright tests covering signup, login, checkout and password reset for the web app",
    ]
    estimator = Estimator(InMemoryStore())
    for message in messages:
        table = sum(f.seconds for f in analyse(message))
        estimate = estimator.estimate("f", message)
        # Then the text model's estimate is past the lower seed threshold (30 s), and the range moves with it
        assert table < 30
        assert estimate.seconds >= 30, message
        assert estimate.factors_seconds == round(table, 1)
        assert estimate.low <= estimate.seconds <= estimate.high


def test_the_shipped_weights_load_once():
    assert shipped() is shipped()
    assert 0 < shipped().blend <= 1


def test_the_shipped_model_reads_messages_as_scikit_learn_did_when_it_was_trained():
    # Given the predictions scikit-learn made when training, recorded with the weights (development messages and
    # odd ones: empty, punctuation, non-Latin scripts, emoji, numbers with separators, repeated words)
    checks = json.loads(WEIGHTS.read_text())["checks"]
    assert len(checks) >= 20
    for message, table, expected in checks:
        # Then the factor table reads each as it did then, and the model predicts what scikit-learn did
        assert sum(f.seconds for f in analyse(message)) == pytest.approx(table), message
        assert shipped().log_seconds(message, table) == pytest.approx(expected, abs=1e-3), message


@pytest.mark.parametrize(
    "message",
    [
        "Summarise this: " + "lorem ipsum dolor sit amet " * 200,
        "x " * 16_384,
        "ab" + "9" * 400,
        "process " + "9" * 320 + " files",
        "," * 32_000,
        "1," * 16_000,
        "write 999999999 blog posts, each around 999999999 words",
    ],
)
def test_hostile_and_pasted_texts_are_not_extrapolated(message):
    # Given a message far outside what the model was trained on (a pasted text, a 400-digit number)
    table = sum(f.seconds for f in analyse(message))
    estimate = Estimator(InMemoryStore()).estimate("f", message)
    # Then the estimate is finite, at least the table's (up to a month, the longest estimate made)
    assert math.isfinite(estimate.seconds) and estimate.seconds >= min(table, 30 * 86_400)
    assert estimate.low <= estimate.seconds <= estimate.high <= 30 * 86_400


def test_a_pasted_text_is_estimated_about_as_a_message_of_the_longest_trained_length():
    # Given the same ask with 50 words of pasted text, and with 1,000 (training messages had at most 80 words)
    estimator = Estimator(InMemoryStore())
    short = estimator.estimate("f", "Summarise this: " + "lorem ipsum dolor sit amet " * 10)
    long = estimator.estimate("f", "Summarise this: " + "lorem ipsum dolor sit amet " * 200)
    # Then the word count is held within its training range: the long one is not extrapolated to minutes
    assert short.seconds <= long.seconds <= 1.5 * short.seconds
    assert estimator.estimate("f", "x " * 16_384).seconds < 30
