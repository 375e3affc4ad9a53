"""Domain errors and invalid input → HTTP answers, in one place. Every error body is ``{code, message, details}``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response

from asyncagents.domain import errors

logger = logging.getLogger(__name__)


class PayloadTooLarge(errors.AsyncAgentsError):
    code = "payload_too_large"


STATUS_BY_ERROR: dict[type[errors.AsyncAgentsError], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidData: 422,
    errors.StaleWrite: 409,
    PayloadTooLarge: 413,
    errors.TooManyRequests: 429,
    errors.Unavailable: 503,
}

# What a header must be, said the way a person would (pydantic's pattern messages are not for people).
_HEADER_REASONS = {
    "x-muxi-user-id": "must be 1-256 printable characters",
    "x-muxi-idempotency-key": "must be 1-256 characters",
}
# Where a request carries what failed validation, and the name clients know it by.
_LOCATIONS = {"body": "body", "query": "query", "path": "path", "header": "header"}


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": dict(details or {})}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(error_body(code, message, details)),
        headers=headers,
    )


def status_of(error: errors.AsyncAgentsError) -> int:
    for error_type in type(error).__mro__:
        if error_type in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[error_type]
    return 500


def from_domain_error(error: errors.AsyncAgentsError) -> Response:
    status = status_of(error)
    if status == 500:
        logger.exception("unmapped domain error", exc_info=error)
        return error_response(500, "internal_error", "the server could not complete the request")
    details = {k: v for k, v in error.details.items() if k != "current"}
    return error_response(status, error.code, error.message, details, headers=retry_after(error))


def retry_after(error: errors.AsyncAgentsError) -> dict[str, str] | None:
    """The ``Retry-After`` header a refusal for a limit carries (whole seconds)."""
    if isinstance(error, errors.TooManyRequests | errors.CircuitOpen):
        return {"Retry-After": str(error.retry_after_seconds)}
    return None


def from_validation_errors(problems: Iterable[Mapping[str, Any]]) -> Response:
    """Validation errors (pydantic's shape: ``loc``, ``type``, ``msg``) as the answer clients get: 400 for
    a body that is not a JSON object or a bad header, otherwise 422 naming each field and the reason."""
    items = list(problems)
    for item in items:
        location, field = _split(item.get("loc", ()))
        kind = str(item.get("type", ""))
        if location == "body" and kind == "json_invalid":
            reason = (item.get("ctx") or {}).get("error") or item.get("msg", "")
            return error_response(400, "bad_request", f"body: malformed JSON ({reason})", {"field": "body"})
        if location == "body" and not field and kind in {"missing", "model_type", "dict_type", "model_attributes_type"}:
            message = "a JSON object is required" if kind == "missing" else "must be a JSON object"
            return error_response(400, "bad_request", f"body: {message}", {"field": "body"})
        if location == "header":
            name = _header_name(field)
            reason = _HEADER_REASONS.get(field.lower()) or _reason(item)
            return error_response(400, "bad_request", f"{name}: {reason}", {"header": name})
    listed = []
    for item in items:
        location, field = _split(item.get("loc", ()))
        listed.append({"field": field or location, "reason": _reason(item), "type": str(item.get("type", ""))})
    where = _split(items[0].get("loc", ()))[0] if items else "body"
    summary = "; ".join(f"{p['field']}: {p['reason']}" for p in listed)
    return error_response(422, "validation_error", f"invalid {where}: {summary}", {"errors": listed})


def _split(loc: Iterable[Any]) -> tuple[str, str]:
    parts = [str(part) for part in loc]
    if parts and parts[0] in _LOCATIONS:
        return _LOCATIONS[parts[0]], ".".join(parts[1:])
    return "body", ".".join(parts)


def _reason(item: Mapping[str, Any]) -> str:
    kind = item.get("type")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "field required"
    return str(item.get("msg", kind)).removeprefix("Value error, ")


def _header_name(field: str) -> str:
    return "-".join(part.capitalize() for part in field.split("-"))
