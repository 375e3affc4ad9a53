"""Trigger routes: ``GET /v1/triggers``, ``GET /v1/triggers/{name}`` and ``POST /v1/triggers/{name}`` (a client
key, or a provider's signature), with the call as the domain takes it and its outcome as the caller gets it."""

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from asyncagents import runtime
from asyncagents.api import edge, views
from asyncagents.api.routing import IdempotencyHeader, UserIdHeader, app, json_response, public, route

if TYPE_CHECKING:  # imported when a trigger is first called: most containers never are
    from asyncagents.domain.triggers.fire import Outcome, TriggerCall
    from asyncagents.trigger_definitions import TriggerDefinition


def call_of(
    event: dict[str, Any], *, async_: bool | None, user_id: str | None, idempotency_key: str | None
) -> "TriggerCall":
    """The call as sent: the exact body and Content-Type (signatures are over those), headers by lower-case name."""
    from asyncagents.domain.triggers.fire import TriggerCall

    content_type, body = edge.received(event)
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    return TriggerCall(
        body=body.encode("utf-8"),
        headers=headers,
        content_type=content_type,
        async_=async_,
        user_id=user_id,
        idempotency_key=idempotency_key,
    )


def answer(outcome: "Outcome") -> Response[Any]:
    """202 with the request (200 when it already finished: a sync wait, or a retry of a finished delivery);
    200 for an event the trigger ignores and for a provider's handshake. A provider's call learns the
    request's status, never its result: whoever replays a captured delivery must not read it."""
    from asyncagents.domain.triggers.fire import Fired, Handshake, Ignored

    if isinstance(outcome, Fired):
        record = outcome.submission.record
        if outcome.submission.finished:
            return json_response(200, views.accepted_body(record) if outcome.signed else public(record))
        return json_response(202, views.accepted_body(record), {"Location": views.poll_url(record.request_id)})
    if isinstance(outcome, Ignored):
        return json_response(200, {"status": "ignored", "reason": outcome.reason})
    if isinstance(outcome, Handshake) and outcome.challenge is not None:
        return json_response(200, {"challenge": outcome.challenge})
    return json_response(200, {"status": "ok", "handshake": outcome.provider})


def definition_body(definition: "TriggerDefinition") -> dict[str, Any]:
    """``GET /v1/triggers/{name}``: MUXI's ``name``, ``content`` and ``data_fields``, and how it is called."""
    scheme = definition.verify
    return {
        "name": definition.name,
        "description": definition.description,
        "type": definition.type,
        "content": definition.template,
        "data_fields": definition.data_fields,
        "async": definition.async_,
        "authentication": scheme.provider if scheme else "client_key",
        "accepts_client_key": scheme is None or scheme.allow_client_key,
        "webhook_url": definition.webhook_url,
        "when": definition.when,
        "parse": definition.parse.model_dump(exclude_none=True),
    }


@route("GET", "/v1/triggers", key="client", model="TriggerList", summary="The formation's triggers")
def list_triggers() -> Response[Any]:
    names = runtime.current().triggers.names()
    formation_id = runtime.current().formation.formation_id
    return json_response(200, {"formation_id": formation_id, "triggers": names, "count": len(names)})


@route("GET", "/v1/triggers/<name>", key="client", model="TriggerView", errors=(404,), summary="A trigger")
def get_trigger(name: str) -> Response[Any]:
    return json_response(200, definition_body(runtime.current().triggers.get(name)))


@route(
    "POST",
    "/v1/triggers/<name>",
    key=None,
    ok=202,
    model="AcceptedView",
    also={200: "RequestView"},
    errors=(400, 401, 403, 404, 409, 413, 422, 429, 503),
    # A client key, or (as the trigger's definition says) a provider's signature instead.
    security=[{"clientKey": []}, {}],
    summary="Fire a trigger: MUXI's {data, session_id, use_async}, or a provider's own signed delivery",
)
def fire_trigger(
    name: str,
    async_: Annotated[bool | None, Query(alias="async", description="false: wait like a sync chat")] = None,
    user_id: UserIdHeader = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response[Any]:
    event = app.current_event.raw_event
    call = call_of(event, async_=async_, user_id=user_id, idempotency_key=idempotency_key)
    return answer(runtime.current().triggers.fire(name, call))
