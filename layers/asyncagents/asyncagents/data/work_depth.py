"""The work waiting now: requests not finished (the table's Unfinished index) and webhook events (the queues)."""

from __future__ import annotations

from typing import Any

from asyncagents.data.webhook_queue import WebhookQueue


class WorkDepth:
    def __init__(self, dynamodb: Any, table: str, webhooks: WebhookQueue) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._webhooks = webhooks

    def unfinished_requests(self) -> int:
        from asyncagents.data.request_index import count_unfinished

        return count_unfinished(self._dynamodb, self._table)

    def webhook_backlog(self) -> tuple[int, int]:
        return self._webhooks.backlog()

    def webhook_dead_letters(self) -> int:
        return self._webhooks.count_dead_letters()
