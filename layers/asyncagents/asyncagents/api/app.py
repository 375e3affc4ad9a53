"""Routes of the HTTP API. Bodies are flat JSON as seeds/000 shows; errors are ``{code, message, details}``.

Routes are typed: Powertools validates bodies, query strings and headers against the pydantic models in
``schemas`` and generates the OpenAPI document from the same signatures. ``handle`` is the function's entry:
it admits the event first (``edge``: JSON bodies, size, the caller's key), then routes it.
"""

import logging
from dataclasses import asdict
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import ValidationError

from asyncagents import runtime
from asyncagents.api import (
    console_routes,
    edge,
    estimator_routes,
    event_routes,
    event_streams,
    monitoring_routes,
    schedule_routes,
    spend_routes,
    trigger_routes,
    views,
)
from asyncagents.api.errors import error_response, from_domain_error, from_validation_errors
from asyncagents.api.routing import (
    DEFAULT_USER_ID,
    IdempotencyHeader,
    UserIdHeader,
    allowed_methods,
    app,
    json_response,
    policy,
    principal,
    public,
    route,
)
from asyncagents.api.schemas import USER_ID_PATTERN, ChatRequest, ClarificationAnswer, NewKey, RedriveRequest
from asyncagents.domain.auth import KeyLimits, Principal
from asyncagents.domain.errors import AsyncAgentsError
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import iso

# The route modules register their routes on import; named here so that the API has them all.
__all__ = [
    "app",
    "console_routes",
    "estimator_routes",
    "event_routes",
    "handle",
    "monitoring_routes",
    "policy",
    "schedule_routes",
    "spend_routes",
    "trigger_routes",
]
logger = logging.getLogger(__name__)


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """ApiFunction's entry: admit the event (or answer it), then route it."""
    current = runtime.current
    http = (event.get("requestContext") or {}).get("http") or {}
    head = str(http.get("method", "")).upper() == "HEAD"
    if head:  # HEAD is GET without the body, wherever GET is
        http["method"] = "GET"
    refused = edge.admit(
        event,
        policy,
        lambda: current().key_service,
        lambda: current().formation.formation_id,
        _user_claim,
    )
    response = refused if refused is not None else app.resolve(event, context)
    if int(response.get("statusCode", 200)) >= 400 and event_streams.wants_event_stream(edge.header(event, "accept")):
        response = event_routes.as_event_stream_error(response)
    if head:
        http["method"] = "HEAD"
        response = {**response, "body": "", "isBase64Encoded": False}
    _audit_admin_call(event, int(response.get("statusCode", 200)))
    return response


def _audit_admin_call(event: dict[str, Any], status: int) -> None:
    """An admin key's call leaves a record (``domain.audit``); no other call does."""
    accepted = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda") or {}
    if accepted.get("kind") != "admin":
        return
    http = (event.get("requestContext") or {}).get("http") or {}
    query = event.get("rawQueryString") or ""
    runtime.current().audit.record(
        key_id=str(accepted["key_id"]),
        action=f"{http.get('method', '')} {http.get('path', '')}" + (f"?{query}" if query else ""),
        status=status,
        request_id=str((event.get("requestContext") or {}).get("requestId") or ""),
    )


def _user_claim() -> str | None:
    """The claim naming the end user in a verified token; None where end users are not verified (``auth.jwt``)."""
    jwt = runtime.current().formation.auth.jwt
    return jwt.user_claim if jwt else None


@route("GET", "/v1/health", key=None, summary="Liveness")
def health() -> Response[Any]:
    from asyncagents import __version__

    return json_response(200, {"status": "ok", "version": __version__})


@route("GET", "/v1/openapi.json", key=None, summary="This API's OpenAPI 3.1 document")
def openapi() -> Response[Any]:
    from asyncagents.api.openapi import document  # rarely called: keep it off the cold path

    return Response(status_code=200, content_type="application/json", body=document(app))


@route(
    "POST",
    "/v1/chat",
    key="client",
    ok=202,
    model="AcceptedView",
    also={200: "RequestView"},
    errors=(409, 413, 429, 503),
    summary="Submit a request (200: a sync request's answer, or text/event-stream with stream: true)",
)
def chat(
    request: ChatRequest, user_id: UserIdHeader = None, idempotency_key: IdempotencyHeader = None
) -> Response[Any]:
    caller = principal(user_id, request.user_id)
    service = runtime.current().request_service
    submission = service.submit(caller, request.to_domain(), idempotency_key=idempotency_key)
    if request.stream:
        return event_routes.chat_stream(caller, submission)
    record = submission.record
    if submission.finished:
        return json_response(200, public(record))
    return json_response(202, views.accepted_body(record), headers={"Location": views.poll_url(record.request_id)})


PageLimit = Annotated[int, Query(ge=1, le=100)]
PageCursor = Annotated[
    str | None,
    Query(min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9_-]+$", description="next_cursor of a page"),
]


@route("GET", "/v1/requests", key="client", model="RequestList", summary="The caller's requests, newest first")
def list_requests(
    limit: PageLimit = 20,
    cursor: PageCursor = None,
    status: Annotated[Status | None, Query()] = None,
    user_id: UserIdHeader = None,
) -> Response[Any]:
    records, next_cursor = runtime.current().request_service.list(
        principal(user_id), limit=limit, cursor=cursor, status=status
    )
    return json_response(
        200, {"requests": [public(r) for r in records], "count": len(records), "next_cursor": next_cursor}
    )


@route("GET", "/v1/requests/<request_id>", key="client", model="RequestView", errors=(404,), summary="A request")
def get_request(request_id: str, user_id: UserIdHeader = None) -> Response[Any]:
    return json_response(200, public(runtime.current().request_service.get(principal(user_id), request_id)))


@route("DELETE", "/v1/requests/<request_id>", key="client", errors=(404, 409), summary="Cancel a request")
def cancel_request(request_id: str, user_id: UserIdHeader = None) -> Response[Any]:
    return _cancel(principal(user_id), request_id, by="user")


def _cancel(owner: Principal, request_id: str, *, by: str) -> Response[Any]:
    """Cancel and answer as seeds/000 shows (a second cancel is a 200 saying so)."""
    record, already = runtime.current().request_service.cancel(owner, request_id)
    message = "Request already cancelled" if already else f"Request cancelled by {by}"
    return json_response(
        200, {"request_id": record.request_id, "status": "cancelled", "message": message, "content": ""}
    )


@route(
    "POST",
    "/v1/requests/<request_id>/clarification",
    key="client",
    ok=202,
    model="RequestView",
    errors=(404, 409, 413, 503),
    summary="Answer the question a request waits on, and resume it",
)
def answer_clarification(request_id: str, body: ClarificationAnswer, user_id: UserIdHeader = None) -> Response[Any]:
    record = runtime.current().request_service.answer(
        principal(user_id), request_id, body.answer, clarification_id=body.clarification_request_id
    )
    return json_response(202, public(record), headers={"Location": views.poll_url(record.request_id)})


@route("POST", "/v1/admin/keys", key="admin", ok=201, summary="Create an API key (its secret is shown once)")
def create_key(body: NewKey) -> Response[Any]:
    own = KeyLimits(requests_per_second=body.requests_per_second, max_active_requests=body.max_active_requests)
    created = runtime.current().key_service.create(
        body.kind,
        label=body.label,
        user_id=body.user_id,
        expires_at=body.expires_at,
        webhook_secret=body.webhook_secret,
        limits=own,
    )
    answer: dict[str, Any] = {
        "key_id": created.key_id,
        "kind": created.kind,
        "key": created.secret,
        "user_id": created.user_id,
        "expires_at": iso(created.expires_at) if created.expires_at else None,
    }
    if created.webhook_secret:
        answer["webhook_secret"] = created.webhook_secret
    answer.update(own.stored())
    return json_response(201, answer)


@route("GET", "/v1/admin/keys", key="admin", model="KeyList", summary="The API keys, newest first (no secrets)")
def list_keys(limit: PageLimit = 50, cursor: PageCursor = None) -> Response[Any]:
    keys, next_cursor = runtime.current().key_service.list(limit=limit, cursor=cursor)
    listed = [asdict(key) for key in keys]
    return json_response(200, {"keys": listed, "count": len(listed), "next_cursor": next_cursor})


@route("GET", "/v1/admin/audit", key="admin", model="AuditList", summary="What admin keys did, newest first")
def list_audit(limit: PageLimit = 50, cursor: PageCursor = None) -> Response[Any]:
    entries, next_cursor = runtime.current().audit.page(limit=limit, cursor=cursor)
    listed = [asdict(entry) for entry in entries]
    return json_response(200, {"entries": listed, "count": len(listed), "next_cursor": next_cursor})


@route("DELETE", "/v1/admin/keys/<key_id>", key="admin", errors=(404,), summary="Revoke an API key")
def revoke_key(key_id: str) -> Response[Any]:
    runtime.current().key_service.revoke(key_id)
    return json_response(200, {"key_id": key_id, "revoked": True})


OwnerKeyId = Annotated[
    str,
    Query(min_length=1, max_length=80, description="The key that owns it; trigger:<name> for a provider's delivery"),
]
OwnerUserId = Annotated[str, Query(min_length=1, max_length=256, pattern=USER_ID_PATTERN)]


@route("GET", "/v1/admin/requests/<request_id>", key="admin", model="RequestView", errors=(404,), summary="Any request")
def admin_get_request(request_id: str, key_id: OwnerKeyId, user_id: OwnerUserId = DEFAULT_USER_ID) -> Response[Any]:
    principal = Principal(key_id=key_id, user_id=user_id)
    return json_response(200, public(runtime.current().request_service.get(principal, request_id)))


@route("DELETE", "/v1/admin/requests/<request_id>", key="admin", errors=(404, 409), summary="Cancel any request")
def admin_cancel_request(request_id: str, key_id: OwnerKeyId, user_id: OwnerUserId = DEFAULT_USER_ID) -> Response[Any]:
    return _cancel(Principal(key_id=key_id, user_id=user_id), request_id, by="an admin")


@route(
    "POST",
    "/v1/admin/requests/redrive",
    key="admin",
    ok=202,
    model="RequestView",
    errors=(404, 409),
    summary="Resume a failed request from its checkpoints",
)
def redrive_request(body: RedriveRequest) -> Response[Any]:
    principal = Principal(key_id=body.key_id, user_id=body.user_id)
    record = runtime.current().request_service.redrive(principal, body.request_id)
    return json_response(202, {**public(record), "redrive_count": record.redrive_count})


@route("GET", "/v1/admin/webhooks/dead-letters", key="admin", summary="Webhooks that could not be delivered")
def list_dead_letters() -> Response[Any]:
    return json_response(200, runtime.current().dead_letters.peek(10))


@route("POST", "/v1/admin/webhooks/dead-letters/redrive", key="admin", ok=202, summary="Deliver dead letters again")
def redrive_dead_letters() -> Response[Any]:
    return json_response(202, runtime.current().dead_letters.redrive())


@app.exception_handler(AsyncAgentsError)
def _domain_error(error: AsyncAgentsError) -> Response[Any]:
    return from_domain_error(error)


@app.exception_handler(RequestValidationError)
def _request_validation_error(error: RequestValidationError) -> Response[Any]:
    return from_validation_errors(error.errors())


@app.exception_handler(ValidationError)
def _validation_error(error: ValidationError) -> Response[Any]:
    return from_validation_errors(error.errors(include_url=False))


@app.not_found
def _not_found(_: NotFoundError) -> Response[Any]:
    method, path = app.current_event.http_method, app.current_event.path
    allowed = allowed_methods(path)
    if not allowed:
        return error_response(404, "not_found", f"no route for {method} {path}")
    if method == "OPTIONS":
        return Response(status_code=204, body="", headers={"Allow": ", ".join([*allowed, "OPTIONS"])})
    return error_response(
        405,
        "method_not_allowed",
        f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}",
        {"method": method, "allowed": allowed},
        headers={"Allow": ", ".join(allowed)},
    )


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response[Any]:
    logger.exception("unhandled error", exc_info=error)
    return error_response(500, "internal_error", "the server could not complete the request")
