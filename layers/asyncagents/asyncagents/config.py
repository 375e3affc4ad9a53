"""The formation configuration: one YAML file, validated with pydantic.

The same file drives the functions at run time (packaged into the layer as JSON, validated at build
time) and the infrastructure (timeouts, retry and Map concurrency reach the state machine through
the template parameters printed by ``asyncagents params``).

Defaults follow seeds/000. Where the seeds disagree, the choice is documented here:
``threshold_seconds`` defaults to 60 (the "Threshold Configuration" section; the 30 in the opening
example is the older value).
"""

from __future__ import annotations

import json
import math
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from asyncagents.domain.destinations import DEFAULT_PORTS, port_ranges
from asyncagents.domain.errors import ConfigError
from asyncagents.formation_api import ApiSettings
from asyncagents.formation_auth import AuthSettings
from asyncagents.formation_base import StrictModel
from asyncagents.formation_limits import Limits
from asyncagents.formation_llm import LLMSettings
from asyncagents.formation_notifications import Notifications
from asyncagents.formation_observability import Observability
from asyncagents.formation_spend import SpendSettings
from asyncagents.formation_workflow import (
    MAX_RUN_SECONDS,
    RUN_MARGIN_SECONDS,
    TASK_FUNCTION_MARGIN_SECONDS,
    Budget,
    Retry,
    Timeouts,
)

if TYPE_CHECKING:
    from asyncagents.schedule_definitions import ScheduleDefinition
    from asyncagents.trigger_definitions import TriggerDefinition


# The longest a result may be kept. What every reader of a record needs (its plan kept apart) is kept this long,
# whatever the retention when it was written: an operator may lengthen the retention while the request runs.
MAX_RESULT_RETENTION_SECONDS = 30 * 86_400


class AsyncMode(StrEnum):
    AUTO = "auto"
    SYNC = "sync"
    ASYNC = "async"


class WebhookSecurity(StrictModel):
    """Where webhooks may go. The defaults allow only https to public addresses, on 80, 443 or an unprivileged
    port."""

    allow_http: bool = False
    allow_private_networks: bool = Field(False, description="10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7")
    allow_loopback: bool = False
    allowed_ports: tuple[tuple[int, int], ...] = Field(
        DEFAULT_PORTS, description='Ports and ranges, as "80, 443, 1024-65535" or a list of them.'
    )

    @field_validator("allowed_ports", mode="before")
    @classmethod
    def _port_ranges(cls, value: Any) -> Any:
        return port_ranges(value)


class AsyncSettings(StrictModel):
    mode: AsyncMode = AsyncMode.AUTO
    threshold_seconds: float = Field(60.0, gt=0, le=86_400)
    webhook_url: str | None = None
    webhook_retries: int = Field(30, ge=0, le=98, description="Retries after the first attempt, at most.")
    webhook_timeout: float = Field(10.0, gt=0, le=60)
    webhook_backoff_seconds: float = Field(5.0, gt=0, le=3600, description="First retry delay; doubles after.")
    # SQS hides a message for 12 h at most: the longest delay one retry can wait.
    webhook_max_backoff_seconds: float = Field(21_600.0, gt=0, le=43_200)
    webhook_retry_window_seconds: int = Field(
        259_200,
        ge=1,
        le=13 * 86_400,
        description="How long an event is retried, from its first attempt (3 days, as Stripe); the queues keep "
        "messages 14 days.",
    )
    webhook_standard_headers: bool = Field(True, description="Standard Webhooks headers: they sign the delivery id.")
    webhook_security: WebhookSecurity = Field(default_factory=WebhookSecurity)
    result_retention_seconds: int = Field(300, ge=1, le=MAX_RESULT_RETENTION_SECONDS)
    idempotency_seconds: int = Field(
        86_400,
        ge=60,
        le=30 * 86_400,
        description="How long a request id or idempotency key stays taken, even after the result expired.",
    )
    sync_wait_seconds: float = Field(
        25.0,
        gt=0,
        le=28,
        description="How long a sync request waits before answering 202 (API Gateway caps at 29 s).",
    )


DEFAULT_CLARIFICATION_TIMEOUT = 900


class ClarificationSettings(StrictModel):
    """Questions a step (or the planner) may put to the user while the workflow waits for the answer."""

    enabled: bool = True
    timeout_seconds: int = Field(
        DEFAULT_CLARIFICATION_TIMEOUT,
        ge=1,
        le=365 * 86_400,
        description="How long one question waits (default 900 s, or half the workflow timeout if shorter).",
    )
    on_timeout: Literal["fail", "continue"] = Field(
        "fail", description="fail: the request fails (clarification_timeout); continue: go on without an answer."
    )
    max_questions: int = Field(3, ge=0, le=10, description="Questions per request, all steps together.")


class SweeperSettings(StrictModel):
    """The sweeper: every few minutes it finds requests that are not finished although they should be
    (an execution that ended unrecorded, a workflow that never started) and ends or restarts them."""

    interval_minutes: int = Field(5, ge=2, le=60, description="How often it runs (EventBridge Scheduler).")
    grace_seconds: int = Field(
        120, ge=1, le=3600, description="A request younger than this is left alone (its workflow is starting)."
    )


class Workflow(StrictModel):
    timeouts: Timeouts = Field(default_factory=Timeouts)
    sweeper: SweeperSettings = Field(default_factory=SweeperSettings)
    budget: Budget = Field(default_factory=Budget)
    retry: Retry = Field(default_factory=Retry)
    clarification: ClarificationSettings = Field(default_factory=ClarificationSettings)
    max_concurrency: int = Field(
        1, ge=0, le=40, description="Steps run at once by a request's run, each on a thread (0 = unbounded)."
    )
    max_steps: int = Field(8, ge=1, le=50)

    @model_validator(mode="before")
    @classmethod
    def _default_wait_fits(cls, data: Any) -> Any:
        """Unset, the clarification timeout shrinks to half of a short workflow timeout (set, it must fit)."""
        if not isinstance(data, dict):
            return data
        clarification = data.get("clarification") or {}
        timeouts = data.get("timeouts") or {}
        if not isinstance(clarification, dict) or not isinstance(timeouts, dict) or "timeout_seconds" in clarification:
            return data
        workflow_timeout = timeouts.get("workflow_timeout")
        if isinstance(workflow_timeout, int) and workflow_timeout // 2 < DEFAULT_CLARIFICATION_TIMEOUT:
            wait = max(1, workflow_timeout // 2)
            return {**data, "clarification": {**clarification, "timeout_seconds": wait}}
        return data

    @model_validator(mode="after")
    def _wait_fits_in_workflow(self) -> Workflow:
        # The execution's own timeout keeps running while it waits for an answer.
        if self.clarification.enabled and self.clarification.timeout_seconds >= self.timeouts.workflow_timeout:
            raise ValueError("clarification.timeout_seconds must be less than timeouts.workflow_timeout")
        return self


class Overlord(StrictModel):
    workflow: Workflow = Field(default_factory=Workflow)


class FormationConfig(StrictModel):
    """The whole formation file. Keys outside those listed are rejected with their path."""

    formation_id: str = Field("asyncagents", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    async_: AsyncSettings = Field(default_factory=AsyncSettings, alias="async")
    overlord: Overlord = Field(default_factory=Overlord)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    limits: Limits = Field(default_factory=Limits)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    observability: Observability = Field(default_factory=Observability)
    api: ApiSettings = Field(default_factory=ApiSettings)
    notifications: Notifications = Field(default_factory=Notifications)
    spend: SpendSettings = Field(default_factory=SpendSettings)
    # Triggers (loaded from triggers/<name>.md beside the formation file, never written in the YAML itself) and
    # schedules (reports on EventBridge Scheduler), by name. Their models are imported only for a formation that
    # has some: the functions of a formation without them never pay for building those models.
    if TYPE_CHECKING:
        triggers: dict[str, TriggerDefinition]
        schedules: dict[str, ScheduleDefinition]
    else:
        triggers: dict[str, Any] = Field(default_factory=dict)
        schedules: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("triggers")
    @classmethod
    def _trigger_definitions(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:  # no triggers: their models are never imported (about 14 ms of every cold start)
            return value
        from asyncagents.formation_sections import trigger_definitions

        return trigger_definitions(value)

    @field_validator("schedules")
    @classmethod
    def _schedule_definitions(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        from asyncagents.formation_sections import schedule_definitions

        return schedule_definitions(value)

    @model_validator(mode="after")
    def _spend_caps_usable(self) -> FormationConfig:
        problems = self.spend.problems(self.llm.model, self.llm.max_tokens)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def bucket_days(self) -> int:
        """How many days the bucket keeps an object (a request's message, a large output, a file): past the longest
        request, kept as long as its result is (a failed one can be redriven meanwhile, and run again as long), then
        its webhook's delivery (3 days, 14 in the dead-letter queue). A redrive that could outlive them is refused."""
        workflow_timeout = self.overlord.workflow.timeouts.workflow_timeout
        return 18 + math.ceil((2 * workflow_timeout + self.async_.result_retention_seconds) / 86_400)

    def template_parameters(self) -> dict[str, str]:
        """Template parameters that carry the infrastructure-shaping settings into the state machine.

        The steps retry inside the Run task; the Task's own Retry (the planner's and the answer's transient
        errors, a run that crashed) uses the same settings. Step Functions counts ``MaxAttempts`` as retries
        after the first attempt, so a formation's ``max_attempts: 3`` becomes ``MaxAttempts: 2``.
        ``IntervalSeconds`` must be a whole number of seconds, so the initial delay is rounded up.
        """
        workflow = self.overlord.workflow
        retry = workflow.retry
        run_timeout = min(MAX_RUN_SECONDS, workflow.timeouts.workflow_timeout + RUN_MARGIN_SECONDS)
        return {
            "RunTimeoutSeconds": str(run_timeout),
            # A little longer than the Task's timeout, so Step Functions' States.Timeout (retried) fires first;
            # the run starts no attempt it cannot finish before the Task's timeout.
            "RunFunctionTimeoutSeconds": str(run_timeout + TASK_FUNCTION_MARGIN_SECONDS),
            "CircuitCoolDownSeconds": str(self.llm.circuit_breaker.cool_down_seconds),
            "NotificationEmail": self.notifications.email or "",
            "WorkflowTimeoutSeconds": str(workflow.timeouts.workflow_timeout),
            "ArtifactsExpirationDays": str(self.bucket_days),
            "RetryMaxAttempts": str(retry.max_attempts - 1),
            "RetryIntervalSeconds": str(max(1, math.ceil(retry.initial_delay))),
            "RetryMaxDelaySeconds": str(max(1, math.ceil(retry.max_delay))),
            "RetryBackoffRate": str(retry.backoff_factor),
            "ClarificationTimeoutSeconds": str(workflow.clarification.timeout_seconds),
            "SweeperIntervalMinutes": str(workflow.sweeper.interval_minutes),
            # The sender retries webhook_retries times itself; SQS dead-letters a message it keeps failing
            # on (a crash, not a refusal) one receive later.
            "WebhookMaxReceives": str(self.async_.webhook_retries + 2),
            # IAM for exactly the configured model / key secret (empty: no such permission at all).
            "BedrockModelId": self.llm.model if self.llm.provider == "bedrock" else "",
            "BedrockFoundationModelId": foundation_model_of(self.llm.model) if self.llm.provider == "bedrock" else "",
            "OpenAIKeySecretArn": (self.llm.openai.api_key_secret_arn or "") if self.llm.provider == "openai" else "",
            "ApiReservedConcurrency": str(self.limits.api_reserved_concurrency or ""),
            "RecoveryReservedConcurrency": str(self.limits.recovery_reserved_concurrency or ""),
            # The JWT authorizer's issuer and audiences (empty: no JWT API at all).
            "JwtIssuer": self.auth.jwt.issuer if self.auth.jwt else "",
            "JwtAudiences": ",".join(self.auth.jwt.audiences) if self.auth.jwt else "",
            # Monitoring (README, "Monitoring").
            "TracingEnabled": "true" if self.observability.tracing else "false",
            "ApiSnapStart": "true" if self.api.snapstart else "false",
            "WorkflowLogLevel": self.observability.workflow_log_level.value,
            "AlarmEmail": self.observability.alarm_email or "",
            "WebhookSuccessAlarmPercent": str(self.observability.webhook_success_alarm_percent),
            "ApiP99AlarmMilliseconds": str(
                self.observability.api_p99_alarm_milliseconds
                or min(30_000, math.ceil(self.async_.sync_wait_seconds * 1000) + 3000)
            ),
            # IAM for exactly the secrets of yours that triggers name (the stack's own TriggerSecrets aside).
            "TriggerSecretArns": ",".join(
                sorted({d.verify.secret_arn for d in self.triggers.values() if d.verify and d.verify.secret_arn})
            ),
        }


# The geographies of Bedrock's system-defined cross-region inference profiles (``us.anthropic.claude-...``).
_PROFILE_GEOGRAPHY = re.compile(r"^(us|us-gov|eu|apac|jp|au|ca|global)\.(?=[a-z0-9-]+\.)")


def foundation_model_of(model_id: str) -> str:
    """The foundation model a cross-region inference profile id routes to; any other id as it is."""
    return _PROFILE_GEOGRAPHY.sub("", model_id, count=1)


def describe(error: ValidationError, *, prefix: str = "") -> str:
    """``where: reason`` for each problem, ``where`` the dotted path (after ``prefix``)."""
    lines = []
    for item in error.errors():
        where = ".".join([prefix] * bool(prefix) + [str(part) for part in item["loc"]]) or "(top level)"
        message = str(item["msg"]).removeprefix("Value error, ")
        # A section's own validator already names the entry (schedules.daily: ...), and a whole-formation check
        # names the keys it compares (spend.per_key.daily.usd: ...)
        named = message.startswith(f"{where}.") or (not item["loc"] and re.match(r"^[a-z_.]+: ", message))
        lines.append(message if named else f"{where}: {message}")
    return "; ".join(lines)


def parse_formation(data: Any, *, source: str = "formation") -> FormationConfig:
    """Validate an already-parsed formation document; errors name the bad key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return FormationConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe(error)}") from None


def load_formation(path: str | Path) -> FormationConfig:
    """Read a formation file: YAML (``.yaml``/``.yml``) with the trigger definitions of the ``triggers``
    folder beside it, or the JSON the layer build produces (which holds them)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    if path.suffix == ".json":
        return parse_formation(json.loads(text), source=str(path))
    import yaml  # only at build time and in the local stack: the layer ships JSON

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if isinstance(data, dict) and "triggers" in data:
        raise ConfigError(f"{path}: triggers: define each trigger as triggers/<name>.md beside the formation")
    from asyncagents.trigger_definitions import load_triggers

    triggers = load_triggers(path.parent / "triggers")
    if triggers:
        data = {**(data or {}), "triggers": triggers}
    return parse_formation(data, source=str(path))
