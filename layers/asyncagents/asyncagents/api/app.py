"""Routes of the HTTP API. Bodies are flat JSON as seeds/000 shows; errors are ``{code, message, details}``.

Bodies are parsed as JSON whatever the Content-Type says (the seeds' own ``curl -d`` examples send
form-encoded headers with JSON bodies) and validated with the pydantic models in ``schemas``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from asyncagents import runtime
from asyncagents.api.errors import PayloadTooLarge, error_response, from_domain_error, from_validation_error
from asyncagents.api.schemas import ChatRequest, ClarificationAnswer, UserId
from asyncagents.domain.errors import AsyncAgentsError, BadRequest
from asyncagents.domain.records import RequestRecord, Status
from asyncagents.domain.requests import Principal, accepted_body, poll_url

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
DEFAULT_USER_ID = "default"

app = APIGatewayHttpResolver(strip_prefixes=[])


class _UserIdHeader(BaseModel):
    user_id: UserId


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field("client", pattern="^(client|admin)$")
    label: str = Field("", max_length=200)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, min_length=1, max_length=2048)
    status: Status | None = None


def _public(record: RequestRecord) -> dict[str, Any]:
    """A record as clients see it, with presigned URLs for the files it produced."""
    return record.to_public(artifact_url=runtime.artifact_url(), stored_text=runtime.stored_text())


def _header(name: str) -> str | None:
    headers = app.current_event.headers or {}
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)


def _body() -> dict[str, Any]:
    try:
        raw = app.current_event.decoded_body or ""
    except UnicodeDecodeError:
        raise BadRequest("body: must be UTF-8 encoded JSON", details={"field": "body"}) from None
    if len(raw.encode()) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes", details={"limit_bytes": MAX_BODY_BYTES})
    if not raw.strip():
        raise BadRequest("body: a JSON object is required", details={"field": "body"})
    try:
        parsed = json.loads(raw)
    except ValueError as error:
        raise BadRequest(f"body: malformed JSON ({error})", details={"field": "body"}) from None
    if not isinstance(parsed, dict):
        raise BadRequest("body: must be a JSON object", details={"field": "body"})
    return parsed


def _client_key() -> str:
    return runtime.key_service().authenticate(_header("X-Muxi-Client-Key"), kind="client").key_id


def _principal(key_id: str, body_user_id: str | None = None) -> Principal:
    """The caller: their key and the end user, from ``X-Muxi-User-Id`` or the body (never both differing)."""
    header_user = _header("X-Muxi-User-Id")
    if header_user is not None:
        try:
            header_user = _UserIdHeader(user_id=header_user).user_id
        except ValidationError:
            raise BadRequest(
                "X-Muxi-User-Id: must be 1-256 printable characters", details={"header": "X-Muxi-User-Id"}
            ) from None
    if header_user and body_user_id and header_user != body_user_id:
        raise BadRequest(
            "user_id: the body and the X-Muxi-User-Id header name different users",
            details={"field": "user_id"},
        )
    return Principal(key_id=key_id, user_id=header_user or body_user_id or DEFAULT_USER_ID)


def _client() -> Principal:
    return _principal(_client_key())


def _admin() -> None:
    runtime.key_service().authenticate(_header("X-Muxi-Admin-Key"), kind="admin")


@app.get("/v1/health")
def health() -> Response:
    return _json(200, {"status": "ok"})


@app.get("/v1/openapi.json")
def openapi() -> Response:
    from asyncagents.api.openapi import build_openapi  # rarely called: keep it off the cold path

    return _json(200, build_openapi())


@app.post("/v1/chat")
def chat() -> Response:
    key_id = _client_key()
    request = ChatRequest.model_validate(_body())
    principal = _principal(key_id, request.user_id)
    idempotency_key = _header("X-Muxi-Idempotency-Key")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 256:
        raise BadRequest(
            "X-Muxi-Idempotency-Key: must be 1-256 characters", details={"header": "X-Muxi-Idempotency-Key"}
        )
    submission = runtime.request_service().submit(principal, request, idempotency_key=idempotency_key)
    record = submission.record
    if submission.finished:
        return _json(200, _public(record))
    body = accepted_body(record, record.webhook_url)
    return _json(202, body, headers={"Location": poll_url(record.request_id)})


@app.get("/v1/requests")
def list_requests() -> Response:
    principal = _client()
    query = ListQuery.model_validate(app.current_event.query_string_parameters or {})
    records, cursor = runtime.request_service().list(
        principal, limit=query.limit, cursor=query.cursor, status=query.status
    )
    return _json(200, {"requests": [_public(r) for r in records], "count": len(records), "next_cursor": cursor})


@app.get("/v1/requests/<request_id>")
def get_request(request_id: str) -> Response:
    return _json(200, _public(runtime.request_service().get(_client(), request_id)))


@app.delete("/v1/requests/<request_id>")
def cancel_request(request_id: str) -> Response:
    record, already = runtime.request_service().cancel(_client(), request_id)
    message = "Request already cancelled" if already else "Request cancelled by user"
    return _json(200, {"request_id": record.request_id, "status": "cancelled", "message": message, "content": ""})


@app.post("/v1/requests/<request_id>/clarification")
def answer_clarification(request_id: str) -> Response:
    principal = _client()
    body = ClarificationAnswer.model_validate(_body())
    record = runtime.request_service().answer(
        principal, request_id, body.answer, clarification_id=body.clarification_request_id
    )
    return _json(202, _public(record), headers={"Location": poll_url(record.request_id)})


@app.post("/v1/admin/keys")
def create_key() -> Response:
    _admin()
    wanted = NewKey.model_validate(_body())
    created = runtime.key_service().create(wanted.kind, label=wanted.label)
    return _json(201, {"key_id": created.key_id, "kind": created.kind, "key": created.secret})


@app.delete("/v1/admin/keys/<key_id>")
def revoke_key(key_id: str) -> Response:
    _admin()
    runtime.key_service().revoke(key_id)
    return _json(200, {"key_id": key_id, "revoked": True})


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_id: str = Field(min_length=1, max_length=64)
    user_id: UserId = DEFAULT_USER_ID
    request_id: str = Field(min_length=1, max_length=128)


@app.post("/v1/admin/requests/redrive")
def redrive_request() -> Response:
    _admin()
    wanted = RedriveRequest.model_validate(_body())
    principal = Principal(key_id=wanted.key_id, user_id=wanted.user_id)
    record = runtime.request_service().redrive(principal, wanted.request_id)
    return _json(202, {**_public(record), "redrive_count": record.redrive_count})


@app.get("/v1/admin/webhooks/dead-letters")
def list_dead_letters() -> Response:
    _admin()
    queue = runtime.webhook_queue()
    return _json(200, {"count": queue.count_dead_letters(), "dead_letters": queue.list_dead_letters(10)})


@app.post("/v1/admin/webhooks/dead-letters/redrive")
def redrive_dead_letters() -> Response:
    _admin()
    result = runtime.webhook_queue().redrive(strategy=runtime.settings().dlq_redrive_strategy)
    return _json(202, result)


@app.exception_handler(AsyncAgentsError)
def _domain_error(error: AsyncAgentsError) -> Response:
    return from_domain_error(error)


@app.exception_handler(ValidationError)
def _validation_error(error: ValidationError) -> Response:
    return from_validation_error(error)


@app.not_found
def _not_found(_: NotFoundError) -> Response:
    return error_response(404, "not_found", f"no route for {app.current_event.http_method} {app.current_event.path}")


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    logger.exception("unhandled error", exc_info=error)
    return error_response(500, "internal_error", "the server could not complete the request")
