"""The SDK's exceptions: every error answer of the API becomes an ``ApiError`` carrying its status, ``code``,
``message`` and ``details``; a request that ended badly is a ``RequestFailed`` (``wait(...).raise_for_status()``)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncagents.client._models import Request


class AsyncAgentsError(Exception):
    """Every exception the SDK raises."""


class ApiError(AsyncAgentsError):
    """An error answer of the API: ``status``, and the body's ``code``, ``message`` and ``details``."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class BadRequestError(ApiError):
    """400: malformed JSON, a bad header or cursor."""


class AuthenticationError(ApiError):
    """401: no key, or an unknown or revoked one."""


class PermissionDeniedError(ApiError):
    """403: the wrong kind of key."""


class NotFoundError(ApiError):
    """404: unknown, expired, or another user's."""


class ConflictError(ApiError):
    """409: the request's state does not allow it (or its id was used with another body)."""


class PayloadTooLargeError(ApiError):
    """413: the body is over the API's limit."""


class UnprocessableError(ApiError):
    """422: a field failed validation; ``details["errors"]`` names each."""


class RateLimitedError(ApiError):
    """429: a limit of the key is reached (``details["limit"]`` names it); ``retry_after_seconds`` says when to
    try again (nothing of the refused call was recorded)."""

    @property
    def retry_after_seconds(self) -> int:
        return int(self.details.get("retry_after_seconds") or 1)


class ServiceUnavailableError(ApiError):
    """503: a service the API depends on failed; the same call, repeated, completes it."""


class ServerError(ApiError):
    """Another 5xx."""


class ConnectionFailed(AsyncAgentsError):
    """The API could not be reached (refused, unresolvable, timed out)."""


class WaitTimeout(AsyncAgentsError):
    """``wait`` gave up before the request ended (the request goes on)."""

    def __init__(self, request_id: str, seconds: float) -> None:
        super().__init__(f"request {request_id} did not end within {seconds:g}s (it goes on)")
        self.request_id = request_id


class RequestFailed(AsyncAgentsError):
    """The request ended without a result: ``failed`` (``error`` says why) or ``cancelled``."""

    def __init__(self, request: Request) -> None:
        reason = request.error.message if request.error else request.message
        super().__init__(f"request {request.request_id} {request.status}: {reason}")
        self.request = request
        self.error = request.error


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


# The status an error has when it arrives inside a stream (an ``event: error`` frame has no status of its own).
_STATUS_OF_CODE = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "payload_too_large": 413,
    "validation_error": 422,
    "rate_limited": 429,
    "service_unavailable": 503,
}


def error_from_frame(data: str) -> ApiError:
    """The exception for an ``event: error`` frame received in a stream."""
    try:
        body = json.loads(data)
    except ValueError:
        body = {}
    code = str(body.get("code") or body.get("type") or "") if isinstance(body, dict) else ""
    return error_from_answer(_STATUS_OF_CODE.get(code, 500), "text/event-stream", f"data: {data}")


def unexpected_answer(status: int, what: str) -> ApiError:
    """An answer that is not what this API sends (another server at that address, a proxy's page)."""
    return ApiError(status, "unexpected_response", f"{what}: is the API URL right?")


def error_from_answer(status: int, content_type: str, text: str) -> ApiError:
    """The exception for an error answer: JSON ``{code, message, details}``, or the same as an SSE
    ``event: error`` frame (what a stream request gets), or anything else (a gateway's own answer)."""
    body: Any = None
    if "text/event-stream" in content_type:
        # SSE lines end at CR or LF only (str.splitlines would also cut at U+2028 inside the JSON)
        lines = [line[5:].strip() for line in re.split(r"\r\n|\r|\n", text) if line.startswith("data:")]
        text = "\n".join(lines)
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    if isinstance(body, dict) and "code" in body:
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        return kind(status, str(body["code"]), str(body.get("message") or body.get("error") or ""), details)
    message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else (text or "no body")
    return kind(status, "http_error", message[:500])
