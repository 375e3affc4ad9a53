"""Per-container wiring: settings read from the environment once, AWS clients created once.

Nothing here runs at import time; the first handler call builds what it needs and later calls reuse
it. ``reset()`` forgets everything (tests, and the local stack when it restarts).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from asyncagents.config import FormationConfig, load_formation
from asyncagents.domain.errors import ConfigError

if TYPE_CHECKING:
    from asyncagents.domain.auth import KeyService
    from asyncagents.domain.requests import RequestService
    from asyncagents.domain.workflow import WorkflowSteps


class FunctionSettings(BaseModel):
    """The environment every function reads. Set by the template (or by the local stack)."""

    table_name: str = Field(min_length=3)
    state_machine_arn: str | None = None
    formation_path: str = "/opt/formation.json"
    key_cache_seconds: float = Field(60.0, ge=0)
    aws_region: str | None = None
    webhook_queue_url: str | None = None
    webhook_dlq_url: str | None = None
    webhook_secret_arn: str | None = None
    dlq_redrive_strategy: str = Field("move-task", pattern="^(move-task|copy)$")
    artifacts_bucket: str | None = None


class Hooks:
    """Replaceable behaviour for hosts other than Lambda. The local stack runs every API call in one
    process and swaps ``sleep`` so that a sync request's wait lets other requests through."""

    sleep: Any = None


hooks = Hooks()


@functools.cache
def settings() -> FunctionSettings:
    env = {
        "table_name": os.environ.get("TABLE_NAME", ""),
        "state_machine_arn": os.environ.get("STATE_MACHINE_ARN") or None,
        "formation_path": os.environ.get("FORMATION_PATH", "/opt/formation.json"),
        "key_cache_seconds": os.environ.get("KEY_CACHE_SECONDS", "60"),
        "aws_region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        "webhook_queue_url": os.environ.get("WEBHOOK_QUEUE_URL") or None,
        "webhook_dlq_url": os.environ.get("WEBHOOK_DLQ_URL") or None,
        "webhook_secret_arn": os.environ.get("WEBHOOK_SECRET_ARN") or None,
        "dlq_redrive_strategy": os.environ.get("DLQ_REDRIVE_STRATEGY", "move-task"),
        "artifacts_bucket": os.environ.get("ARTIFACTS_BUCKET") or None,
    }
    try:
        return FunctionSettings.model_validate(env)
    except ValidationError as error:
        raise ConfigError(f"function environment: {error}") from None


@functools.cache
def formation() -> FormationConfig:
    return load_formation(settings().formation_path)


def _client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
    return boto3.client(service, region_name=settings().aws_region, config=config)  # type: ignore[call-overload]


@functools.cache
def dynamodb() -> Any:
    return _client("dynamodb")


@functools.cache
def stepfunctions() -> Any:
    return _client("stepfunctions")


@functools.cache
def sqs() -> Any:
    return _client("sqs")


@functools.cache
def secretsmanager() -> Any:
    return _client("secretsmanager")


@functools.cache
def artifact_store() -> Any:
    """The artifacts bucket, or ``None`` when the function has none configured."""
    bucket = settings().artifacts_bucket
    if not bucket:
        return None
    import boto3
    from botocore.config import Config

    from asyncagents.data.artifact_store import ArtifactStore

    client = boto3.client("s3", region_name=settings().aws_region, config=Config(signature_version="s3v4"))
    return ArtifactStore(client, bucket)


def stored_text() -> Any:
    """Key → a text that outgrew the table (read from the bucket), or ``None`` without a bucket."""
    store = artifact_store()
    return (lambda key: store.get(key).decode()) if store is not None else None


def artifact_url() -> Any:
    """Key → presigned URL, or ``None`` without a bucket."""
    store = artifact_store()
    return store.url if store is not None else None


@functools.cache
def webhook_queue() -> Any:
    from asyncagents.data.webhook_queue import WebhookQueue

    config = settings()
    if not config.webhook_queue_url:
        raise ConfigError("function environment: WEBHOOK_QUEUE_URL is not set")
    return WebhookQueue(sqs(), config.webhook_queue_url, config.webhook_dlq_url)


@functools.cache
def delivery_pool() -> Any:
    """Threads for delivering a batch at once: ten deliveries take one endpoint latency, not ten."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=10, thread_name_prefix="webhook")


@functools.cache
def webhook_sender(on_outcome: Any = None) -> Any:
    from asyncagents.data.http_transport import HttpxTransport
    from asyncagents.data.signing_secrets import SigningSecrets
    from asyncagents.domain.webhooks.delivery import WebhookDispatcher
    from asyncagents.domain.webhooks.sender import WebhookSender

    config = settings()
    if not config.webhook_secret_arn:
        raise ConfigError("function environment: WEBHOOK_SECRET_ARN is not set")
    secrets = SigningSecrets(secretsmanager(), config.webhook_secret_arn)
    dispatcher = WebhookDispatcher(
        requests_table(),
        HttpxTransport(),
        secrets,
        formation(),
        artifact_url=artifact_url(),
        stored_text=stored_text(),
    )
    if on_outcome is None:
        return WebhookSender(dispatcher, webhook_queue())
    return WebhookSender(dispatcher, webhook_queue(), on_outcome=on_outcome)


@functools.cache
def requests_table() -> Any:
    from asyncagents.data.requests_table import RequestsTable

    return RequestsTable(dynamodb(), settings().table_name)


@functools.cache
def request_service() -> RequestService:
    from asyncagents.data.workflow_engine import StepFunctionsEngine
    from asyncagents.domain.requests import RequestService

    arn = settings().state_machine_arn
    if not arn:
        raise ConfigError("function environment: STATE_MACHINE_ARN is not set")
    engine = _LazyEngine(lambda: StepFunctionsEngine(stepfunctions(), arn))
    extra: dict[str, Any] = {"estimator": estimator()}
    if hooks.sleep is not None:
        extra["sleep"] = hooks.sleep
    return RequestService(requests_table(), engine, formation(), **extra)


@functools.cache
def estimator() -> Any:
    from asyncagents.domain.estimator import Estimator

    return Estimator(requests_table())


@functools.cache
def key_service() -> KeyService:
    from asyncagents.domain.auth import KeyService

    return KeyService(requests_table(), cache_seconds=settings().key_cache_seconds)


@functools.cache
def workflow_steps() -> WorkflowSteps:
    from asyncagents.domain.workflow import WorkflowSteps
    from asyncagents.providers import build_provider

    config = formation()
    provider = build_provider(config.llm, aws_client=_regional_client)
    return WorkflowSteps(requests_table(), provider, config, estimator=estimator(), artifacts=artifact_store())


def _regional_client(service: str, region_name: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    # Model calls are slow and retried by the workflow's Retry: no SDK retries on top, a long read timeout.
    config = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=900)
    region = region_name or settings().aws_region
    return boto3.client(service, region_name=region, config=config)  # type: ignore[call-overload]


class _LazyEngine:
    """Creates the Step Functions client on first use: reads (the most frequent call) never need it."""

    def __init__(self, factory: Any) -> None:
        self._factory = factory
        self._engine: Any = None

    def _get(self) -> Any:
        if self._engine is None:
            self._engine = self._factory()
        return self._engine

    def start(self, execution_name: str, payload: dict[str, Any]) -> None:
        self._get().start(execution_name, payload)

    def stop(self, execution_name: str, *, cause: str) -> None:
        self._get().stop(execution_name, cause=cause)

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        return bool(self._get().resume(task_token, output))

    def fail_task(self, task_token: str, *, error: str, cause: str) -> bool:
        return bool(self._get().fail_task(task_token, error=error, cause=cause))


def reset() -> None:
    for cached in (
        settings,
        formation,
        dynamodb,
        stepfunctions,
        sqs,
        secretsmanager,
        webhook_queue,
        artifact_store,
        webhook_sender,
        delivery_pool,
        requests_table,
        estimator,
        request_service,
        key_service,
        workflow_steps,
    ):
        cached.cache_clear()
