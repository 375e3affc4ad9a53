"""Assemble the whole application on moto, in this process (see the package docstring)."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from asyncagents import runtime
from asyncagents.config import FormationConfig, load_formation, parse_formation
from asyncagents.data.signing_secrets import new_signing_secret
from asyncagents.local.faults import Faults
from asyncagents.local.lambdas import InProcessLambdas, load_handler
from asyncagents.local.pollers import AsyncInvoker
from asyncagents.local.table_permissions import TablePermissions
from asyncagents.local.template import StackSpec, load_template, read_stack, substitute

logger = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT = "123456789012"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@dataclass(frozen=True)
class LocalKeys:
    client_key: str
    admin_key: str
    webhook_secret: str


def keys_from_environment() -> tuple[LocalKeys, bool]:
    """Keys from ``ASYNCAGENTS_CLIENT_KEY`` / ``_ADMIN_KEY`` / ``_WEBHOOK_SECRET``; generated when unset.
    Returns the keys and whether any was generated (so the caller prints them)."""
    client = os.environ.get("ASYNCAGENTS_CLIENT_KEY") or ""
    admin = os.environ.get("ASYNCAGENTS_ADMIN_KEY") or ""
    webhook = os.environ.get("ASYNCAGENTS_WEBHOOK_SECRET") or ""
    generated = not (client and admin and webhook)
    return (
        LocalKeys(
            client_key=client or "fmc_" + secrets.token_urlsafe(24),
            admin_key=admin or "fma_" + secrets.token_urlsafe(24),
            webhook_secret=webhook or new_signing_secret(),
        ),
        generated,
    )


def trigger_secrets_from_environment(formation: FormationConfig) -> dict[str, tuple[str, str, bool]]:
    """``{trigger: (environment variable, secret, generated)}`` for the triggers that verify signatures."""
    found: dict[str, tuple[str, str, bool]] = {}
    for name, definition in formation.triggers.items():
        if definition.verify is None:
            continue
        variable = definition.verify.environment_variable(name)
        value = os.environ.get(variable) or ""
        found[name] = (variable, value or new_signing_secret(), not value)
    return found


def _scaled_sleep(scale: float) -> Any:
    real_sleep = time.sleep

    class _ScaledTime:
        """Stands in for the ``time`` module inside moto's retrier: each retry waits ``scale`` times as long."""

        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            real_sleep(seconds * scale)

    return _ScaledTime()


def create_table(dynamodb: Any, table_name: str, properties: dict[str, Any]) -> None:
    """The requests table as the template declares it (keys, indexes, stream, TTL, PITR, SSE)."""
    arguments: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    stream = properties.get("StreamSpecification")
    if stream:
        arguments["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    if properties.get("SSESpecification"):
        arguments["SSESpecification"] = {"Enabled": properties["SSESpecification"].get("SSEEnabled", True)}
    dynamodb.create_table(**arguments)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
    if properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


class LocalStack:
    """The application on moto. Use as a context manager, or ``start()`` / ``stop()``.

    ``parameter_overrides`` replace template parameters the formation derives (tests only).
    ``retry_time_scale`` shrinks the state machine's real Retry waits (moto sleeps them for real);
    tests use a small value, the interactive stack keeps 1.0.
    """

    def __init__(
        self,
        *,
        root: Path,
        formation_path: Path,
        keys: LocalKeys,
        host: str = "127.0.0.1",
        port: int = 8001,
        retry_time_scale: float = 1.0,
        stage: str = "local",
        allow_local_webhooks: bool = True,
        schedule_seconds: float = 30.0,
        ttl_sweep_seconds: float = 5.0,
        sqs_concurrency: int = 8,
        job_schedule_seconds: float = 1.0,
        parameter_overrides: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        # Template parameters a test sets beside the formation's (a short Run task, to see it hand over).
        self.parameter_overrides = dict(parameter_overrides or {})
        self.formation_path = formation_path
        self.keys = keys
        self.host = host
        self.port = port
        self.retry_time_scale = retry_time_scale
        self.stage = stage
        self.allow_local_webhooks = allow_local_webhooks
        # Schedules (the sweeper's rate of minutes) and DynamoDB's TTL sweep (hours to days) run faster here.
        self.schedule_seconds = schedule_seconds
        self.ttl_sweep_seconds = ttl_sweep_seconds
        self.sqs_concurrency = sqs_concurrency
        # How often the emulated EventBridge Scheduler looks for due slots of the jobs' schedules.
        self.job_schedule_seconds = job_schedule_seconds
        self.schedule_group = f"asyncagents-{stage}-jobs"
        self.scheduler_role_arn = f"arn:aws:iam::{ACCOUNT}:role/asyncagents-{stage}-scheduler"
        self.group_scheduler: Any = None
        self.faults = Faults()
        self.invokers: dict[str, AsyncInvoker] = {}
        self.formation: FormationConfig = load_formation(formation_path)
        self.spec: StackSpec = read_stack(root / "template.yaml")
        # Each function's DynamoDB policy, enforced on its calls (local/table_permissions.py).
        self.permissions = TablePermissions.from_template(
            load_template(root / "template.yaml"), self.spec.table_logical_id
        )
        self.lambdas = InProcessLambdas()
        self.table_name = f"asyncagents-{stage}-requests"
        self.permissions.table_name = self.table_name
        self.state_machine_arn = ""
        self._mock: Any = None
        self._server: Any = None
        self._jwt_server: Any = None
        self.gateway: Any = None
        self.metrics: Any = None  # local/metrics.py: the EMF lines the functions wrote, as CloudWatch metrics
        self._patches: list[Any] = []
        self._saved_env: dict[str, str | None] = {}
        self._pollers: list[Any] = []
        self._workdir: Any = None
        self.queue_urls: dict[str, str] = {}
        self.queue_arns: dict[str, str] = {}
        self.secret_arn = ""
        self.trigger_secrets_arn = ""
        self.bucket_names: dict[str, str] = {}
        # Each signed trigger's secret: from its environment variable, else a new one (printed by `make local`).
        self.trigger_secrets: dict[str, tuple[str, str, bool]] = trigger_secrets_from_environment(self.formation)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        import tempfile

        from moto import mock_aws

        self._workdir = tempfile.TemporaryDirectory(prefix="asyncagents-local-")
        effective_formation = self._write_effective_formation(Path(self._workdir.name))
        self._set_env(
            {
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_EC2_METADATA_DISABLED": "true",
                "TABLE_NAME": self.table_name,
                "FORMATION_PATH": str(effective_formation),
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
                "POWERTOOLS_METRICS_NAMESPACE": "asyncagents",
                "STACK_NAME": f"asyncagents-{self.stage}",
                "PYDANTIC_DISABLE_PLUGINS": "1",
                "DLQ_REDRIVE_STRATEGY": "copy",
            }
        )
        self._mock = mock_aws(config=MOTO_CONFIG)  # type: ignore[call-overload]
        self._mock.start()
        try:
            self._serialize_data_services()
            self._enforce_table_permissions()
            self._isolate_state_machine_parses()
            self._keep_tables_through_cancelled_transactions()
            self._patch_retry_sleep()
            self.lambdas.install()
            self._create_table()
            self._create_queues()
            self._create_secret()
            self._create_buckets()
            functions = self._create_functions()
            self._create_state_machine(functions)
            self._create_schedules(functions)
            self._set_env(
                {
                    "STATE_MACHINE_ARN": self.state_machine_arn,
                    "WEBHOOK_QUEUE_URL": self.queue_urls.get("WebhookQueue", ""),
                    "WEBHOOK_DLQ_URL": self.queue_urls.get("WebhookDeadLetterQueue", ""),
                    "WEBHOOK_SECRET_ARN": self.secret_arn,
                    "TRIGGER_SECRETS_ARN": self.trigger_secrets_arn,
                    "SCHEDULE_GROUP": self.schedule_group,
                    "SCHEDULER_ROLE_ARN": self.scheduler_role_arn,
                    "SCHEDULE_TARGET_ARN": functions.get("RunScheduleFunction", ""),
                    "SCHEDULE_DLQ_ARN": self.queue_arns.get("ScheduleDeadLetterQueue", ""),
                    "ARTIFACTS_BUCKET": self.bucket_names.get("ArtifactsBucket", ""),
                    "NOTICE_TOPIC_ARN": self._create_notice_topic(),
                }
            )
            runtime.install(None)
            self._create_keys()
            self._start_pollers(functions)
            self._serve(functions["ApiFunction"])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *, drain_seconds: float = 10.0) -> None:
        """Stop serving, stop running executions and wait for them, then leave moto."""
        for server in (self._server, self._jwt_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        self._server = self._jwt_server = None
        for poller in self._pollers:
            poller.stop()
        self._pollers.clear()
        if self._mock is not None:
            try:
                self._drain(drain_seconds)
            finally:
                self.lambdas.uninstall()
                for patch in reversed(self._patches):
                    patch.stop()
                self._patches.clear()
                self._mock.stop()
                self._mock = None
                runtime.install(None)
                self._restore_env()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def jwt_url(self) -> str | None:
        """The JWT API's base URL (the template's ``JwtApiUrl``), with ``auth.jwt`` only."""
        if self._jwt_server is None:
            return None
        return f"http://{self.host}:{self._jwt_server.server_address[1]}"

    # -- clients for tests and tools -------------------------------------------------------------

    def client(self, service: str) -> Any:
        import boto3

        if service == "dynamodbstreams":
            # moto matches only the classic streams endpoint; newer botocore resolves another one.
            endpoint = f"https://streams.dynamodb.{REGION}.amazonaws.com"
            return boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=endpoint)
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    def executions(self, status: str | None = None) -> list[dict[str, Any]]:
        arguments: dict[str, Any] = {"stateMachineArn": self.state_machine_arn}
        if status:
            arguments["statusFilter"] = status
        return list(self.client("stepfunctions").list_executions(**arguments)["executions"])

    # -- building ------------------------------------------------------------------------------

    def _serialize_data_services(self) -> None:
        """moto's DynamoDB and SQS backends are not thread-safe (concurrent transactions can fail with
        "dictionary changed size during iteration"); AWS is. Calls to them take one lock here. They never
        call back into handlers, so Lambda invocations themselves still run concurrently."""
        import threading
        from unittest import mock
        from urllib.parse import urlsplit

        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.process_request
        lock = threading.RLock()
        serialized = ("dynamodb.", "streams.dynamodb.", "sqs.", "secretsmanager.", "monitoring.")

        def process_request(stubber: Any, request: Any) -> Any:
            if (urlsplit(request.url).hostname or "").startswith(serialized):
                with lock:
                    return original(stubber, request)
            return original(stubber, request)

        patch = mock.patch.object(BotocoreStubber, "process_request", process_request)
        patch.start()
        self._patches.append(patch)

    def _enforce_table_permissions(self) -> None:
        """A DynamoDB call that the calling function's role may not make is refused, as IAM would refuse it."""
        from unittest import mock

        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.process_request
        permissions = self.permissions

        def process_request(stubber: Any, request: Any) -> Any:
            target = request.headers.get("X-Amz-Target", "")
            if isinstance(target, bytes):
                target = target.decode()
            reason = permissions.refusal(target, request.body) if target else None
            if reason is None:
                return original(stubber, request)
            logger.warning("AccessDenied: %s", reason)
            body = {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": reason}
            return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(body)

        patch = mock.patch.object(BotocoreStubber, "process_request", process_request)
        patch.start()
        self._patches.append(patch)

    def _isolate_state_machine_parses(self) -> None:
        """moto parses the definition again in each execution's own thread, and its parser keeps the stack of
        QueryLanguage scopes in a list shared by every parse: two executions starting at once can pop each
        other's scopes, one parse dies with an IndexError and its execution stays RUNNING for ever (and cannot
        be stopped). Each parse gets its own list here."""
        from unittest import mock

        from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

        def scopes_of_this_parse(preprocessor: Any) -> list[Any]:
            scopes: list[Any] = preprocessor.__dict__.setdefault("_asyncagents_query_language_scopes", [])
            return scopes

        patch = mock.patch.object(Preprocessor, "_query_language_per_scope", property(scopes_of_this_parse))
        patch.start()
        self._patches.append(patch)

    def _keep_tables_through_cancelled_transactions(self) -> None:
        """moto rolls a cancelled TransactWriteItems back by putting a deep copy of each table in its place, stream
        and all: the stream poller's iterators keep reading the old table's stream, and every later change is lost
        to it (no webhook, no freed slot ever again). Here the live table stays, with its items restored and its
        stream cut back to where it was, as if the transaction never happened, which is what DynamoDB does."""
        from unittest import mock

        from moto.dynamodb.models import DynamoDBBackend

        original = DynamoDBBackend.transact_write_items

        def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
            names = {op.get("TableName") for item in transact_items for op in item.values() if isinstance(op, dict)}
            live = {name: backend.tables[name] for name in names if name in backend.tables}
            streamed = {name: len(t.stream_shard.items) for name, t in live.items() if t.stream_shard is not None}
            try:
                original(backend, transact_items)
            except Exception:
                for name, table in live.items():
                    rolled_back = backend.tables.get(name)
                    if rolled_back is not None and rolled_back is not table:
                        table.items = rolled_back.items
                        backend.tables[name] = table
                    if name in streamed:
                        del table.stream_shard.items[streamed[name] :]
                raise

        patch = mock.patch.object(DynamoDBBackend, "transact_write_items", transact_write_items)
        patch.start()
        self._patches.append(patch)

    def _patch_retry_sleep(self) -> None:
        if self.retry_time_scale == 1.0:
            return
        from unittest import mock

        patch = mock.patch(
            "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time",
            _scaled_sleep(self.retry_time_scale),
        )
        patch.start()
        self._patches.append(patch)

    def _create_notice_topic(self) -> str:
        """The template's notice topic, when the formation mails notices (``notifications.email``)."""
        if not self.formation.notifications.email:
            return ""
        self.notice_topic_arn = self.client("sns").create_topic(Name=f"asyncagents-{self.stage}-notices")["TopicArn"]
        return self.notice_topic_arn

    def template_parameters(self) -> dict[str, str]:
        return {**self.formation.template_parameters(), **self.parameter_overrides}

    def _create_table(self) -> None:
        create_table(self.client("dynamodb"), self.table_name, self.spec.table_properties)

    def _write_effective_formation(self, folder: Path) -> Path:
        """The formation the functions read: the user's, plus (when allowed) http and loopback webhook
        receivers, which the local stack exists to test. Validated again like any formation, and written as the
        layer ships it (the JSON and its validated objects: the functions read those, as on Lambda)."""
        from asyncagents.built_formation import write_built

        document = self.formation.model_dump(by_alias=True, mode="json")
        if self.allow_local_webhooks:
            security = document["async"]["webhook_security"]
            security["allow_http"] = True
            security["allow_loopback"] = True
        for definition in document["triggers"].values():
            if definition.get("verify"):
                # Your secrets are in your account, not in moto: here every trigger's is in TriggerSecrets.
                definition["verify"]["secret_arn"] = None
        self.formation = parse_formation(document, source=str(self.formation_path))
        path = folder / "formation.json"
        write_built(self.formation, path)
        return path

    def _create_queues(self) -> None:
        """Queues from the template: those without a redrive policy first (they are the targets)."""
        sqs = self.client("sqs")
        parameters = self.template_parameters()
        ordered = sorted(self.spec.queues.items(), key=lambda item: "RedrivePolicy" in item[1])
        for logical_id, properties in ordered:
            attributes: dict[str, str] = {}
            for name in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
                if name in properties:
                    attributes[name] = str(properties[name])
            redrive = properties.get("RedrivePolicy")
            if redrive:
                target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
                receives = redrive["maxReceiveCount"]
                if isinstance(receives, dict):
                    receives = parameters[receives["Ref"]]
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": self.queue_arns[target], "maxReceiveCount": int(receives)}
                )
            url = sqs.create_queue(QueueName=f"asyncagents-{self.stage}-{logical_id}", Attributes=attributes)[
                "QueueUrl"
            ]
            self.queue_urls[logical_id] = url
            self.queue_arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]

    def _create_buckets(self) -> None:
        s3 = self.client("s3")
        for logical_id in self.spec.buckets:
            name = f"asyncagents-{self.stage}-{logical_id.lower()}"
            s3.create_bucket(Bucket=name)
            self.bucket_names[logical_id] = name

    def _create_secret(self) -> None:
        """The template's secrets: the webhook signing secret, and the triggers' secrets by name."""
        manager = self.client("secretsmanager")
        if "WebhookSigningSecret" in self.spec.secrets:
            value = {"current": self.keys.webhook_secret, "previous": ""}
            self.secret_arn = manager.create_secret(
                Name=f"asyncagents-{self.stage}-webhook-signing", SecretString=json.dumps(value)
            )["ARN"]
        if "TriggerSecrets" in self.spec.secrets:
            entries = {name: secret for name, (_, secret, _) in self.trigger_secrets.items()}
            self.trigger_secrets_arn = manager.create_secret(
                Name=f"asyncagents-{self.stage}-trigger-secrets", SecretString=json.dumps(entries)
            )["ARN"]

    def _start_pollers(self, functions: dict[str, str]) -> None:
        """What invokes functions on AWS, per the template: event source mappings, EventBridge rules,
        schedules; and DynamoDB's TTL sweep."""
        from asyncagents.local.pollers import ExecutionWatcher, ScheduleRunner, SqsPoller, StreamPoller, TtlSweeper

        for source in self.spec.event_sources:
            handler = self.lambdas.handler_of(f"asyncagents-{self.stage}-{source.function}")
            arn = functions[source.function]
            pollers: list[Any]
            if source.kind == "execution-status":
                pollers = [
                    ExecutionWatcher(
                        self.client("stepfunctions"),
                        self.state_machine_arn,
                        source.statuses,
                        handler,
                        arn,
                        deliver=self._async_invoker(source.function, handler, arn),
                        drop=self.faults.drops,
                    )
                ]
            elif source.kind == "schedule":
                invoke = self._async_invoker(source.function, handler, arn)
                pollers = [ScheduleRunner(f"asyncagents-schedule-{source.function}", invoke, self.schedule_seconds)]
            elif source.kind == "dynamodb-stream":
                table = self.client("dynamodb").describe_table(TableName=self.table_name)["Table"]
                pollers = [
                    StreamPoller(
                        self.client("dynamodbstreams"),
                        table["LatestStreamArn"],
                        handler,
                        arn,
                        batch_size=source.batch_size,
                        max_retries=source.max_retries,
                        on_failure=self._stream_failures(source.on_failure, arn),
                        filters=source.filters,
                    )
                ]
            else:
                # Lambda polls a queue with several batches at once; each concurrent batch is a container of
                # its own (its own copy of the handler module), as on AWS.
                spec = self.spec.functions[source.function]
                pollers = [
                    SqsPoller(
                        self.client("sqs"),
                        self.queue_urls[source.source],
                        self.queue_arns[source.source],
                        handler if i == 0 else self._guarded(source.function, self._load(spec, f"{i}")),
                        arn,
                        batch_size=source.batch_size,
                    )
                    for i in range(max(1, self.sqs_concurrency))
                ]
            for poller in pollers:
                poller.start()
                self._pollers.append(poller)
        self._start_group_scheduler(functions)
        ttl = self.spec.table_properties.get("TimeToLiveSpecification", {})
        if ttl.get("Enabled"):
            sweeper = TtlSweeper(
                self.client("dynamodb"),
                self.table_name,
                interval=self.ttl_sweep_seconds,
                attribute=ttl["AttributeName"],
            )
            sweeper.start()
            self._pollers.append(sweeper)

    def _create_schedules(self, functions: dict[str, str]) -> None:
        """The stack's schedule group, with the formation's schedules as `make build` puts them in the template."""
        from asyncagents.schedule_resources import schedule_resources

        scheduler = self.client("scheduler")
        scheduler.create_schedule_group(Name=self.schedule_group)
        names = {
            "ScheduleGroup": self.schedule_group,
            "RunScheduleFunction": functions.get("RunScheduleFunction", ""),
            "SchedulerRole": self.scheduler_role_arn,
            "ScheduleDeadLetterQueue": self.queue_arns.get("ScheduleDeadLetterQueue", ""),
        }

        def resolve(value: Any) -> Any:
            if isinstance(value, dict) and set(value) in ({"Ref"}, {"Fn::GetAtt"}):
                return names[value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]]
            if isinstance(value, dict):
                return {key: resolve(item) for key, item in value.items()}
            return value

        for resource in schedule_resources(self.formation).values():
            scheduler.create_schedule(**resolve(resource["Properties"]))

    def _start_group_scheduler(self, functions: dict[str, str]) -> None:
        from asyncagents.local.scheduler import GroupScheduler

        if "RunScheduleFunction" not in functions:
            return
        arn = functions["RunScheduleFunction"]
        handler = self.lambdas.handler_of(f"asyncagents-{self.stage}-RunScheduleFunction")
        targets = {arn: self._async_invoker("RunScheduleFunction", handler, arn)}
        self.group_scheduler = GroupScheduler(
            self.client("scheduler"), self.schedule_group, targets, interval=self.job_schedule_seconds
        )
        self.group_scheduler.start()
        self._pollers.append(self.group_scheduler)

    def _async_invoker(self, logical_id: str, handler: Any, arn: str) -> AsyncInvoker:
        spec = self.spec.functions[logical_id]
        invoker = AsyncInvoker(
            handler,
            arn,
            retries=spec.async_retries,
            sqs=self.client("sqs"),
            on_failure_url=self.queue_urls.get(spec.on_failure or ""),
        )
        self.invokers[logical_id] = invoker
        return invoker

    def _stream_failures(self, queue: str | None, arn: str) -> Any:
        url = self.queue_urls.get(queue or "")
        if not url:
            return None
        sqs = self.client("sqs")

        def hand_over(records: list[dict[str, Any]]) -> None:
            # What Lambda sends an on-failure destination for a stream: where the records are, not the records.
            shard = {"approximateArrivalOfFirstRecord": None, "startSequenceNumber": None}
            for record in records:
                shard["startSequenceNumber"] = record["dynamodb"]["SequenceNumber"]
            body = {
                "requestContext": {"functionArn": arn, "condition": "RetryAttemptsExhausted"},
                "DDBStreamBatchInfo": {**shard, "batchSize": len(records), "streamArn": "local"},
            }
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body, default=str))

        return hand_over

    def _create_functions(self) -> dict[str, str]:
        """Create each template function in moto's Lambda and register its in-process handler.
        Returns logical id → function ARN."""
        iam = self.client("iam")
        role = iam.create_role(
            RoleName=f"asyncagents-{self.stage}-functions",
            AssumeRolePolicyDocument=(
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
            ),
        )["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("app.py", "# runs in-process in the local stack\n")
        code = archive.getvalue()
        lambda_client = self.client("lambda")
        arns: dict[str, str] = {}
        parameters = self.template_parameters()
        for logical_id, spec in self.spec.functions.items():
            name = f"asyncagents-{self.stage}-{logical_id}"
            # The template's Timeout (a number, or a parameter that comes from the formation).
            declared = spec.timeout
            timeout = int(parameters[declared["Ref"]] if isinstance(declared, dict) else declared)
            arn = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler=spec.handler,
                Code={"ZipFile": code},
                Architectures=["arm64"],
                Timeout=timeout,
            )["FunctionArn"]
            self.lambdas.register(name, arn, self._guarded(logical_id, self._load(spec, "0")), timeout=timeout)
            arns[logical_id] = arn
        return arns

    def _load(self, spec: Any, container: str) -> Any:
        return load_handler(spec.code_dir, spec.handler, module_alias=f"asyncagents_fn_{spec.logical_id}_{container}")

    def _guarded(self, logical_id: str, handler: Any) -> Any:
        """The handler, failing while a test has injected a failure into this function."""

        def invoke(event: dict[str, Any], context: Any) -> Any:
            with self.permissions.acting_as(logical_id):
                self.faults.check(logical_id, event)
                return handler(event, context)

        return invoke

    def _create_state_machine(self, functions: dict[str, str]) -> None:
        values = dict(self.template_parameters())
        for name, source in self.spec.substitutions.items():
            if isinstance(source, dict) and "Fn::GetAtt" in source:
                values[name] = functions[source["Fn::GetAtt"][0]]
        definition = substitute(self.spec.definition_path.read_text(encoding="utf-8"), values)
        iam = self.client("iam")
        role = iam.create_role(
            RoleName=f"asyncagents-{self.stage}-workflow",
            AssumeRolePolicyDocument=(
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                '"Principal":{"Service":"states.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
            ),
        )["Role"]["Arn"]
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=f"asyncagents-{self.stage}-workflow", definition=definition, roleArn=role, type="STANDARD"
        )["stateMachineArn"]

    def _create_keys(self) -> None:
        keys = runtime.current().key_service
        keys.create("client", label="local client key", secret=self.keys.client_key)
        keys.create("admin", label="local admin key", secret=self.keys.admin_key)

    def _serve(self, api_arn: str) -> None:
        from asyncagents.local.http import ApiGateway, serve

        api_name = f"asyncagents-{self.stage}-ApiFunction"
        handler = self.lambdas.handler_of(api_name)
        gateway = ApiGateway(handler, api_arn)
        self.gateway = gateway  # what API Gateway would call (tests call it as AWS does: answers buffered)
        # One API container that serves every call in turn: a sync request's wait yields it to the others.
        from asyncagents.local.metrics import LocalMetrics

        self.metrics = LocalMetrics(self.client("cloudwatch"))
        runtime.install(
            _LocalRuntime(
                self.faults, gateway.inside_call, self.permissions, self.metrics, sleep=gateway.cooperative_sleep
            )
        )
        self._server, _ = serve(gateway, self.host, self.port)
        self.port = self._server.server_address[1]
        jwt = self.formation.auth.jwt
        if jwt is not None:  # the second API, for end users with a verified JWT (template: JwtHttpApi)
            from asyncagents.local.http import JwtApi
            from asyncagents.local.jwt_api import JwtAuthorizer, JwtRoutes

            api = JwtApi(JwtRoutes(self.spec.jwt_routes), JwtAuthorizer(jwt.issuer, jwt.audiences))
            self._jwt_server, _ = serve(gateway, self.host, 0, api)

    def _drain(self, seconds: float) -> None:
        """Stop every running execution and give its worker threads time to return."""
        try:
            sfn = self.client("stepfunctions")
            running = self.executions("RUNNING")
            for execution in running:
                try:
                    sfn.stop_execution(executionArn=execution["executionArn"], cause="local stack stopping")
                except Exception:
                    logger.debug("could not stop %s", execution["executionArn"])
            deadline = time.monotonic() + seconds
            while running and time.monotonic() < deadline:
                time.sleep(0.05)
                running = self.executions("RUNNING")
        except Exception:
            logger.exception("draining executions failed")

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()


class _LocalRuntime(runtime.Runtime):
    """The runtime of the local stack's single process, with the faults aimed at the API applied."""

    def __init__(
        self, faults: Faults, in_api_call: Any, permissions: TablePermissions, metrics: Any, **options: Any
    ) -> None:
        super().__init__(**options)
        self._faults = faults
        self._in_api_call = in_api_call
        self._permissions = permissions
        self._metrics = metrics
        self._engine: _FaultyEngine | None = None

    def write_metric_line(self, line: str) -> None:
        """CloudWatch's part: the EMF line becomes metric data (and is kept for tests), not console output."""
        self._metrics.write(line)

    @cached_property
    def delivery_pool(self) -> ThreadPoolExecutor:
        """The pool's threads work for the function that made it (the webhook sender): its role, its calls."""
        function = self._permissions.acting()
        initializer = (lambda: self._permissions.act_as(function)) if function else None
        return ThreadPoolExecutor(max_workers=10, thread_name_prefix="webhook", initializer=initializer)

    @property
    def workflow_engine(self) -> Any:
        if self._engine is None:
            self._engine = _FaultyEngine(super().workflow_engine, self._faults, self._in_api_call)
        return self._engine


class _FaultyEngine:
    """The workflow engine, except that a start made by the API may find the API's container dead."""

    def __init__(self, engine: Any, faults: Faults, in_api_call: Any) -> None:
        self._engine = engine
        self._faults = faults
        self._in_api_call = in_api_call

    def start(self, execution_name: str, payload: dict[str, Any]) -> None:
        if self._in_api_call():
            self._faults.kill_before_start()
        self._engine.start(execution_name, payload)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)
