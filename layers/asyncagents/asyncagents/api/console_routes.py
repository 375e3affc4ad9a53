"""The operator console: ``GET /console`` serves one page, ``GET /console/<asset>`` its script and style, all from
the package (no build step, nothing fetched from elsewhere). The page holds no secret: it asks for a key (kept in
the browser's session storage) and calls this API with it, so it has exactly the API's authorization.

Every answer carries a Content Security Policy that allows this origin's script, style and API calls and nothing
else (no inline script, no third-party origin, no framing); the script renders what a request or a model wrote as
text only, never as HTML."""

from functools import cache
from importlib import resources
from typing import Any

from aws_lambda_powertools.event_handler import Response

from asyncagents.api.routing import route
from asyncagents.domain.errors import NotFound

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


@cache
def _asset(name: str) -> str:
    return resources.files("asyncagents.console").joinpath(name).read_text(encoding="utf-8")


def _served(name: str) -> Response[Any]:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return Response(status_code=200, content_type=_ASSETS[name], body=_asset(name), headers=headers)


@route("GET", "/console", key=None, summary="The operator console (a page for the browser)", include_in_schema=False)
def console_page() -> Response[Any]:
    return _served("index.html")


@route("GET", "/console/<asset>", key=None, errors=(404,), summary="The console's files", include_in_schema=False)
def console_asset(asset: str) -> Response[Any]:
    if asset not in _ASSETS or asset == "index.html":
        raise NotFound(f"no console file {asset}", details={"asset": asset})
    return _served(asset)
