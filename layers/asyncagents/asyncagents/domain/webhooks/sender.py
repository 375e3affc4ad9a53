"""The webhook sender's side of the queue: one received message in, delivered / delayed / dead-lettered out."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from asyncagents.domain.ports import WebhookQueue
from asyncagents.domain.telemetry import NO_TELEMETRY, Telemetry, webhook_outcome
from asyncagents.domain.webhooks.delivery import Outcome, WebhookDispatcher, WebhookMessage, dead_letter_body

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """Raised for a message that will be retried: the batch reports it as failed, so SQS keeps it."""


class WebhookSender:
    def __init__(
        self,
        dispatcher: WebhookDispatcher,
        queue: WebhookQueue,
        *,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._dispatcher = dispatcher
        self._queue = queue
        self._telemetry = telemetry

    def handle(
        self, body: str, *, attempt: int, receipt_handle: str, first_received_at: float | None = None
    ) -> Outcome:
        """Process one queue message (``attempt`` is SQS's receive count, ``first_received_at`` its first receive,
        epoch seconds). Raises ``RetryLater`` to keep it."""
        try:
            message = WebhookMessage.model_validate_json(body)
        except ValidationError as error:
            outcome = Outcome("dead", f"malformed webhook message: {error.errors()[0]['msg']}")
            self._queue.dead_letter(body, reason=outcome.reason)
            self._telemetry.emit(webhook_outcome(outcome.kind), metadata={"attempt": attempt})
            return outcome
        outcome = self._dispatcher.deliver(message, attempt, first_received_at=first_received_at)
        about = {"delivery_id": message.delivery_id, "attempt": attempt, "outcome": outcome.kind}
        self._telemetry.emit(webhook_outcome(outcome.kind, message.channel), metadata=about)
        if outcome.kind == "retry":
            self._queue.delay(receipt_handle, outcome.delay_seconds)
            raise RetryLater(f"{message.delivery_id}: {outcome.reason}; retry in {outcome.delay_seconds}s")
        if outcome.kind == "dead":
            logger.warning("webhook %s dead-lettered: %s", message.delivery_id, outcome.reason)
            self._queue.dead_letter(dead_letter_body(message, outcome, attempt), reason=outcome.reason)
        return outcome
