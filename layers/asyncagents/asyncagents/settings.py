"""The environment a function reads, as one validated model (set by the template, or by the local stack).

Read once per container, on first use, never at import time. A setting that a call needs but the function
was not given fails with ``ConfigError`` naming the environment variable.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import AliasChoices, ConfigDict, Field, ValidationError

from asyncagents.domain.errors import ConfigError
from asyncagents.model_base import LazyModel


class FunctionSettings(LazyModel):
    """Each field's alias is its environment variable."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    state_machine_arn: str | None = Field(None, alias="STATE_MACHINE_ARN")
    formation_path: str = Field("/opt/formation.json", alias="FORMATION_PATH")
    key_cache_seconds: float = Field(60.0, alias="KEY_CACHE_SECONDS", ge=0)
    aws_region: str | None = Field(None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    webhook_queue_url: str | None = Field(None, alias="WEBHOOK_QUEUE_URL")
    webhook_dlq_url: str | None = Field(None, alias="WEBHOOK_DLQ_URL")
    webhook_secret_arn: str | None = Field(None, alias="WEBHOOK_SECRET_ARN")
    trigger_secrets_arn: str | None = Field(None, alias="TRIGGER_SECRETS_ARN")
    schedule_group: str | None = Field(None, alias="SCHEDULE_GROUP")
    scheduler_role_arn: str | None = Field(None, alias="SCHEDULER_ROLE_ARN")
    schedule_target_arn: str | None = Field(None, alias="SCHEDULE_TARGET_ARN")
    schedule_dlq_arn: str | None = Field(None, alias="SCHEDULE_DLQ_ARN")
    dlq_redrive_strategy: str = Field("move-task", alias="DLQ_REDRIVE_STRATEGY", pattern="^(move-task|copy)$")
    artifacts_bucket: str | None = Field(None, alias="ARTIFACTS_BUCKET")
    notice_topic_arn: str | None = Field(None, alias="NOTICE_TOPIC_ARN")
    # Metrics: the namespace, and the stack's name as their one dimension (several stacks share an account).
    metrics_namespace: str = Field("asyncagents", alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1)
    stack_name: str = Field("asyncagents", alias="STACK_NAME", min_length=1)
    lambda_function_name: str | None = Field(None, alias="AWS_LAMBDA_FUNCTION_NAME")  # set by Lambda alone

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> FunctionSettings:
        # An empty variable means unset (templates pass "" for optional parameters).
        present = {name: value for name, value in environ.items() if value != ""}
        try:
            return cls.model_validate(present)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ConfigError(f"function environment: {problems}") from None

    def require(self, field: str) -> str:
        """The value of an optional setting this call cannot do without."""
        value = getattr(self, field)
        if not value:
            alias = type(self).model_fields[field].alias or field.upper()
            raise ConfigError(f"function environment: {alias} is not set")
        return str(value)
