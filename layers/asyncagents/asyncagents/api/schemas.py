"""Request bodies and parameters accepted by the HTTP API, validated at the edge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from asyncagents.domain.records import REQUEST_ID_PATTERN
from asyncagents.domain.requests.submit import MAX_MESSAGE_BYTES, NewRequest
from asyncagents.model_base import LazyModel

if TYPE_CHECKING:
    from asyncagents.domain.schedules.jobs import NewJob

# Patterns the validators below enforce, so that the served OpenAPI document describes them too.
NOT_BLANK_PATTERN = r"\S"
WEBHOOK_URL_PATTERN = r"^[hH][tT][tT][pP][sS]?://[^/?#@\s]+"

RequestId = Annotated[str, StringConstraints(pattern=REQUEST_ID_PATTERN)]
USER_ID_PATTERN = r"^[^\x00-\x1f]+$"
UserId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=USER_ID_PATTERN)]


# Every body: unknown fields refused (a misspelt option is never ignored), JSON types taken as they are (no "yes"
# for true, no "10" for 10), and only finite numbers (NaN and Infinity are not JSON, though parsers accept them).
STRICT_BODY = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def checked_message(value: str) -> str:
    """A message a request may carry (a chat's, a job's): some text, at most ``MAX_MESSAGE_BYTES`` of UTF-8."""
    if not value.strip():
        raise ValueError("must contain text, not only whitespace")
    if len(value.encode()) > MAX_MESSAGE_BYTES:
        raise ValueError(f"must be at most {MAX_MESSAGE_BYTES} bytes (UTF-8)")
    return value


class ChatRequest(LazyModel):
    """``POST /v1/chat``. Unknown fields are rejected so that a misspelt option is never ignored."""

    model_config = ConfigDict(
        **STRICT_BODY,
        populate_by_name=True,
        # A streamed request runs asynchronously: stream true with async false is refused.
        json_schema_extra={
            "not": {
                "required": ["stream", "async"],
                "properties": {"stream": {"const": True}, "async": {"const": False}},
            }
        },
    )

    message: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_BYTES,
        json_schema_extra={"pattern": NOT_BLANK_PATTERN},
        description=f"The task. Not blank; at most {MAX_MESSAGE_BYTES} bytes of UTF-8.",
    )
    async_: bool | None = Field(default=None, alias="async")
    threshold_seconds: float | None = Field(default=None, gt=0, le=86_400)
    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        # Enforced by the validator below (with a clearer message than a pattern's); described here.
        json_schema_extra={"format": "uri", "pattern": WEBHOOK_URL_PATTERN},
        description="Where the result is POSTed (signed). https to a public address unless the formation allows more.",
    )
    request_id: RequestId | None = None
    user_id: UserId | None = None
    session_id: str | None = Field(default=None, min_length=1, max_length=256)
    stream: StrictBool | None = Field(
        default=None,
        description="Answer text/event-stream in MUXI's format: the request id first, then its progress, then its "
        "result. The request itself runs asynchronously (it survives the stream; poll or follow its events).",
    )

    def to_domain(self) -> NewRequest:
        if self.stream:
            return NewRequest(
                message=self.message,
                async_=True,
                forced_by="stream",
                threshold_seconds=self.threshold_seconds,
                webhook_url=self.webhook_url,
                request_id=self.request_id,
                session_id=self.session_id,
            )
        return NewRequest(
            message=self.message,
            async_=self.async_,
            threshold_seconds=self.threshold_seconds,
            webhook_url=self.webhook_url,
            request_id=self.request_id,
            session_id=self.session_id,
        )

    @field_validator("stream")
    @classmethod
    def _stream_runs_async(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value and info.data.get("async_") is False:
            raise ValueError("a streamed request runs asynchronously; leave async unset or true")
        return value

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return checked_message(value)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        return value


MAX_ANSWER_BYTES = 8 * 1024  # answers live on the request item (400 KB at most, all questions together)


class ClarificationAnswer(LazyModel):
    """``POST /v1/requests/{id}/clarification``: the answer to the question the request waits on."""

    model_config = ConfigDict(**STRICT_BODY)
    answer: str = Field(
        min_length=1,
        max_length=MAX_ANSWER_BYTES,
        json_schema_extra={"pattern": NOT_BLANK_PATTERN},
        description=f"Not blank; at most {MAX_ANSWER_BYTES} bytes of UTF-8.",
    )
    clarification_request_id: str | None = Field(None, pattern=r"^clr_[0-9a-f]{16}$")

    @field_validator("answer")
    @classmethod
    def _answer_fits(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value.encode()) > MAX_ANSWER_BYTES:
            raise ValueError(f"must be at most {MAX_ANSWER_BYTES} bytes of UTF-8")
        return value


def _whole(value: Any) -> Any:
    """JSON has one number type: 479.0 is the integer 479 (JSON Schema says so too); 479.5 and "479" are not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A key's own limit: a whole number from 0 (none) to the formation's own bounds.
KeyLimitValue = Annotated[int, Field(ge=0, le=1000), BeforeValidator(_whole)]


class NewKey(LazyModel):
    """``POST /v1/admin/keys``."""

    model_config = ConfigDict(**STRICT_BODY)
    kind: str = Field("client", pattern="^(client|admin)$")
    label: str = Field("", max_length=200)
    user_id: UserId | None = Field(None, description="Bind a client key to one end user: it acts for them only.")
    # strict=False: a JSON body carries the time as a string (the model is otherwise strict about types)
    expires_at: AwareDatetime | None = Field(
        None, strict=False, description="ISO 8601 with a zone; past it the key is refused."
    )
    webhook_secret: bool = Field(
        False, description="A client key's own webhook signing secret (shown once), instead of the stack's."
    )
    requests_per_second: KeyLimitValue | None = Field(
        None, description="This key's own limits.requests_per_second (0: none); unset: the formation's."
    )
    max_active_requests: KeyLimitValue | None = Field(
        None, description="This key's own limits.max_active_requests (0: none); unset: the formation's."
    )


class RedriveRequest(LazyModel):
    """``POST /v1/admin/requests/redrive``: which failed request to resume (by its owner and id)."""

    model_config = ConfigDict(**STRICT_BODY)
    key_id: str = Field(min_length=1, max_length=64)
    user_id: UserId = "default"
    request_id: RequestId


class JobFields(LazyModel):
    """What a job may say beyond MUXI's fields."""

    model_config = ConfigDict(**STRICT_BODY)
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_BYTES, json_schema_extra={"pattern": r"\S"})
    title: str = Field("", max_length=200)
    timezone: str = Field("UTC", min_length=1, max_length=64, description="IANA time zone (Europe/Paris)")
    session_id: str | None = Field(None, min_length=1, max_length=256)
    webhook_url: str | None = Field(None, max_length=2048, pattern=WEBHOOK_URL_PATTERN)
    flexible_window_minutes: int = Field(0, ge=0, le=1440)
    enabled: bool = True

    @field_validator("message")
    @classmethod
    def _message(cls, value: str) -> str:
        return checked_message(value)


class NewJobBody(JobFields):
    """``POST /v1/scheduler/jobs``: MUXI's ``{type, schedule, message, user_id}`` (``run_at`` too, for a
    one-time job), and ours."""

    type: Literal["one_time", "recurring"] = "recurring"
    schedule: str | None = Field(
        None, min_length=1, max_length=256, description="cron (0 9 * * *), cron(...), rate(...) or an ISO time"
    )
    run_at: str | None = Field(None, min_length=1, max_length=64, description="one_time: an ISO 8601 time")
    user_id: UserId = "default"
    model_config = ConfigDict(
        **STRICT_BODY, json_schema_extra={"anyOf": [{"required": ["schedule"]}, {"required": ["run_at"]}]}
    )

    @model_validator(mode="after")
    def _when(self) -> NewJobBody:
        if self.schedule and self.run_at and self.schedule != self.run_at:
            raise ValueError("give the time as schedule or as run_at, not both")
        if not (self.schedule or self.run_at):
            raise ValueError("schedule: required (a cron expression, a rate, or for one_time an ISO time)")
        return self

    def to_domain(self) -> NewJob:
        from asyncagents.domain.schedules.jobs import NewJob  # the scheduler's routes are rarely called

        return NewJob(
            type=self.type,
            schedule=str(self.schedule or self.run_at),
            message=self.message,
            user_id=self.user_id,
            timezone=self.timezone,
            title=self.title,
            session_id=self.session_id,
            webhook_url=self.webhook_url,
            flexible_window_minutes=self.flexible_window_minutes,
            enabled=self.enabled,
        )


class JobChanges(LazyModel):
    """``PUT /v1/scheduler/jobs/{id}``: what changes (MUXI's ``message``, ``schedule``, ``title``, and ours)."""

    model_config = ConfigDict(**STRICT_BODY)
    message: str | None = Field(None, min_length=1, max_length=MAX_MESSAGE_BYTES)
    schedule: str | None = Field(None, min_length=1, max_length=256)
    title: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, min_length=1, max_length=64)
    session_id: str | None = Field(None, min_length=1, max_length=256)
    webhook_url: str | None = Field(None, max_length=2048, pattern=WEBHOOK_URL_PATTERN)
    enabled: bool | None = None

    @field_validator("message")
    @classmethod
    def _message(cls, value: str | None) -> str | None:
        return value if value is None else checked_message(value)
