"""Completion notices: which changes become one, and the message a person reads in Slack."""

from __future__ import annotations

import pytest

from asyncagents.config import parse_formation
from asyncagents.domain.errors import ConfigError
from asyncagents.domain.webhooks.notices import email_notice, notices_for, slack_body
from asyncagents.formation_notifications import Notifications

SLACK = "https://hooks.slack.example/services/T0/B0/x"


def image(status: str, **fields) -> dict:
    return {
        "request_key": "0" * 32,
        "request_id": "req_1",
        "status": status,
        "created_at": "2026-12-01T10:00:00Z",
        "ended_at": "2026-12-01T10:00:30Z",
        **fields,
    }


def test_a_request_that_ends_as_the_formation_says_is_one_notice_and_nothing_else_is():
    settings = Notifications(slack_webhook_url=SLACK, email="ops@example.com")
    slack, email = notices_for(image("processing"), image("completed"), settings)
    assert (slack.channel, slack.webhook_url) == ("slack", SLACK) and (email.channel, email.webhook_url) == (
        "email",
        None,
    )
    # never mistaken for the request's own webhook event, nor for each other
    assert slack.delivery_id.endswith("-slack") and email.delivery_id.endswith("-email")
    assert notices_for(image("processing"), image("cancelled"), settings) == []  # not in `on` by default
    assert notices_for(image("completed"), image("completed"), settings) == []  # no change of status
    assert notices_for(image("processing"), image("completed"), Notifications()) == []  # nowhere to send
    cancelled = Notifications(slack_webhook_url=SLACK, on=["cancelled"])
    assert [n.channel for n in notices_for(image("processing"), image("cancelled"), cancelled)] == ["slack"]


@pytest.mark.parametrize(("seconds", "said"), [(4.25, "4.2 s"), (125, "2 min 5 s"), (7260, "2 h 1 min")])
def test_the_message_says_what_finished_how_long_it_took_and_where_to_read_it(seconds, said):
    event = {
        "request_id": "req_1",
        "status": "completed",
        "processing_time": seconds,
        "response": [{"type": "text", "text": "x" * 400}],
    }
    lines = slack_body(event, "https://console.example/r/{request_id}")["text"].splitlines()
    assert lines[0] == f"Request req_1 completed in {said}"
    assert lines[1] == "> " + "x" * 300 + "…"
    assert lines[2] == "<https://console.example/r/req_1|Read the result>"
    failed = {"request_id": "req_2", "status": "failed", "error": {"type": "timeout", "message": "too slow"}}
    assert slack_body(failed, None) == {"text": "Request req_2 failed: timeout, too slow"}
    subject, text = email_notice(event, "https://console.example/r/{request_id}")
    assert subject == f"Request req_1 completed in {said}"
    assert text.endswith("Read the result: https://console.example/r/req_1")


def test_notification_settings_are_checked_with_their_reasons():
    with pytest.raises(ConfigError, match=r"notifications\.slack_webhook_url"):
        parse_formation({"notifications": {"slack_webhook_url": "ftp://nowhere"}})
    with pytest.raises(ConfigError, match=r"notifications\.result_link"):
        parse_formation({"notifications": {"result_link": "https://console.example/no-placeholder"}})


def test_notices_have_metrics_of_their_own_and_leave_the_webhooks_figures_alone():
    from asyncagents.domain.telemetry import webhook_outcome

    assert webhook_outcome("dead", "slack") == {"NoticesDead": (1, "Count")}
    assert webhook_outcome("delivered", "email") == {"NoticesSent": (1, "Count")}
    assert webhook_outcome("retry", "slack") == {}
    assert set(webhook_outcome("dead")) == {"WebhookAttempts", "WebhookDead"}
