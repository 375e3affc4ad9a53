"""The runtime's webhook delivery parts (a mixin of ``runtime.Runtime``): the sender and its thread pool."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from asyncagents.runtime_parts import RuntimeParts

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from asyncagents.data.notice_topic import SnsNoticeTopic
    from asyncagents.domain.telemetry import Telemetry
    from asyncagents.domain.webhooks.sender import WebhookSender


class Delivering(RuntimeParts):
    if TYPE_CHECKING:

        @property
        def telemetry(self) -> Telemetry: ...  # Observing's

    @cached_property
    def delivery_pool(self) -> ThreadPoolExecutor:
        """Threads for delivering a batch at once: ten deliveries take one endpoint latency, not ten."""
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(max_workers=10, thread_name_prefix="webhook")

    def notice_topic(self) -> SnsNoticeTopic | None:
        """Where e-mailed notices go (``notifications.email``: the template's topic), if the stack has one."""
        if not self.settings.notice_topic_arn:
            return None
        import boto3

        from asyncagents.data.notice_topic import SnsNoticeTopic

        return SnsNoticeTopic(boto3.client("sns", region_name=self.settings.aws_region), self.settings.notice_topic_arn)

    @cached_property
    def webhook_sender(self) -> WebhookSender:
        """The sender; each delivery's outcome is measured (``domain.telemetry.webhook_outcome``)."""
        from asyncagents.data.http_transport import HttpxTransport
        from asyncagents.data.sent_notices import SentNoticeMarks
        from asyncagents.data.signing_secrets import SigningSecrets
        from asyncagents.domain.webhooks.delivery import WebhookDispatcher
        from asyncagents.domain.webhooks.sender import WebhookSender

        secrets = SigningSecrets(self.secretsmanager, self.settings.require("webhook_secret_arn"))
        dispatcher = WebhookDispatcher(
            self.request_records,
            HttpxTransport(),
            secrets,
            self.formation,
            artifact_url=self.artifact_url(),
            stored_text=self.stored_text(),
            key_secrets=self.key_service.webhook_secret_of,
            notice_topic=self.notice_topic(),
            sent_notices=SentNoticeMarks(self.dynamodb, self.settings.table_name),
        )
        return WebhookSender(dispatcher, self.webhook_queue, telemetry=self.telemetry)
