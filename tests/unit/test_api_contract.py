"""The API's edge and its OpenAPI document, without sockets: what is refused before routing, and whether the
served document describes every constraint the server enforces."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from asyncagents.api import app as api
from asyncagents.api.edge import MAX_BODY_BYTES, admit
from asyncagents.api.openapi import document
from asyncagents.api.schemas import ChatRequest, ClarificationAnswer
from asyncagents.domain.auth import KeyService

from .fakes import InMemoryStore


def event(
    method: str, path: str, body: str | bytes | None = None, headers: dict | None = None, stage: str = "$default"
) -> dict:
    """An API Gateway HTTP API (payload v2) event; a named stage prefixes the raw path, as API Gateway does."""
    b64 = isinstance(body, bytes)
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode()
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": headers or {},
        "requestContext": {
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "stage": stage,
            "requestId": "test",
        },
        "body": body,
        "isBase64Encoded": b64,
    }


@pytest.fixture
def keys() -> KeyService:
    return KeyService(InMemoryStore())


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(document(api.app))


def test_the_gate_checks_the_key_the_route_needs_before_the_body(keys):
    client = keys.create("client")
    # Given a call to a client route with an invalid body and no key
    refused = admit(event("POST", "/v1/chat", '{"surprise": 1}'), api.policy, lambda: keys)
    # Then it is a 401: an unauthenticated caller learns nothing about validation
    assert refused is not None and refused["statusCode"] == 401
    # And with the client key the event goes on, saying JSON and carrying the key like an authorizer would
    admitted = event("POST", "/v1/chat", '{"message": "x"}', {"Content-Type": "application/x-www-form-urlencoded"})
    admitted["headers"]["x-muxi-client-key"] = client.secret
    assert admit(admitted, api.policy, lambda: keys) is None
    assert admitted["headers"]["content-type"] == "application/json"
    assert admitted["requestContext"]["authorizer"]["lambda"] == {"key_id": client.key_id, "kind": "client"}


def test_the_gate_answers_what_no_route_should_see(keys):
    # A client key on an admin route is the wrong kind
    client = keys.create("client")
    wrong = event("GET", "/v1/admin/webhooks/dead-letters", headers={"X-Muxi-Admin-Key": client.secret})
    assert admit(wrong, api.policy, lambda: keys)["statusCode"] == 403
    # Open routes and paths no route serves need no key (the router answers 404 for the latter), and a body
    # on a call that takes none is ignored, as it always was
    big = event("GET", "/v1/health", "x" * (MAX_BODY_BYTES + 1))
    assert admit(big, api.policy, lambda: keys) is None and big["body"] is None
    assert admit(event("GET", "/v1/nothing-here"), api.policy, lambda: keys) is None
    # Too large, or not UTF-8 (checked once the key is)
    signed = {"X-Muxi-Client-Key": client.secret}
    huge = admit(event("POST", "/v1/chat", "x" * (MAX_BODY_BYTES + 1), signed), api.policy, lambda: keys)
    assert huge["statusCode"] == 413 and json.loads(huge["body"])["code"] == "payload_too_large"
    binary = admit(event("POST", "/v1/chat", b"\xff\xfe\x00", signed), api.policy, lambda: keys)
    assert binary["statusCode"] == 400 and "UTF-8" in json.loads(binary["body"])["message"]


@pytest.mark.parametrize("stage", ["$default", "prod"])
def test_keyed_routes_refuse_calls_without_their_key_whatever_the_stage(keys, stage):
    # Given calls without a key to an admin route, under the default stage and under a named one
    create = event("POST", "/v1/admin/keys", '{"kind": "admin"}', stage=stage)
    # When they go through the function's entry; then they are refused before anything is created
    refused = admit(json.loads(json.dumps(create)), api.policy, lambda: keys)  # the gate itself refuses
    assert refused is not None and refused["statusCode"] == 401
    answer = _handle_with(keys, create)
    assert answer["statusCode"] == 401, answer
    assert keys._store.keys == {}  # type: ignore[attr-defined]


def test_a_route_refuses_an_event_the_gate_did_not_admit(keys):
    # Given an event that reaches the router without passing the gate (a gap between the gate and the routes)
    direct = event("POST", "/v1/admin/keys", '{"kind": "admin"}')
    # When the router resolves it; then the route itself refuses: the gap fails closed
    answer = api.app.resolve(direct, None)
    assert answer["statusCode"] == 401, answer


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "application/xml"])
def test_an_empty_body_is_a_400_whatever_its_content_type(keys, content_type):
    admin = keys.create("admin")
    headers = {"content-type": content_type, "x-muxi-admin-key": admin.secret}
    for body in ("", "   "):
        answer = _handle_with(keys, event("POST", "/v1/admin/keys", body, headers))
        assert answer["statusCode"] == 400, answer
        assert json.loads(answer["body"])["message"] == "body: a JSON object is required"


def _handle_with(keys: KeyService, incoming: dict) -> dict:
    """``api.handle`` with this test's key service in place of the container's."""
    from asyncagents import runtime
    from asyncagents.domain.audit import Audit

    class Records:
        def append(self, entry, *, forget_at):
            recorded.append(entry)

    recorded: list[dict] = []

    class Keys(runtime.Runtime):
        key_service = keys  # type: ignore[assignment]
        audit = Audit(Records(), retention_days=1, clock=lambda: datetime.now(UTC))  # type: ignore[assignment]

    runtime.install(Keys(environ={"TABLE_NAME": "unit-table"}))
    try:
        return api.handle(incoming, None)
    finally:
        runtime.install(None)


def test_every_route_is_in_the_document_with_the_key_it_needs(spec):
    operations = {
        (method.upper(), path): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    assert ("POST", "/v1/admin/requests/redrive") in operations
    assert ("GET", "/v1/admin/webhooks/dead-letters") in operations
    assert ("POST", "/v1/admin/webhooks/dead-letters/redrive") in operations
    # Firing a trigger takes a client key, or a provider's signature instead (the definition says which).
    assert operations[("POST", "/v1/triggers/{name}")].pop("security") == [{"clientKey": []}, {}]
    for (method, path), operation in operations.items():
        kind = api.policy.kind_for(method, path.replace("{", "").replace("}", ""))
        expected = [{f"{kind}Key": []}] if kind else None
        assert operation.get("security") == expected, (method, path)
        if kind:
            assert {"401", "403", "422"} <= set(operation["responses"]), (method, path)
    assert set(spec["components"]["securitySchemes"]) == {"clientKey", "adminKey"}


def test_the_document_describes_the_constraints_the_server_enforces(spec):
    schemas = spec["components"]["schemas"]
    cursor = next(p for p in spec["paths"]["/v1/requests"]["get"]["parameters"] if p["name"] == "cursor")
    text = cursor["schema"]  # a string when present, never null (no client should send the text "null")
    assert text["type"] == "string" and "anyOf" not in text
    assert text["minLength"] == 1 and text["pattern"] == "^[A-Za-z0-9_-]+$"  # empty and malformed cursors
    webhook = schemas["ChatRequest"]["properties"]["webhook_url"]
    assert webhook["format"] == "uri" and webhook["pattern"].startswith("^[hH][tT][tT][pP]")
    assert schemas["ClarificationAnswer"]["properties"]["answer"]["pattern"] == r"\S"  # blank answers
    assert schemas["ChatRequest"]["properties"]["message"]["pattern"] == r"\S"
    assert schemas["ChatRequest"]["additionalProperties"] is False
    headers = {p["name"] for p in spec["paths"]["/v1/chat"]["post"]["parameters"] if p["in"] == "header"}
    assert headers == {"x-muxi-user-id", "x-muxi-idempotency-key"}


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (ClarificationAnswer, "answer", " \n\t "),
        (ChatRequest, "message", "   "),
        (ChatRequest, "webhook_url", "ftp://example.com/hook"),
        (ChatRequest, "webhook_url", "https:///no-host"),
    ],
)
def test_what_the_document_calls_invalid_the_server_refuses(spec, model, field, value):
    import re

    schema = spec["components"]["schemas"][model.__name__]["properties"][field]
    assert not re.search(schema["pattern"], value)  # the document says no
    body = {"message": "x", field: value} if model is ChatRequest else {field: value}
    with pytest.raises(ValidationError):  # and so does the server
        model.model_validate(body)


@pytest.mark.parametrize("stage", ["$default", "prod"])
def test_muxis_path_form_is_this_api_and_its_keys_still_apply(keys, stage):
    # Given MUXI's form of an admin route, under the default stage and a named one
    muxi = event("POST", "/api/my-assistant/v1/admin/keys", '{"kind": "admin"}', stage=stage)
    # When the gate sees it: it is /v1/admin/keys of this formation, so its key is required there too
    refused = admit(muxi, api.policy, lambda: keys, lambda: "my-assistant")
    assert refused is not None and refused["statusCode"] == 401
    assert muxi["rawPath"].endswith("/v1/admin/keys") and "/api/" not in muxi["requestContext"]["http"]["path"]
    # And another formation's id is a 404 naming it, before anything else
    other = admit(event("GET", "/api/other/v1/health", stage=stage), api.policy, lambda: keys, lambda: "my-assistant")
    assert other is not None and other["statusCode"] == 404
    assert json.loads(other["body"])["details"] == {"formation_id": "other"}


def verified(method: str, path: str, claims: dict) -> dict:
    """An event as the JWT API's authorizer passes it on: the token's claims in the request context."""
    sent = event(method, path)
    sent["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return sent


def test_a_verified_tokens_user_is_the_caller_only_where_end_users_are_verified(keys):
    # Where auth.jwt names the claim, the token's user is the caller, under a key id of its own
    admitted = verified("GET", "/v1/requests", {"sub": "alice", "email": "a@example.com"})
    assert admit(admitted, api.policy, lambda: keys, user_claim=lambda: "sub") is None
    assert admitted["requestContext"]["authorizer"]["lambda"] == {
        "key_id": "jwt:alice",
        "kind": "client",
        "user_id": "alice",
        "verified": "jwt",
    }
    # Without auth.jwt, claims in an event are no caller: the route still needs its key
    refused = admit(verified("GET", "/v1/requests", {"sub": "alice"}), api.policy, lambda: keys)
    assert refused is not None and refused["statusCode"] == 401
    # A token whose claim cannot name a user is refused, naming the claim
    for claims in ({"email": "a@example.com"}, {"sub": "a\x01b"}, {"sub": "x" * 257}):
        answer = admit(verified("GET", "/v1/requests", claims), api.policy, lambda: keys, user_claim=lambda: "sub")
        assert answer is not None and answer["statusCode"] == 401 and "sub claim" in answer["body"]
    # Admin routes never take a token for a key
    admin_call = verified("DELETE", "/v1/admin/keys/key_1", {"sub": "alice"})
    answer = admit(admin_call, api.policy, lambda: keys, user_claim=lambda: "sub")
    assert answer is not None and answer["statusCode"] == 401


def test_every_reference_in_the_document_resolves(spec):
    text = json.dumps(spec)
    referenced = set(re.findall(r'"#/components/schemas/([A-Za-z0-9_]+)"', text))
    assert referenced and referenced <= set(spec["components"]["schemas"]), referenced - set(
        spec["components"]["schemas"]
    )


def test_a_keys_own_limits_are_whole_numbers_however_json_writes_them():
    from asyncagents.api.schemas import NewKey

    assert NewKey.model_validate({"requests_per_second": 479.0, "max_active_requests": 3}).requests_per_second == 479
    for bad in ("479", 4.5, True):
        with pytest.raises(ValueError):
            NewKey.model_validate({"requests_per_second": bad})
