"""The ``notifications`` section of the formation: completion notices people read (seed 002: "always notify when
results are ready"), besides the signed webhook."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from asyncagents.formation_base import StrictModel

Ending = Literal["completed", "failed", "cancelled"]


def _completed_and_failed() -> list[Ending]:
    return ["completed", "failed"]


class Notifications(StrictModel):
    slack_webhook_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        max_length=2048,
        description="A Slack incoming webhook: a notice per request that ends (the webhooks' delivery guarantees, and "
        "their destination rules: http only where async.webhook_security allows it).",
    )
    email: str | None = Field(
        None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        max_length=254,
        description="An address the stack's notice topic (SNS) mails each notice to (confirmed once, by mail).",
    )
    on: list[Ending] = Field(default_factory=_completed_and_failed, description="Which ends are notified.")
    result_link: str | None = Field(
        None,
        pattern=r"^https://[^\s]*\{request_id\}[^\s]*$",
        max_length=2048,
        description="Where a person reads the result, with {request_id}: the notice links it.",
    )
