"""The webhook queue and its dead-letter queue (SQS)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from asyncagents.domain.webhooks.delivery import WebhookMessage

# SQS refuses to hide a message for more than 12 h counted from its receive, and the sender has worked on it for up to
# 15 minutes (a Lambda's longest run) by the time it asks: 12 h less those 15 minutes is always accepted.
LONGEST_DELAY_SECONDS = 43_200 - 900


class WebhookQueue:
    """Sends webhook events, delays their retries, dead-letters them with a reason, and redrives them."""

    def __init__(
        self, client: Any, queue_url: str, dead_letter_url: str | None = None, *, redrive_strategy: str = "move-task"
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._dead_letter_url = dead_letter_url
        self._redrive_strategy = redrive_strategy

    def send(self, messages: Iterable[WebhookMessage]) -> None:
        """Enqueue events, ten per call; raises if any entry was refused (the caller retries them all)."""
        pending = list(messages)
        for start in range(0, len(pending), 10):
            chunk = pending[start : start + 10]
            response = self._client.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "MessageBody": message.model_dump_json()} for i, message in enumerate(chunk)],
            )
            if response.get("Failed"):
                raise RuntimeError(f"SQS refused {len(response['Failed'])} webhook message(s): {response['Failed']}")

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Hide a received message for ``seconds`` (``LONGEST_DELAY_SECONDS`` at most): its next attempt is then."""
        self._client.change_message_visibility(
            QueueUrl=self._queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=min(seconds, LONGEST_DELAY_SECONDS),
        )

    def dead_letter(self, body: str, *, reason: str) -> None:
        self._client.send_message(
            QueueUrl=self._require_dead_letter_url(),
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"}},
        )

    def list_dead_letters(self, limit: int = 10) -> list[dict[str, Any]]:
        """Peek at dead-lettered events (they stay in the queue)."""
        response = self._client.receive_message(
            QueueUrl=self._require_dead_letter_url(),
            MaxNumberOfMessages=min(limit, 10),
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )
        letters = []
        for message in response.get("Messages", []):
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = {"raw": message["Body"]}
            reason = message.get("MessageAttributes", {}).get("reason", {}).get("StringValue")
            letters.append({"message_id": message["MessageId"], "reason": reason or body.get("reason"), **body})
        return letters

    def count_dead_letters(self) -> int:
        return sum(self._depth(self._require_dead_letter_url()))

    def backlog(self) -> tuple[int, int]:
        """Webhook events not yet delivered, and of those the ones out of sight: being delivered now or waiting for
        their retry (a retry's delay is the message's visibility timeout, so SQS counts it as not visible)."""
        waiting, delayed, out_of_sight = self._depth(self._queue_url, delayed=True)
        return waiting + delayed + out_of_sight, out_of_sight

    def _depth(self, queue_url: str, *, delayed: bool = False) -> list[int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"][: 1 + delayed]
        names.append("ApproximateNumberOfMessagesNotVisible")
        attributes = self._client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
        return [int(attributes.get(name, 0)) for name in names]

    def redrive(self) -> dict[str, Any]:
        """Move dead-lettered events back to the webhook queue.

        ``move-task`` is SQS StartMessageMoveTask (AWS). ``copy`` receives, re-sends and deletes each
        message itself: the local stack's equivalent, since moto lacks move tasks.
        """
        source = self._require_dead_letter_url()
        strategy = self._redrive_strategy
        if strategy == "move-task":
            arns = [self._arn(source), self._arn(self._queue_url)]
            task = self._client.start_message_move_task(SourceArn=arns[0], DestinationArn=arns[1])
            return {"strategy": strategy, "task_handle": task.get("TaskHandle")}
        moved = 0
        while True:
            response = self._client.receive_message(QueueUrl=source, MaxNumberOfMessages=10, VisibilityTimeout=30)
            messages = response.get("Messages", [])
            if not messages:
                return {"strategy": strategy, "moved": moved}
            for message in messages:
                body = json.loads(message["Body"])
                original = {key: body[key] for key in WebhookMessage.model_fields if key in body}
                self._client.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(original))
                self._client.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
                moved += 1

    def _arn(self, queue_url: str) -> str:
        attributes = self._client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _require_dead_letter_url(self) -> str:
        if not self._dead_letter_url:
            raise RuntimeError("no dead-letter queue configured (WEBHOOK_DLQ_URL)")
        return self._dead_letter_url
