"""Domain errors → HTTP answers, in one place. Every error body is ``{code, message, details}``."""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import ValidationError

from asyncagents.domain import errors

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.AsyncAgentsError], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.StaleWrite: 409,
    errors.Unavailable: 503,
}


class PayloadTooLarge(errors.AsyncAgentsError):
    code = "payload_too_large"


STATUS_BY_ERROR[PayloadTooLarge] = 413


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    body = {"code": code, "message": message, "details": details or {}}
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def from_domain_error(error: errors.AsyncAgentsError) -> Response:
    for error_type in type(error).__mro__:
        if error_type in STATUS_BY_ERROR:
            details = {k: v for k, v in error.details.items() if k != "current"}
            return error_response(STATUS_BY_ERROR[error_type], error.code, error.message, details)
    logger.exception("unmapped domain error", exc_info=error)
    return error_response(500, "internal_error", "the server could not complete the request")


def from_validation_error(error: ValidationError, *, location: str = "body") -> Response:
    """Pydantic's errors as a 422 naming each field and the reason."""
    problems = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or location
        if item["type"] == "extra_forbidden":
            reason = "unknown field"
        elif item["type"] == "missing":
            reason = "field required"
        else:
            reason = str(item["msg"]).removeprefix("Value error, ")
        problems.append({"field": field, "reason": reason, "type": item["type"]})
    summary = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
    return error_response(422, "validation_error", f"invalid {location}: {summary}", {"errors": problems})
