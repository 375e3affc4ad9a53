"""Claims on notices on moto's DynamoDB: of the deliveries of one notice, one sends it; one that could not is given
back; a claim abandoned (its sender stopped) is taken over once it lapses; a mark from before claims is a sent one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from asyncagents.data import sent_notices
from asyncagents.data.sent_notices import SentNoticeMarks
from tests.integration.requests_table import requests_table

pytestmark = pytest.mark.integration

TABLE = "sent-notices"


@pytest.fixture
def marks(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, SentNoticeMarks, list[float]]]:
    now = [1_800_000_000.0]
    monkeypatch.setattr(sent_notices.time, "time", lambda: now[0])
    with requests_table(TABLE) as (client, _):
        yield client, SentNoticeMarks(client, TABLE), now


def test_one_delivery_of_a_notice_sends_it_and_one_that_could_not_gives_it_back(marks):
    _, notices, _ = marks
    assert notices.claim("d-1") is None
    assert notices.claim("d-1") == "sending"  # another delivery of it, meanwhile
    notices.release("d-1")  # Slack refused: retried later
    assert notices.claim("d-1") is None
    notices.mark_sent("d-1")
    assert notices.claim("d-1") == "sent"
    notices.release("d-1")  # a release after it was sent changes nothing
    assert notices.claim("d-1") == "sent"
    assert notices.claim("d-2") is None  # another notice


def test_an_abandoned_claim_is_taken_over_once_it_lapses_and_an_older_mark_is_a_sent_notice(marks):
    client, notices, now = marks
    assert notices.claim("d-1") is None  # its sender is then stopped before it marks or releases anything
    now[0] += 299
    assert notices.claim("d-1") == "sending"
    now[0] += 2
    assert notices.claim("d-1") is None
    # A notice marked by the release before claims (no state): sent
    client.put_item(TableName=TABLE, Item={"pk": {"S": "NOTICE#d-old"}, "sk": {"S": "NOTICE"}, "ttl": {"N": "1"}})
    assert notices.claim("d-old") == "sent"
