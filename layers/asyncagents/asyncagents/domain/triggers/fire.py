"""Firing a trigger: who is calling (a client key, or a provider's signature), what the event's data is,
the message it renders to, and the request it becomes (through the same submit path as ``POST /v1/chat``).

A signed delivery names its request by what its signature covers: the provider's delivery id where it is
signed (Stripe, Slack events, Standard Webhooks), else the body itself (GitHub's delivery header is not
signed). So a provider's retry, and anyone replaying a captured delivery, gets the request the first one made
and starts nothing. A client's ``X-Muxi-Idempotency-Key`` names the request of a client call.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from asyncagents.domain.auth import NO_KEY_LIMITS, ApiKey, KeyService, Principal, acting_user
from asyncagents.domain.errors import BadRequest, InvalidData, NotFound, RequestExpired, Unauthorized
from asyncagents.domain.ports import TriggerSecretSource
from asyncagents.domain.requests import RequestService, Submission
from asyncagents.domain.requests.submit import MAX_MESSAGE_BYTES, NewRequest
from asyncagents.domain.telemetry import NO_TELEMETRY, Telemetry, trigger_fired, trigger_signature_rejected
from asyncagents.domain.triggers import signatures
from asyncagents.domain.triggers.template import as_text, lookup, path_segments, render
from asyncagents.trigger_definitions import TRIGGER_NAME_PATTERN, TriggerDefinition

DEFAULT_USER_ID = "default"
# MUXI's body: ``{"data": {...}, "session_id": ..., "use_async": ...}`` (a client's call).
_WRAPPER_KEYS = frozenset({"data", "session_id", "use_async"})


@dataclass(frozen=True)
class TriggerCall:
    """One ``POST /v1/triggers/{name}`` as the API received it. ``headers`` are keyed in lower case; the
    API has already validated ``user_id``, ``idempotency_key`` and ``async_``."""

    body: bytes
    headers: Mapping[str, str]
    content_type: str = "application/json"
    async_: bool | None = None
    user_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Fired:
    """The request the call made (or the one its earlier delivery made). ``signed``: a provider called, and
    gets the request's status, never its result (a replayed delivery must not read it)."""

    submission: Submission
    signed: bool = False


@dataclass(frozen=True)
class Ignored:
    """The event is not one the trigger fires on (its ``when``): acknowledged, so the provider stops."""

    reason: str


@dataclass(frozen=True)
class Handshake:
    """A provider checking the endpoint (Slack's URL verification, GitHub's ping), not an event.
    ``challenge`` is what Slack wants echoed."""

    provider: str
    challenge: str | None = None


Outcome = Fired | Ignored | Handshake


@dataclass(frozen=True)
class _Caller:
    principal_key_id: str
    signed: bool  # by the provider (else: a client key)
    key: ApiKey | None = None  # the client key, when one was used


class Triggers:
    """The formation's triggers: list them, read one, fire one. Keys, secrets and the clock are injected."""

    def __init__(
        self,
        definitions: Mapping[str, TriggerDefinition],
        requests: RequestService,
        keys: KeyService,
        secrets: Callable[[], TriggerSecretSource],
        *,
        clock: Callable[[], float] = time.time,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._telemetry = telemetry
        self._definitions = definitions
        self._requests = requests
        self._keys = keys
        self._secrets = secrets
        self._clock = clock

    def names(self) -> list[str]:
        return sorted(self._definitions)

    def get(self, name: str) -> TriggerDefinition:
        if not re.match(TRIGGER_NAME_PATTERN, name):
            raise BadRequest(f"name: must match {TRIGGER_NAME_PATTERN}", details={"field": "name"})
        definition = self._definitions.get(name)
        if definition is None:
            raise NotFound(f"no trigger named {name!r}", details={"trigger": name})
        return definition

    def fire(self, name: str, call: TriggerCall) -> Outcome:
        """Authenticate the call, read its data, and submit the request its message describes."""
        definition = self.get(name)
        caller = self._authenticate(definition, call)
        payload = _parse(call.body, call.content_type)
        if caller.signed:
            handshake = _handshake(definition, call.headers, payload)
            if handshake is not None:
                return handshake
        data, session_id, use_async = _unwrap(payload, wrapped_allowed=not caller.signed)
        refused = _refusal(definition, data)
        if refused is not None:
            return Ignored(refused)
        # X-Muxi-User-Id is a client's to send: a provider's signature does not cover it.
        header_user = None if caller.signed else call.user_id
        user_id = header_user or _parsed_text(definition.parse.user_id, data, "parse.user_id")
        if caller.key is not None and caller.key.user_id is not None:
            user_id = acting_user(caller.key, header_user, DEFAULT_USER_ID)  # its own user, whatever the event says
        limits = caller.key.limits if caller.key else NO_KEY_LIMITS
        principal = Principal(key_id=caller.principal_key_id, user_id=user_id or DEFAULT_USER_ID, limits=limits)
        asked = _first_set(use_async, call.async_)
        new = NewRequest(
            message=_message(definition, data),
            async_=definition.async_ if asked is None else asked,
            forced_by="trigger" if asked is None else "forced",
            webhook_url=definition.webhook_url,
            session_id=session_id or _parsed_text(definition.parse.session_id, data, "parse.session_id"),
            trigger=definition.name,
        )
        naming = self._request_name(definition, call, payload, signed=caller.signed)
        try:
            fired = Fired(self._requests.submit(principal, new, idempotency_key=naming), signed=caller.signed)
        except RequestExpired as expired:
            if not caller.signed:
                raise
            # A provider's retry of a delivery handled long ago (its answer lost): acknowledged, so that it stops
            # retrying; the work is not run again.
            return Ignored(f"delivery already handled: request {expired.details['request_id']} ended")
        self._telemetry.emit(trigger_fired(), metadata={"trigger": definition.name})
        return fired

    # -- who is calling ----------------------------------------------------------------------------

    def _authenticate(self, definition: TriggerDefinition, call: TriggerCall) -> _Caller:
        scheme = definition.verify
        client_key = call.headers.get("x-muxi-client-key")
        if scheme is None:
            return self._client_caller(client_key)
        header = signatures.signature_header(scheme)
        if header.lower() not in call.headers:
            if client_key and scheme.allow_client_key:
                return self._client_caller(client_key)
            alternative = " or an X-Muxi-Client-Key" if scheme.allow_client_key else " (a client key is not enough)"
            raise Unauthorized(
                f"missing {header} header: trigger {definition.name} needs a {scheme.provider} signature" + alternative,
                details={"header": header},
            )
        secrets = self._secrets().secrets_for(definition.name, scheme.secret_arn)
        try:
            signatures.verify(scheme, call.headers, call.body, secrets, now=self._clock())
        except Unauthorized:
            self._telemetry.emit(trigger_signature_rejected(), metadata={"trigger": definition.name})
            raise
        # Requests a provider fires belong to the trigger (no client key is involved).
        return _Caller(f"trigger:{definition.name}", signed=True)

    def _client_caller(self, client_key: str | None) -> _Caller:
        key = self._keys.authenticate(client_key, kind="client")
        return _Caller(key.key_id, signed=False, key=key)

    def _request_name(
        self, definition: TriggerDefinition, call: TriggerCall, payload: Any, *, signed: bool
    ) -> str | None:
        """What names the request: for a signed delivery its signed id, else its body's digest; for a client
        its idempotency key. Scoped to the trigger, with separators no HTTP header can carry, so the same
        value elsewhere (a chat's idempotency key) names another request."""
        if signed and definition.verify is not None:
            delivery = signatures.signed_delivery_id(definition.verify, call.headers, payload)
            name = f"delivery\x00{delivery}" if delivery else "body\x00" + hashlib.sha256(call.body).hexdigest()
            return f"trigger\x00{definition.name}\x00{name}"
        if call.idempotency_key:
            return f"trigger\x00{definition.name}\x00key\x00{call.idempotency_key}"
        return None


def _first_set(*choices: bool | None) -> bool | None:
    return next((choice for choice in choices if choice is not None), None)


def _parse(body: bytes, content_type: str) -> Any:
    """The body as data: JSON whatever the Content-Type says (``curl -d`` sends JSON as a form, as for chat),
    else a form when it is one (Slack's slash commands; GitHub's form deliveries carry JSON in ``payload``)."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body: must be UTF-8", details={"field": "body"}) from None
    try:
        return _encodable(json.loads(text))
    except ValueError as error:
        problem = error
    except RecursionError:
        raise BadRequest("body: nested too deeply", details={"field": "body"}) from None
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        form = {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}
        if set(form) != {"payload"}:
            return form
        try:
            return _encodable(json.loads(form["payload"]))
        except ValueError as error:
            problem = error
        except RecursionError:
            raise BadRequest("body: nested too deeply", details={"field": "body"}) from None
    raise BadRequest(f"body: malformed JSON ({problem})", details={"field": "body"})


def _encodable(data: Any) -> Any:
    """``data``, if its text can be stored: JSON may escape lone surrogates (``"\\ud800"``), which no UTF-8
    encoder (nor DynamoDB) takes."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "body: holds text that is not valid Unicode (a lone surrogate)", details={"field": "body"}
        ) from None
    return data


def _handshake(definition: TriggerDefinition, headers: Mapping[str, str], payload: Any) -> Handshake | None:
    provider = definition.verify.provider if definition.verify else None
    if provider == "slack" and isinstance(payload, dict) and payload.get("type") == "url_verification":
        return Handshake("slack", challenge=str(payload.get("challenge", "")))
    if provider == "github" and headers.get("x-github-event") == "ping":
        return Handshake("github")
    return None


def _unwrap(payload: Any, *, wrapped_allowed: bool) -> tuple[Any, str | None, bool | None]:
    """``(data, session_id, use_async)``: MUXI's wrapper from a client, else the whole body is the data (a
    provider's body is never unwrapped: Standard Webhooks' own bodies have a ``data`` key)."""
    if not (wrapped_allowed and isinstance(payload, dict) and "data" in payload and set(payload) <= _WRAPPER_KEYS):
        return payload, None, None
    session_id, use_async = payload.get("session_id"), payload.get("use_async")
    if session_id is not None and (not isinstance(session_id, str) or not 1 <= len(session_id) <= 256):
        raise InvalidData("session_id: must be a string of 1-256 characters", details={"field": "session_id"})
    if use_async is not None and not isinstance(use_async, bool):
        raise InvalidData("use_async: must be true or false", details={"field": "use_async"})
    return payload["data"], session_id, use_async


def _refusal(definition: TriggerDefinition, data: Any) -> str | None:
    """Why the event does not fire the trigger (its ``when``), or ``None`` when it does."""
    for path, accepted in definition.when.items():
        try:
            value = lookup(data, path_segments(path), field=f"when.{path}", root="$")
        except InvalidData:
            return f"{path} is missing; the trigger fires when it is one of {accepted}"
        if not any(_same(value, wanted) for wanted in accepted):
            return f"{path} is {value!r}; the trigger fires when it is one of {accepted}"
    return None


def _same(value: Any, wanted: Any) -> bool:
    # true is not 1 (nor false 0), though Python says so.
    return isinstance(value, bool) == isinstance(wanted, bool) and value == wanted


def _parsed_text(path: str | None, data: Any, field: str) -> str | None:
    if path is None:
        return None
    value = lookup(data, path_segments(path), field=field, root="$")
    text = as_text(value)
    if not 1 <= len(text) <= 256 or any(ord(c) < 0x20 for c in text):
        raise InvalidData(f"{field}: {path} must be 1-256 printable characters", details={"field": field})
    return text


def _message(definition: TriggerDefinition, data: Any) -> str:
    parse = definition.parse
    if parse.message:
        message = as_text(lookup(data, path_segments(parse.message), field="parse.message", root="$"))
    else:
        message = render(definition.template, data)
    if parse.context:
        context = lookup(data, path_segments(parse.context), field="parse.context", root="$")
        message = f"{message}\n\nContext:\n{as_text(context)}"
    size = len(message.encode())
    if not message.strip():
        raise InvalidData("message: the event's data renders an empty message", details={"field": "message"})
    if size > MAX_MESSAGE_BYTES:
        raise InvalidData(
            f"message: renders to {size} bytes, more than {MAX_MESSAGE_BYTES}", details={"field": "message"}
        )
    return message
