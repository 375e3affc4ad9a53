"""The HTTP side of triggers: a call as the domain takes it, and its outcome as the caller gets it."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from asyncagents.api import edge, views
from asyncagents.domain.triggers.fire import Fired, Handshake, Ignored, Outcome, TriggerCall
from asyncagents.trigger_definitions import TriggerDefinition


def call_of(
    event: dict[str, Any], *, async_: bool | None, user_id: str | None, idempotency_key: str | None
) -> TriggerCall:
    """The call as sent: the exact body and Content-Type (signatures are over those), headers by lower-case name."""
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


def answer(outcome: Outcome, public: Any) -> Response[Any]:
    """202 with the request (200 when it already finished: a sync wait, or a retry of a finished delivery);
    200 for an event the trigger ignores and for a provider's handshake. A provider's call learns the
    request's status, never its result: whoever replays a captured delivery must not read it."""
    if isinstance(outcome, Fired):
        record = outcome.submission.record
        if outcome.submission.finished:
            return _json(200, views.accepted_body(record) if outcome.signed else public(record))
        return _json(202, views.accepted_body(record), {"Location": views.poll_url(record.request_id)})
    if isinstance(outcome, Ignored):
        return _json(200, {"status": "ignored", "reason": outcome.reason})
    if isinstance(outcome, Handshake) and outcome.challenge is not None:
        return _json(200, {"challenge": outcome.challenge})
    return _json(200, {"status": "ok", "handshake": outcome.provider})


def definition_body(definition: TriggerDefinition) -> dict[str, Any]:
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


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)
