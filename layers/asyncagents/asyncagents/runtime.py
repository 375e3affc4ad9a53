"""Per-container wiring: settings read from the environment once, AWS clients and services created once.

Nothing here runs at import time. ``current()`` is the container's ``Runtime``; each of its properties is
built on first use and kept, so a warm invocation reuses clients and caches, and a function builds only
what its own calls need (imports are lazy for the same reason). Hosts other than Lambda (the local stack,
tests) ``install`` a runtime of their own, e.g. with another ``sleep``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from asyncagents.config import FormationConfig
from asyncagents.runtime_model import Guarding
from asyncagents.runtime_observability import Observing
from asyncagents.runtime_webhooks import Delivering
from asyncagents.settings import FunctionSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

    from asyncagents.data.api_keys import ApiKeys
    from asyncagents.data.artifact_store import ArtifactStore
    from asyncagents.data.duration_history import DurationHistory
    from asyncagents.data.request_records import RequestRecords
    from asyncagents.data.schedule_jobs import ScheduleJobs
    from asyncagents.data.scheduler import EventBridgeSchedules
    from asyncagents.data.step_checkpoints import StepCheckpoints
    from asyncagents.data.trigger_secrets import TriggerSecrets
    from asyncagents.data.webhook_queue import WebhookQueue
    from asyncagents.data.workflow_engine import StepFunctionsEngine
    from asyncagents.domain.audit import Audit
    from asyncagents.domain.auth import KeyService
    from asyncagents.domain.estimator import Estimator
    from asyncagents.domain.limits import RequestLimits
    from asyncagents.domain.requests import RequestService
    from asyncagents.domain.schedules.service import Schedules
    from asyncagents.domain.triggers.fire import Triggers
    from asyncagents.domain.webhooks.dead_letters import DeadLetters
    from asyncagents.domain.workflow import WorkflowSteps
    from asyncagents.domain.workflow.sweep import Sweeper


def _client(service: str, region: str | None, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    settings = {"retries": {"mode": "standard", "max_attempts": 3}, "connect_timeout": 3, "read_timeout": 10}
    return boto3.client(service, region_name=region, config=Config(**{**settings, **config}))  # type: ignore[call-overload]


class Runtime(Observing, Delivering, Guarding):
    """What one container builds once. ``environ`` is read on first use of ``settings``."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, sleep: Callable[[float], None] = time.sleep):
        self._environ = environ
        self._sleep = sleep

    # -- configuration ---------------------------------------------------------------------------

    @cached_property
    def settings(self) -> FunctionSettings:
        return FunctionSettings.from_environment(os.environ if self._environ is None else self._environ)

    @cached_property
    def formation(self) -> FormationConfig:
        from asyncagents.built_formation import load_built

        return load_built(self.settings.formation_path)

    # -- AWS clients -----------------------------------------------------------------------------

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return _client("dynamodb", self.settings.aws_region)

    @cached_property
    def stepfunctions(self) -> SFNClient:
        return _client("stepfunctions", self.settings.aws_region)

    @cached_property
    def sqs(self) -> SQSClient:
        return _client("sqs", self.settings.aws_region)

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        return _client("secretsmanager", self.settings.aws_region)

    @cached_property
    def scheduler(self) -> EventBridgeSchedulerClient:
        return _client("scheduler", self.settings.aws_region)

    @cached_property
    def s3(self) -> S3Client:
        return _client("s3", self.settings.aws_region, signature_version="s3v4")

    # -- data access -----------------------------------------------------------------------------

    @cached_property
    def request_records(self) -> RequestRecords:
        from asyncagents.data.request_records import RequestRecords

        return RequestRecords(self.dynamodb, self.settings.table_name)

    @cached_property
    def step_checkpoints(self) -> StepCheckpoints:
        from asyncagents.data.step_checkpoints import StepCheckpoints

        return StepCheckpoints(self.dynamodb, self.settings.table_name)

    @cached_property
    def duration_history(self) -> DurationHistory:
        from asyncagents.data.duration_history import DurationHistory

        return DurationHistory(self.dynamodb, self.settings.table_name)

    @cached_property
    def api_keys(self) -> ApiKeys:
        from asyncagents.data.api_keys import ApiKeys

        return ApiKeys(self.dynamodb, self.settings.table_name)

    @cached_property
    def workflow_engine(self) -> StepFunctionsEngine:
        """Creates the Step Functions client on first use: reads (the most frequent call) never need it."""
        from asyncagents.data.workflow_engine import StepFunctionsEngine

        arn = self.settings.require("state_machine_arn")
        return StepFunctionsEngine(lambda: self.stepfunctions, arn)

    @cached_property
    def artifact_store(self) -> ArtifactStore | None:
        """The artifacts bucket, or ``None`` when the function has none configured."""
        if not self.settings.artifacts_bucket:
            return None
        from asyncagents.data.artifact_store import ArtifactStore

        return ArtifactStore(self.s3, self.settings.artifacts_bucket)

    def artifact_url(self) -> Callable[[str], str] | None:
        """Key → presigned URL, or ``None`` without a bucket."""
        store = self.artifact_store
        return store.url if store is not None else None

    def stored_text(self) -> Callable[[str], str] | None:
        """Key → a text that outgrew the table (read from the bucket), or ``None`` without a bucket."""
        store = self.artifact_store
        return (lambda key: store.get(key).decode()) if store is not None else None

    @cached_property
    def webhook_queue(self) -> WebhookQueue:
        from asyncagents.data.webhook_queue import WebhookQueue

        settings = self.settings
        return WebhookQueue(
            self.sqs,
            settings.require("webhook_queue_url"),
            settings.webhook_dlq_url,
            redrive_strategy=settings.dlq_redrive_strategy,
        )

    # -- domain services -------------------------------------------------------------------------

    @cached_property
    def estimator(self) -> Estimator:
        from asyncagents.domain.estimator import Estimator

        return Estimator(self.duration_history)

    @cached_property
    def request_service(self) -> RequestService:
        from asyncagents.domain.requests import RequestService

        return RequestService(
            self.request_records,
            self.workflow_engine,
            self.formation,
            estimator=self.estimator,
            sleep=self._sleep,
            limits=self.request_limits,
            telemetry=self.request_telemetry,
            breaker=self.model_breaker,
            spend=self.spend_caps if self.formation.spend.capped else None,
            artifacts=self.artifact_store,  # messages over 1 KB
        )

    @cached_property
    def audit(self) -> Audit:
        from asyncagents.data.audit_log import AuditLog
        from asyncagents.domain.audit import Audit

        store = AuditLog(self.dynamodb, self.settings.table_name)
        return Audit(store, retention_days=self.formation.auth.audit_retention_days)

    @cached_property
    def request_limits(self) -> RequestLimits:
        from asyncagents.data.limit_counters import RateWindows, SlotPools
        from asyncagents.domain.limits import RequestLimits

        dynamodb, table = self.dynamodb, self.settings.table_name
        counters = RateWindows(dynamodb, table), SlotPools(dynamodb, table)
        return RequestLimits(self.formation.limits, *counters, self.request_records)

    @cached_property
    def key_service(self) -> KeyService:
        from asyncagents.domain.auth import KeyService

        return KeyService(
            self.api_keys,
            cache_seconds=self.settings.key_cache_seconds,
            bound_keys_only=self.formation.auth.jwt is not None,
        )

    @cached_property
    def triggers(self) -> Triggers:
        from asyncagents.domain.triggers.fire import Triggers

        # The secrets are built on the first signed delivery: client-key calls never need Secrets Manager.
        return Triggers(
            self.formation.triggers,
            self.request_service,
            self.key_service,
            lambda: self.trigger_secrets,
            telemetry=self.telemetry,
        )

    @cached_property
    def trigger_secrets(self) -> TriggerSecrets:
        from asyncagents.data.trigger_secrets import TriggerSecrets

        return TriggerSecrets(self.secretsmanager, self.settings.trigger_secrets_arn)

    @cached_property
    def schedule_jobs(self) -> ScheduleJobs:
        from asyncagents.data.schedule_jobs import ScheduleJobs

        return ScheduleJobs(self.dynamodb, self.settings.table_name)

    @cached_property
    def schedule_engine(self) -> EventBridgeSchedules:
        from asyncagents.data.scheduler import EventBridgeSchedules

        settings = self.settings
        return EventBridgeSchedules(
            self.scheduler,
            group=settings.require("schedule_group"),
            role_arn=settings.require("scheduler_role_arn"),
            target_arn=settings.require("schedule_target_arn"),
            dead_letter_arn=settings.require("schedule_dlq_arn"),
        )

    @cached_property
    def schedules(self) -> Schedules:
        from asyncagents.domain.schedules.service import Schedules
        from asyncagents.domain.times import utc_now

        # The Scheduler client is made on the first change: reads and fired slots never need it.
        return Schedules(
            self.schedule_jobs,
            lambda: self.schedule_engine,
            self.request_service,
            self.formation.schedules,
            clock=utc_now,
            telemetry=self.telemetry,
        )

    @cached_property
    def workflow_steps(self) -> WorkflowSteps:
        from asyncagents.domain.workflow import WorkflowSteps

        return WorkflowSteps(
            self.request_records,
            self.step_checkpoints,
            self.model_provider,
            self.formation,
            estimator=self.estimator,
            artifacts=self.artifact_store,
            breaker=self.model_breaker,
            spend=self.spend_caps if self.formation.spend.capped else None,
        )

    @cached_property
    def sweeper(self) -> Sweeper:
        from asyncagents.domain.workflow.context import RequestsContext
        from asyncagents.domain.workflow.sweep import Sweeper

        context = RequestsContext(records=self.request_records, formation=self.formation)
        return Sweeper(context, self.workflow_engine)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        from asyncagents.domain.webhooks.dead_letters import DeadLetters

        return DeadLetters(self.webhook_queue)

    def _model_client(self, service: str, region_name: str | None = None) -> Any:
        # Model calls are slow and retried by the run: no SDK retries on top, and no read longer than an attempt
        # may last (the run gives up on an attempt past its deadline, and its thread would go on reading).
        return _client(
            service,
            region_name or self.settings.aws_region,
            retries={"mode": "standard", "max_attempts": 1},
            connect_timeout=5,
            read_timeout=self.formation.overlord.workflow.timeouts.task_timeout,
        )


_current: Runtime | None = None


def current() -> Runtime:
    """This container's runtime (created on first use from the process environment)."""
    global _current
    if _current is None:
        _current = Runtime()
    return _current


def install(runtime: Runtime | None) -> None:
    """Replace the container's runtime (the local stack, tests); ``None`` forgets it."""
    global _current
    _current = runtime
