"""A real OpenID Connect issuer on 127.0.0.1 for tests: its discovery document and its signing keys (JWKS) over
HTTP, as Cognito or Auth0 publish them, and tokens it signs (RS256) for whoever a test names."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Issuer:
    def __init__(self) -> None:
        self.key = new_key()
        self.key_id = uuid.uuid4().hex[:12]
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    document = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/.well-known/jwks.json"}
                elif self.path == "/.well-known/jwks.json":
                    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    document = {"keys": [{**public, "kid": issuer.key_id, "use": "sig", "alg": "RS256"}]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def token(
        self,
        sub: str,
        *,
        audience: str = "asyncagents-app",
        expires_in: float = 300,
        issuer: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        **claims: Any,
    ) -> str:
        """A token for ``sub``; the keyword arguments make a bad one (another audience, issuer or key, expired)."""
        now = int(time.time())
        payload = {"sub": sub, "aud": audience, "iss": issuer or self.url, "iat": now, "exp": now + expires_in}
        return jwt.encode({**payload, **claims}, key or self.key, algorithm="RS256", headers={"kid": self.key_id})

    def __enter__(self) -> Issuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
