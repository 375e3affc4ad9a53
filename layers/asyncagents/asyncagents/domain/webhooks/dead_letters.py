"""Webhooks that could not be delivered: what operators see of them, and how they send them again."""

from __future__ import annotations

from typing import Any

from asyncagents.domain.ports import WebhookQueue


class DeadLetters:
    def __init__(self, queue: WebhookQueue) -> None:
        self._queue = queue

    def peek(self, limit: int = 10) -> dict[str, Any]:
        """How many there are, and the first ``limit`` of them (they stay dead-lettered)."""
        return {"count": self._queue.count_dead_letters(), "dead_letters": self._queue.list_dead_letters(limit)}

    def redrive(self) -> dict[str, Any]:
        """Move them back to the webhook queue: each is delivered again from its stored event."""
        return self._queue.redrive()
