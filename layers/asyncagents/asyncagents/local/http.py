"""An HTTP server on 127.0.0.1 that turns each request into an API Gateway HTTP API (v2) event.

API Gateway runs one request per Lambda container; here every request shares one process, and
Powertools keeps the current event in a class attribute. So calls into the API handler take a lock,
and a sync request's wait releases it (see ``ApiGateway.cooperative_sleep``), as if each waiting
request had a container of its own.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from asyncagents.api.event_streams import streamed_responses
from asyncagents.local.faults import ContainerKilled
from asyncagents.local.lambdas import LocalContext

if TYPE_CHECKING:
    from asyncagents.local.jwt_api import JwtAuthorizer, JwtRoutes

logger = logging.getLogger(__name__)

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
# What Powertools keeps per request on the router class (``context`` is per resolver and unused here).
_REQUEST_STATE = ("current_event", "lambda_context")
_TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded", "application/xml")


# The HTTP API's routes (template.yaml, ApiFunction's events): this API, and the same under MUXI's path form.
ROUTES = (
    (re.compile(r"^/v1/(?P<proxy>.+)$"), "ANY /v1/{proxy+}"),
    (re.compile(r"^/api/(?P<formation>[^/]+)/v1/(?P<proxy>.+)$"), "ANY /api/{formation}/v1/{proxy+}"),
    (re.compile(r"^/draft/(?P<formation>[^/]+)/v1/(?P<proxy>.+)$"), "ANY /draft/{formation}/v1/{proxy+}"),
    (re.compile(r"^/console$"), "GET /console"),
    (re.compile(r"^/console/(?P<proxy>.+)$"), "GET /console/{proxy+}"),
)


def route_of(path: str) -> tuple[str, dict[str, str]] | None:
    """The route key and path parameters API Gateway would give ``path``, or ``None`` (its 404)."""
    for pattern, route_key in ROUTES:
        match = pattern.match(path)
        if match:
            return route_key, match.groupdict()
    return None


def build_event(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    route: tuple[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The event API Gateway HTTP API (payload format 2.0) sends for one of the API's routes (``route``: its key
    and path parameters, found from the path when not given)."""
    parts = urlsplit(target)
    route_key, parameters = route or route_of(parts.path) or ("ANY /v1/{proxy+}", {})
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    content_type = lowered.get("content-type", "")
    is_text = not body or not content_type or content_type.startswith(_TEXT_TYPES)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if query:
        event["queryStringParameters"] = query
    if parameters:
        event["pathParameters"] = parameters
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if is_text else base64.b64encode(body).decode()
    return event


class ApiGateway:
    """Calls the API handler for each event, one at a time, except while a call sleeps."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]], function_arn: str) -> None:
        self._handler = handler
        self._arn = function_arn
        self._lock = threading.RLock()
        self._inside = threading.local()

    def cooperative_sleep(self, seconds: float) -> None:
        """Sleep without holding the API lock; restore the Powertools request state afterwards.
        Outside an API call (a test calling the domain directly) it is a plain sleep."""
        from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

        if not getattr(self._inside, "active", False):
            time.sleep(seconds)
            return
        saved = {name: getattr(BaseRouter, name) for name in _REQUEST_STATE if hasattr(BaseRouter, name)}
        self._lock.release()
        try:
            time.sleep(seconds)
        finally:
            self._lock.acquire()
            for name, value in saved.items():
                setattr(BaseRouter, name, value)

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._inside.active = True
            try:
                return self._handler(event, LocalContext(function_name="ApiFunction", invoked_function_arn=self._arn))
            except ContainerKilled as died:  # API Gateway answers 502; the client learns nothing (no request id)
                logger.warning("the API function died: %s", died)
                return {
                    "statusCode": 502,
                    "headers": {"content-type": "application/json"},
                    "body": '{"message": "Internal Server Error"}',
                }
            finally:
                self._inside.active = False

    def inside_call(self) -> bool:
        """Whether the current thread is running an API call (faults aimed at the API check it)."""
        return bool(getattr(self._inside, "active", False))


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > API_GATEWAY_MAX_BODY:
            self._reply(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            return
        body = self.rfile.read(length) if length else b""
        event = self._event_for(body)
        if event is None:
            return
        try:
            # Where a response stream would be (a Function URL's RESPONSE_STREAM): event streams go out live.
            with streamed_responses() as streams:
                result = self.server.gateway.call(event)
        except Exception:
            logger.exception("the API handler failed")
            self._reply(500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
            return
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        if streams and int(result.get("statusCode", 200)) == 200 and self.command != "HEAD":
            self._stream(headers, streams[0])
            return
        for unsent in streams:  # a HEAD's: nothing is written, and nothing is followed
            getattr(unsent, "close", lambda: None)()
        self._reply(int(result.get("statusCode", 200)), headers, data, result.get("cookies") or [])

    def _event_for(self, body: bytes) -> dict[str, Any] | None:
        """The event for this request, or ``None`` once API Gateway's own answer is sent (no route: 404; on the
        JWT API, no valid token on a guarded route: 401)."""
        path = urlsplit(self.path).path
        api = self.server.jwt_api
        if api is None:
            found = route_of(path)
            if found is None or found[0].split(" ", 1)[0] not in ("ANY", self.command):  # the template's routes
                self._reply(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
                return None
            return build_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        from asyncagents.local.jwt_api import Unverified

        matched = api.routes.match(self.command, path)
        if matched is None:
            self._reply(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return None
        route_key, parameters, guarded = matched
        try:
            claims = api.authorizer.claims(self.headers.get("Authorization")) if guarded else None
        except Unverified as refused:
            logger.info("the JWT authorizer refused a call: %s", refused)
            self._reply(401, {"content-type": "application/json"}, b'{"message":"Unauthorized"}')
            return None
        event = build_event(
            self.command,
            self.path,
            dict(self.headers.items()),
            body,
            self.client_address[0],
            route=(route_key, parameters),
        )
        if claims is not None:
            event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        return event

    def _stream(self, headers: dict[str, str], frames: Iterator[str]) -> None:
        """Write ``frames`` as they come (chunked), outside the API's lock; stop when the client leaves."""
        self.send_response(200)
        for name, value in headers.items():
            if name not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for text in frames:
                chunk = text.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away: stop following the request
        except Exception:
            logger.exception("an event stream failed")
            self.close_connection = True
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()

    def _reply(self, status: int, headers: dict[str, str], data: bytes, cookies: list[str] | None = None) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name not in {"content-length", "connection"}:
                self.send_header(name, value)
        for cookie in cookies or []:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the server itself refuses (a malformed request line, an unknown method): JSON, as API
        Gateway answers, never an HTML page."""
        body = json.dumps({"message": message or self.responses.get(code, ("Error",))[0]}).encode()
        self.close_connection = True
        self.request_version = "HTTP/1.1"  # a request line it could not read leaves HTTP/0.9: no status, no headers
        self._reply(code, {"content-type": "application/json"}, body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = _handle

    def __getattr__(self, name: str) -> Any:
        # Any other method (QUERY, BREW, ...) reaches the API as API Gateway's ANY routes pass it: a 405 there.
        if name.startswith("do_") and name[3:].isalpha() and name[3:].isupper():
            return self._handle
        raise AttributeError(name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: ApiGateway, jwt_api: JwtApi | None = None) -> None:
        super().__init__(address, _RequestHandler)
        self.gateway = gateway
        self.jwt_api = jwt_api


@dataclass(frozen=True)
class JwtApi:
    """What makes a server the JWT API (``auth.jwt``): its routes and its authorizer (``local.jwt_api``)."""

    routes: JwtRoutes
    authorizer: JwtAuthorizer


def serve(gateway: ApiGateway, host: str, port: int, jwt_api: JwtApi | None = None) -> tuple[_Server, threading.Thread]:
    """Start serving in a background thread; returns the server (its ``server_address`` has the port)."""
    server = _Server((host, port), gateway, jwt_api)
    thread = threading.Thread(target=server.serve_forever, name="asyncagents-http", daemon=True)
    thread.start()
    return server, thread
