"""What auto mode learned, on moto's DynamoDB: kept per formation and kind, listed in one query, forgotten in
batches, and a formation's forgetting leaves another's alone."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from asyncagents.data.duration_history import DurationHistory
from asyncagents.domain.estimator import Estimator, current_analysis
from asyncagents.local.stack import create_table
from asyncagents.local.template import read_stack

ANALYSIS = current_analysis()

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TABLE = "history-requests"


@pytest.fixture
def history():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE, read_stack(ROOT / "template.yaml").table_properties)
        yield DurationHistory(client, TABLE)


def test_what_was_learned_is_listed_and_forgotten_per_formation(history):
    # Given an estimator that learned from 30 kinds of requests (more than one delete batch) in one formation,
    # and from one kind in another
    estimator = Estimator(history, cache_seconds=60)
    for index in range(30):
        for _ in range(index % 3 + 1):
            estimator.record("f1", f"kind{index:02d}", analytic_seconds=60, actual_seconds=6, analysis=ANALYSIS)
    estimator.record("f2", "research", analytic_seconds=10, actual_seconds=40, analysis=ANALYSIS)
    question = "What is the capital of Peru?"
    kind = estimator.estimate("f1", question).kind
    for _ in range(5):
        estimator.record("f1", kind, analytic_seconds=60, actual_seconds=6, analysis=ANALYSIS)
    before = estimator.estimate("f1", question)  # read through the container's cache
    assert before.history_samples == 5 and before.seconds < before.analytic_seconds
    # When it is asked what it learned
    learned = estimator.learned("f1")
    # Then each kind shows its samples and the factor it now applies (the actual durations were a tenth)
    assert len(learned) == 31 and learned[0].kind == "kind00" and learned[2].samples == 3
    assert all(0 < kind.correction < 1 for kind in learned)
    # When f1 forgets
    assert estimator.forget("f1") == 31
    # Then nothing of f1 is left, f2's history is untouched, and estimates start from the analysis again
    assert estimator.learned("f1") == []
    assert [(k.kind, k.samples) for k in estimator.learned("f2")] == [("research", 1)]
    after = estimator.estimate("f1", question)  # the cache forgot too
    assert after.history_samples == 0 and after.seconds == after.analytic_seconds
