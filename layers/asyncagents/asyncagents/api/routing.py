"""What every route module shares: the resolver, the key policy the edge enforces, the ``route`` decorator,
the headers clients send, and the small helpers that turn records into answers.

Route modules do not use ``from __future__ import annotations``: Powertools reads a route's parameter types
from the wrapper ``route`` registers, whose module (this one) does not know the route's own models.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Header

from asyncagents import runtime
from asyncagents.api import edge, views
from asyncagents.api.openapi import ERROR_STATUSES, responses
from asyncagents.api.schemas import USER_ID_PATTERN
from asyncagents.domain.auth import Principal, acting_user
from asyncagents.domain.errors import BadRequest
from asyncagents.domain.records import RequestRecord

DEFAULT_USER_ID = "default"
logger = logging.getLogger(__name__)

app = APIGatewayHttpResolver(strip_prefixes=[], enable_validation=True)
policy = edge.KeyPolicy()
# Every route's path and method: what a path allows, for a 405's Allow header.
_ROUTES: list[tuple[re.Pattern[str], str]] = []


def allowed_methods(path: str) -> list[str]:
    """The methods some route serves ``path`` with (HEAD wherever GET is); empty for a path no route serves."""
    matching = [(pattern, method) for pattern, method in _ROUTES if pattern.match(path)]
    # A path that is a route's own (/v1/admin/requests/redrive) is that route's, not a parameter's value.
    static = [(pattern, method) for pattern, method in matching if "[^/]+" not in pattern.pattern]
    methods = {method for _, method in static or matching}
    return sorted(methods | ({"HEAD"} if "GET" in methods else set()))


UserIdHeader = Annotated[
    str | None,
    Header(
        alias="X-Muxi-User-Id",
        min_length=1,
        max_length=256,
        pattern=USER_ID_PATTERN,
        description="The end user the call acts for (requests are scoped by key and user).",
    ),
]
IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="X-Muxi-Idempotency-Key",
        min_length=1,
        max_length=256,
        description="Names the request when the body has no request_id: a retried POST returns the same request.",
    ),
]


def route(
    method: str, path: str, *, key: edge.KeyKind | None, ok: int = 200, model: str | None = None, **spec: Any
) -> Callable[[Callable[..., Response[Any]]], Callable[..., Response[Any]]]:
    """Declare a route, the key it needs (checked by the edge before routing, checked again by the route
    itself, shown in the document) and its answers."""
    _ROUTES.append((edge.path_pattern(path), method.upper()))
    if key is not None:
        policy.needs(method, path, key)
    errors = ERROR_STATUSES[key or "open"] + spec.pop("errors", ())
    also = spec.pop("also", None)
    security: list[dict[str, list[str]]] | None = [{f"{key}Key": []}] if key else spec.pop("security", None)
    answers = responses(ok, model, errors, also)
    register = app.route(path, method=method, security=security, responses=answers, **spec)

    def guarded(handler: Callable[..., Response[Any]]) -> Callable[..., Response[Any]]:
        if key is None:
            return register(handler)

        @functools.wraps(handler)
        def with_key(*args: Any, **kwargs: Any) -> Response[Any]:
            edge.authenticated_key(app.current_event.raw_event, key)
            return handler(*args, **kwargs)

        return register(with_key)

    return guarded


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)


def public(record: RequestRecord) -> dict[str, Any]:
    """A record as clients see it, with presigned URLs for the files it produced."""
    current = runtime.current()
    return views.request_body(record, current.artifact_url(), current.stored_text(), current.cost_of())


def principal(user_header: str | None, body_user: str | None = None) -> Principal:
    """The caller: their key and the end user, from ``X-Muxi-User-Id`` or the body (never both differing)."""
    if user_header and body_user and user_header != body_user:
        raise BadRequest(
            "user_id: the body and the X-Muxi-User-Id header name different users", details={"field": "user_id"}
        )
    key = edge.authenticated_key(app.current_event.raw_event, "client")
    user = acting_user(key, user_header or body_user, DEFAULT_USER_ID)
    return Principal(key_id=key.key_id, user_id=user, limits=key.limits)
