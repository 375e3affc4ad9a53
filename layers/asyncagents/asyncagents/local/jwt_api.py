"""The JWT API of a formation with ``auth.jwt``, emulated the way API Gateway runs it: the template's routes
(``JwtHttpApi``), and on the guarded ones its JWT authorizer. The authorizer finds the issuer's keys through its
OpenID discovery document, accepts RSA-signed tokens whose ``iss`` is the issuer, whose ``aud`` (or, without one,
``client_id``) is one of the audiences, and whose ``exp`` (and ``nbf``, ``iat`` when present) hold; otherwise it
answers 401 ``{"message": "Unauthorized"}`` without calling the function. The claims reach the function as strings
in ``requestContext.authorizer.jwt.claims``.

PyJWT verifies the tokens (a maintained library: signature, algorithms, time claims); it is imported only here.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from typing import Any

_ALGORITHMS = ["RS256", "RS384", "RS512"]  # API Gateway's JWT authorizers take RSA keys only
_LEEWAY_SECONDS = 0


def _pattern(path: str) -> re.Pattern[str]:
    parts = []
    for segment in path.split("/"):
        if segment.endswith("+}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
        elif segment.startswith("{"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^" + "/".join(parts) + "$")


class JwtRoutes:
    """The routes of the JWT API: the most specific route that matches wins (greedy ones last), as in API
    Gateway; no route is its 404."""

    def __init__(self, routes: tuple[tuple[str, bool], ...]) -> None:
        entries = []
        for route_key, guarded in routes:
            method, path = route_key.split(" ", 1)
            entries.append((method, _pattern(path), route_key, guarded, "+}" in path))
        self._routes = sorted(entries, key=lambda entry: entry[4])

    def match(self, method: str, path: str) -> tuple[str, dict[str, str], bool] | None:
        """``(route key, path parameters, guarded)`` of the route serving ``method path``."""
        for route_method, pattern, route_key, guarded, _ in self._routes:
            found = pattern.match(path)
            if found and route_method in {"ANY", method.upper()}:
                return route_key, found.groupdict(), guarded
        return None


class Unverified(Exception):
    """The token is missing, malformed, or not one the issuer signed for these audiences."""


class JwtAuthorizer:
    """Verifies bearer tokens as API Gateway's JWT authorizer does, for one issuer and its audiences."""

    def __init__(self, issuer: str, audiences: tuple[str, ...], *, timeout: float = 5.0) -> None:
        self._issuer = issuer
        self._audiences = set(audiences)
        self._timeout = timeout
        self._keys: Any = None
        self._lock = threading.Lock()

    def claims(self, authorization: str | None) -> dict[str, str]:
        """The token's claims, as API Gateway passes them on (strings); ``Unverified`` otherwise."""
        import jwt

        token = (authorization or "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise Unverified("no token")
        try:
            keys = self._signing_keys()
        except (OSError, ValueError, KeyError) as error:  # as API Gateway: no keys, no verified token
            raise Unverified(f"the issuer's keys could not be read: {error}") from None
        try:
            signing_key = keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=_ALGORITHMS,
                issuer=self._issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise Unverified(str(error)) from None
        audiences = claims.get("aud", claims.get("client_id"))
        named = set(audiences) if isinstance(audiences, list) else {audiences}
        if not named & self._audiences:
            raise Unverified("the token is not for this API's audiences")
        return {name: _as_string(value) for name, value in claims.items()}

    def _signing_keys(self) -> Any:
        with self._lock:
            if self._keys is None:
                import jwt

                discovery = f"{self._issuer}/.well-known/openid-configuration"
                with urllib.request.urlopen(discovery, timeout=self._timeout) as answer:
                    jwks_uri = json.load(answer)["jwks_uri"]
                self._keys = jwt.PyJWKClient(jwks_uri, timeout=int(self._timeout))
            return self._keys


def _as_string(value: Any) -> str:
    """A claim the way API Gateway hands it to the function: strings, lists as ``[a b]``."""
    if isinstance(value, list):
        return "[" + " ".join(str(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
