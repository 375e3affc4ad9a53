"""What the runtime's mixins (``runtime_observability``, ``runtime_webhooks``) use of ``runtime.Runtime``, declared
once for the type checker (nothing here exists at run time)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncagents.config import FormationConfig
    from asyncagents.data.request_records import RequestRecords
    from asyncagents.data.webhook_queue import WebhookQueue
    from asyncagents.domain.auth import KeyService
    from asyncagents.settings import FunctionSettings


class RuntimeParts:
    if TYPE_CHECKING:

        @property
        def settings(self) -> FunctionSettings: ...
        @property
        def formation(self) -> FormationConfig: ...
        @property
        def dynamodb(self) -> Any: ...
        @property
        def secretsmanager(self) -> Any: ...
        @property
        def request_records(self) -> RequestRecords: ...
        @property
        def webhook_queue(self) -> WebhookQueue: ...
        @property
        def key_service(self) -> KeyService: ...

        def artifact_url(self) -> Any: ...

        def stored_text(self) -> Any: ...
