"""A real webhook receiver on 127.0.0.1 for tests: verifies signatures, counts deliveries, misbehaves on cue.

Paths choose the behaviour: ``/ok``, ``/fail/<n>`` (500 for the first n deliveries, then 200),
``/status/<code>`` (always that status), ``/retry-after/<seconds>`` (429 once, then 200),
``/hang/<seconds>`` (answers after a delay), ``/redirect`` (302 to the metadata address),
``/down-until/<unix time>`` (503 until then: an outage), ``/refuse-until/<unix time>`` (410 until then).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from asyncagents.webhooks import verify_signature


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    received_at: float = field(default_factory=time.monotonic)
    status: int = 0  # what the receiver answered


class WebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = verify_signature(body, headers.get("x-muxi-signature"), receiver.secret)
                delivery = Delivery(self.path, headers, body, verified)
                with receiver._lock:
                    receiver.deliveries.append(delivery)
                    receiver._counts[self.path] = receiver._counts.get(self.path, 0) + 1
                    count = receiver._counts[self.path]
                status, extra = receiver.behaviour(self.path, count)
                delivery.status = status
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def behaviour(self, path: str, count: int) -> tuple[int, dict[str, str]]:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if parts[0] == "fail":
            return (500, {}) if count <= int(parts[1]) else (200, {})
        if parts[0] == "status":
            return int(parts[1]), {}
        if parts[0] == "retry-after":
            return (429, {"Retry-After": parts[1]}) if count == 1 else (200, {})
        if parts[0] == "hang":
            time.sleep(float(parts[1]))
            return 200, {}
        if parts[0] in {"down-until", "refuse-until"}:
            down = time.time() < float(parts[1])
            return (503 if parts[0] == "down-until" else 410, {}) if down else (200, {})
        if parts[0] == "redirect":
            return 302, {"Location": "http://169.254.169.254/latest/meta-data/"}
        return 200, {}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def to(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.path == path]

    def at_least(self, path: str, count: int) -> list[Delivery] | None:
        """The deliveries to ``path`` once there are ``count`` of them (for ``wait_for``)."""
        deliveries = self.to(path)
        return deliveries if len(deliveries) >= count else None

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
