"""HTTP delivery of webhooks with httpx: to the checked address, no redirects, a capped response read."""

from __future__ import annotations

from typing import Any

import httpx

from asyncagents.domain.destinations import Destination
from asyncagents.domain.ports import HttpResult


class HttpxTransport:
    """One pooled client per container. Connects to ``destination.address`` and presents the original host
    name in the Host header and in TLS (SNI and certificate check)."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(follow_redirects=False, trust_env=False)

    def post(self, destination: Destination, body: bytes, headers: dict[str, str], timeout: float) -> HttpResult:
        extensions: dict[str, Any] = {}
        if destination.scheme == "https":
            extensions["sni_hostname"] = destination.host
        request = self._client.build_request(
            "POST",
            destination.connect_url,
            content=body,
            headers={**headers, "Host": destination.host_header},
            timeout=httpx.Timeout(timeout),
            extensions=extensions,
        )
        try:
            response = self._client.send(request, stream=True, follow_redirects=False)
        except httpx.TimeoutException as error:
            return HttpResult(error=f"timed out after {timeout:g}s ({type(error).__name__})")
        except httpx.HTTPError as error:
            return HttpResult(error=f"connection failed ({type(error).__name__}: {error})")
        # The status line is all that counts: the body is never read, so a receiver that trickles one
        # cannot hold the sender (closing discards the connection instead of reusing it).
        response.close()
        return HttpResult(status_code=response.status_code, retry_after=_retry_after(response.headers))


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None
