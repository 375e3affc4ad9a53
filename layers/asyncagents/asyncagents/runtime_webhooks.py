"""The runtime's webhook delivery parts (a mixin of ``runtime.Runtime``): the sender and its thread pool."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from asyncagents.config import FormationConfig
    from asyncagents.data.request_records import RequestRecords
    from asyncagents.data.webhook_queue import WebhookQueue
    from asyncagents.domain.auth import KeyService
    from asyncagents.domain.telemetry import Telemetry
    from asyncagents.domain.webhooks.sender import WebhookSender
    from asyncagents.settings import FunctionSettings


class Delivering:
    if TYPE_CHECKING:

        @property
        def settings(self) -> FunctionSettings: ...
        @property
        def formation(self) -> FormationConfig: ...
        @property
        def secretsmanager(self) -> Any: ...
        @property
        def request_records(self) -> RequestRecords: ...
        @property
        def webhook_queue(self) -> WebhookQueue: ...
        @property
        def key_service(self) -> KeyService: ...
        @property
        def telemetry(self) -> Telemetry: ...

        def artifact_url(self) -> Any: ...

        def stored_text(self) -> Any: ...

    @cached_property
    def delivery_pool(self) -> ThreadPoolExecutor:
        """Threads for delivering a batch at once: ten deliveries take one endpoint latency, not ten."""
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(max_workers=10, thread_name_prefix="webhook")

    @cached_property
    def webhook_sender(self) -> WebhookSender:
        """The sender; each delivery's outcome is measured (``domain.telemetry.webhook_outcome``)."""
        from asyncagents.data.http_transport import HttpxTransport
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
        )
        return WebhookSender(dispatcher, self.webhook_queue, telemetry=self.telemetry)
