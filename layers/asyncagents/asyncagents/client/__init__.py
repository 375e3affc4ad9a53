"""The asyncagents Python SDK: submit requests, follow their progress, answer their questions, fire triggers
and manage scheduled jobs; ``webhooks`` checks and reads the webhooks the service sends.

    from asyncagents.client import Client

    with Client("https://abc123.execute-api.eu-west-1.amazonaws.com", client_key="fmc_...") as client:
        accepted = client.chat("Research AI trends", async_=True, user_id="user_123")
        for event in client.events(accepted.request_id, user_id="user_123"):
            print(event.progress, event.message)
        print(client.get_request(accepted.request_id, user_id="user_123").result.text)

``AsyncClient`` is the same for asyncio. Errors are typed (``NotFoundError``, ``ConflictError``, ...), each with
the server's ``code``, ``message`` and ``details``.
"""

from asyncagents import webhooks
from asyncagents.client._async import AsyncClient, AsyncPendingRequest
from asyncagents.client._config import ConfigurationError, Settings, base_url, config_path, resolve
from asyncagents.client._errors import (
    ApiError,
    AsyncAgentsError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectionFailed,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    RequestFailed,
    ServerError,
    ServiceUnavailableError,
    UnprocessableError,
    WaitTimeout,
)
from asyncagents.client._models import (
    Accepted,
    ErrorInfo,
    EventPage,
    Job,
    ProgressEvent,
    Request,
    RequestPage,
    Result,
    Trigger,
)
from asyncagents.client._muxi import FormationClient
from asyncagents.client._sync import Client, PendingRequest

__all__ = [
    "Accepted",
    "ApiError",
    "AsyncAgentsError",
    "AsyncClient",
    "AsyncPendingRequest",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "ConnectionFailed",
    "ErrorInfo",
    "EventPage",
    "FormationClient",
    "Job",
    "NotFoundError",
    "PayloadTooLargeError",
    "PendingRequest",
    "PermissionDeniedError",
    "ProgressEvent",
    "RateLimitedError",
    "Request",
    "RequestFailed",
    "RequestPage",
    "Result",
    "ServerError",
    "ServiceUnavailableError",
    "Settings",
    "Trigger",
    "UnprocessableError",
    "WaitTimeout",
    "base_url",
    "config_path",
    "resolve",
    "webhooks",
]
