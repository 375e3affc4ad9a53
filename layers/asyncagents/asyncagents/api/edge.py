"""What the API does before routing, the way API Gateway and an authorizer would: bodies are JSON whatever
the Content-Type says (the seeds' ``curl -d`` sends a form type), at most 256 KiB, UTF-8; and the caller's
key is checked before the body is validated, so an unauthenticated call learns nothing but 401.

The key the gate accepted travels in the event, where an API Gateway authorizer puts its context
(``requestContext.authorizer.lambda``); routes read it from there.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from asyncagents.api.errors import PayloadTooLarge, error_body, status_of
from asyncagents.domain.auth import LIMIT_NAMES, ApiKey, KeyLimits, KeyService, token_caller
from asyncagents.domain.errors import AsyncAgentsError, BadRequest, NotFound, Unauthorized

MAX_BODY_BYTES = 256 * 1024
# No body of this API nests deeper; past it a body is refused before anything parses it (Python's JSON
# decoder would raise RecursionError near 1,000 levels, and nothing downstream needs more than a few).
MAX_JSON_DEPTH = 64
# Nor longer numbers (Python refuses to read an integer of over 4,300 digits, with a ValueError).
MAX_NUMBER_DIGITS = 1000
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")
_LONG_NUMBER = re.compile(rf"\d{{{MAX_NUMBER_DIGITS + 1}}}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

KeyKind = Literal["client", "admin"]
KEY_HEADERS: dict[KeyKind, str] = {"client": "X-Muxi-Client-Key", "admin": "X-Muxi-Admin-Key"}


def path_pattern(path: str) -> re.Pattern[str]:
    """The paths a route serves (Powertools' syntax: ``<name>`` is one segment)."""
    segments = ["[^/]+" if s.startswith("<") and s.endswith(">") else re.escape(s) for s in path.split("/")]
    return re.compile("^" + "/".join(segments) + "/?$")


class KeyPolicy:
    """Which key each route needs: filled in as routes are declared (``needs``), read by the gate."""

    def __init__(self) -> None:
        self._rules: list[tuple[str, re.Pattern[str], KeyKind]] = []

    def needs(self, method: str, path: str, kind: KeyKind) -> None:
        self._rules.append((method.upper(), path_pattern(path), kind))

    def kind_for(self, method: str, path: str) -> KeyKind | None:
        """The key the route needs; ``None`` for open routes and for paths no route serves (404)."""
        for rule_method, pattern, kind in self._rules:
            if rule_method == method.upper() and pattern.match(path):
                return kind
        return None


def header(event: dict[str, Any], name: str) -> str | None:
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted:
            return str(value)
    return None


def authenticated_key(event: dict[str, Any], kind: KeyKind) -> ApiKey:
    """The key the gate accepted for this event, which a route that needs a ``kind`` key calls before anything
    else: without one (an event the gate did not admit for this route) the route refuses, so a gap between the
    gate's rules and the routes fails closed."""
    found = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda") or {}
    if found.get("kind") != kind or not found.get("key_id"):
        header_name = KEY_HEADERS[kind]
        raise Unauthorized(f"missing or invalid {header_name} header", details={"header": header_name})
    bound = found.get("user_id")
    own = {name: int(found[name]) for name in LIMIT_NAMES if str(found.get(name, "")).isdigit()}
    return ApiKey(
        key_id=str(found["key_id"]),
        kind=kind,
        user_id=str(bound) if bound else None,
        verified_token=found.get("verified") == "jwt",
        limits=KeyLimits(**own),
    )


def token_user(event: dict[str, Any], user_claim: str) -> str | None:
    """The end user of a JWT API Gateway's authorizer verified for this event (its ``user_claim``), if one did.
    Only API Gateway writes ``requestContext``: a caller cannot put claims there."""
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")
    if not isinstance(claims, dict):
        return None
    user = claims.get(user_claim)
    if not isinstance(user, str) or not _TOKEN_USER.match(user):
        raise Unauthorized(
            f"the token's {user_claim} claim must name the user (1-256 characters, no control characters)",
            details={"header": "Authorization"},
        )
    return user


# As X-Muxi-User-Id may name one (``schemas.USER_ID_PATTERN`` and its length).
_TOKEN_USER = re.compile(r"^[^\x00-\x1f]{1,256}$")


# MUXI's SDK built with server_url and formation_id calls /api/<formation id>/v1/... (/draft/... in draft mode).
_MUXI_PATH = re.compile(r"^/(api|draft)/([^/]+)(/v1(?:/.*)?)$")


def admit(
    event: dict[str, Any],
    policy: KeyPolicy,
    keys: Callable[[], KeyService],
    formation_id: Callable[[], str] | None = None,
    user_claim: Callable[[], str | None] = lambda: None,
) -> dict[str, Any] | None:
    """Prepare ``event`` for routing, or answer it: ``None`` when it may go on (the event then says JSON and
    carries the accepted key), else the API Gateway response for the error. The key comes first: a call
    without a valid key learns nothing else. Where end users are verified (``user_claim`` names the token's
    claim), a client route's caller is the token's user when API Gateway verified one."""
    try:
        if formation_id is not None:
            _unprefix(event, formation_id)
        # The path as the router sees it (a named stage's prefix removed).
        routed = APIGatewayProxyEventV2(event)
        kind = policy.kind_for(routed.http_method, routed.path)
        if kind is not None:
            claim = user_claim() if kind == "client" else None
            user = token_user(event, claim) if claim else None
            key = token_caller(user) if user else keys().authenticate(header(event, KEY_HEADERS[kind]), kind=kind)
            context = event.setdefault("requestContext", {})
            accepted = {"key_id": key.key_id, "kind": key.kind}
            if key.user_id is not None:  # an authorizer context holds strings only: no entry when unbound
                accepted["user_id"] = key.user_id
            if key.verified_token:
                accepted["verified"] = "jwt"
            accepted.update({name: str(value) for name, value in key.limits.stored().items()})
            context["authorizer"] = {"lambda": accepted}
        _check_body(event, routed.http_method)
    except AsyncAgentsError as error:
        return proxy_error(error)
    return None


def received(event: dict[str, Any]) -> tuple[str, str]:
    """``(Content-Type, body text)`` as the caller sent them, before the gate made the event JSON: what a
    route that reads raw bodies needs (a trigger checks a provider's signature on the exact body)."""
    found = (event.get("requestContext") or {}).get("asyncagents") or {}
    return str(found.get("content_type") or "application/json"), str(found.get("body") or "")


def _unprefix(event: dict[str, Any], formation_id: Callable[[], str]) -> None:
    """``/api/<formation id>/v1/...`` is ``/v1/...`` of this formation (MUXI's form of the same API); another
    formation's id is a 404 that names it."""
    path = APIGatewayProxyEventV2(event).path
    match = _MUXI_PATH.match(path)
    if match is None:
        return
    prefix, asked = match.group(1), match.group(2)
    served = formation_id()
    if asked != served:
        raise NotFound(
            f"formation {asked!r} is not served here (this API serves {served!r})", details={"formation_id": asked}
        )
    for holder, key in ((event, "rawPath"), (event.get("requestContext", {}).get("http", {}), "path")):
        if isinstance(holder.get(key), str):
            holder[key] = holder[key].replace(f"/{prefix}/{asked}/v1", "/v1", 1)


def _check_body(event: dict[str, Any], method: str) -> None:
    sent_type = header(event, "content-type") or ""
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    event["headers"] = {**headers, "content-type": "application/json"}
    body = event.get("body")
    if method.upper() not in _BODY_METHODS:
        event["body"], event["isBase64Encoded"] = None, False  # ignored, as it always was
        return
    if not body:
        return
    raw = body.encode() if isinstance(body, str) else bytes(body)
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("body: not valid base64", details={"field": "body"}) from None
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes", details={"limit_bytes": MAX_BODY_BYTES})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body: must be UTF-8 encoded JSON", details={"field": "body"}) from None
    _check_json_shape(text)
    # Routing sees the body as the JSON text it is; only whitespace is no body at all.
    event["body"] = text if text.strip() else None
    event["isBase64Encoded"] = False
    event.setdefault("requestContext", {})["asyncagents"] = {"content_type": sent_type, "body": text}


def _check_json_shape(text: str) -> None:
    """``BadRequest`` for a body nested too deep or with too long a number: found without parsing it (the
    parser is what such a body would break)."""
    outside_strings = _JSON_STRING.sub('""', text)
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(outside_strings):
        depth = depth + 1 if bracket in "[{" else depth - 1
        deepest = max(deepest, depth)
    if deepest > MAX_JSON_DEPTH:
        raise BadRequest(
            f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels", details={"field": "body", "limit": MAX_JSON_DEPTH}
        )
    if _LONG_NUMBER.search(outside_strings):
        raise BadRequest(
            f"body: a number longer than {MAX_NUMBER_DIGITS} digits",
            details={"field": "body", "limit": MAX_NUMBER_DIGITS},
        )


def proxy_error(error: AsyncAgentsError) -> dict[str, Any]:
    """An error answered before routing, as an API Gateway (payload v2) response."""
    details = {k: v for k, v in error.details.items() if k != "current"}
    return {
        "statusCode": status_of(error),
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(error_body(error.code, error.message, details)),
        "isBase64Encoded": False,
    }
