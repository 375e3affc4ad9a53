"""The stack's notice topic (SNS): e-mailed completion notices are published to it, its subscriber gets each."""

from __future__ import annotations

from typing import Any


class SnsNoticeTopic:
    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, subject: str, message: str) -> None:
        # SNS subjects: printable ASCII, at most 100 characters, no line breaks.
        plain = "".join(c for c in subject if 32 <= ord(c) < 127)[:100] or "asyncagents"
        self._client.publish(TopicArn=self._topic_arn, Subject=plain, Message=message)
