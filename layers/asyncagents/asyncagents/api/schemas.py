"""Request bodies and parameters accepted by the HTTP API, validated at the edge."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
# Bytes, not characters: the record holds the message, its plan and its answer within DynamoDB's 400 KB.
MAX_MESSAGE_BYTES = 32 * 1024

RequestId = Annotated[str, StringConstraints(pattern=REQUEST_ID_PATTERN)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]


class ChatRequest(BaseModel):
    """``POST /v1/chat``. Unknown fields are rejected so that a misspelt option is never ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_BYTES)
    async_: bool | None = Field(default=None, alias="async")
    threshold_seconds: float | None = Field(default=None, gt=0, le=86_400)
    webhook_url: str | None = Field(default=None, max_length=2048)
    request_id: RequestId | None = None
    user_id: UserId | None = None
    session_id: str | None = Field(default=None, min_length=1, max_length=256)
    stream: bool | None = None

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain text, not only whitespace")
        if len(value.encode()) > MAX_MESSAGE_BYTES:
            raise ValueError(f"must be at most {MAX_MESSAGE_BYTES} bytes (UTF-8)")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        return value

    @field_validator("stream")
    @classmethod
    def _no_streaming(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("streaming is not supported; use async with polling or a webhook")
        return value


MAX_ANSWER_BYTES = 8 * 1024  # answers live on the request item (400 KB at most, all questions together)


class ClarificationAnswer(BaseModel):
    """``POST /v1/requests/{id}/clarification``: the answer to the question the request waits on."""

    model_config = ConfigDict(extra="forbid")
    answer: str = Field(min_length=1, max_length=MAX_ANSWER_BYTES)
    clarification_request_id: str | None = Field(None, pattern=r"^clr_[0-9a-f]{16}$")

    @field_validator("answer")
    @classmethod
    def _answer_fits(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value.encode()) > MAX_ANSWER_BYTES:
            raise ValueError(f"must be at most {MAX_ANSWER_BYTES} bytes of UTF-8")
        return value
