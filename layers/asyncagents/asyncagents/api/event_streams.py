"""Server-sent events: the frames, MUXI's chat tokens, and answering a stream through API Gateway or for real.

API Gateway HTTP APIs buffer a Lambda's whole answer, so on AWS a stream is bounded: the route drains its
frames until the request ends or a window closes, and answers them at once (an EventSource reconnects with
``Last-Event-ID``; a chat stream ends with the request id and where to follow it). A gateway that can stream
(the local stack's HTTP server) opens ``streamed_responses()`` around the call and writes the frames as they
come instead, from the same generator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.event_handler import Response

from asyncagents.api import views
from asyncagents.domain.progress import ProgressEvent
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.times import parse_iso

KEEPALIVE = ": keepalive\n\n"
_LINE_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# ``frames(streaming)``: the frames of one answer; ``streaming`` says whether they go out as they come (then
# they may run as long as the request does) or are buffered (then they must end within the window).
Frames = Callable[[bool], Iterator[str]]

_open_streams: ContextVar[list[Iterator[str]] | None] = ContextVar("asyncagents_open_streams", default=None)


@contextmanager
def streamed_responses() -> Iterator[list[Iterator[str]]]:
    """For a gateway that streams: event-stream answers made inside leave their frames in the list it yields,
    to be written as they come, and their bodies empty."""
    streams: list[Iterator[str]] = []
    token = _open_streams.set(streams)
    try:
        yield streams
    finally:
        _open_streams.reset(token)


def event_stream(frames: Frames, *, headers: dict[str, str] | None = None) -> Response[Any]:
    """A ``text/event-stream`` answer of ``frames``: streamed by a gateway that can, else buffered."""
    streams = _open_streams.get()
    if streams is not None:
        streams.append(frames(True))
        body = ""
    else:
        body = "".join(frames(False))
    return Response(
        status_code=200, content_type="text/event-stream", body=body, headers={**SSE_HEADERS, **(headers or {})}
    )


def frame(data: Any, *, event: str | None = None, event_id: int | None = None) -> str:
    """One SSE frame; ``data`` as compact JSON on one line."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # Escaped (still the same JSON): clients that split lines on Unicode separators would cut the data line.
    lines.append("data: " + text.translate(_LINE_SEPARATORS))
    return "\n".join(lines) + "\n\n"


def error_frame(code: str, message: str, details: dict[str, Any] | None = None) -> str:
    """MUXI's ``event: error`` (``error`` and ``type``, which its SDK raises from) carrying our error contract."""
    return frame(
        {"error": message, "type": code, "code": code, "message": message, "details": details or {}}, event="error"
    )


def wants_event_stream(accept: str | None) -> bool:
    return bool(accept) and "text/event-stream" in str(accept).lower()


def _epoch(at: str) -> float:
    try:
        return parse_iso(at).timestamp()
    except ValueError:
        return 0.0


def muxi_tokens(
    record: RequestRecord, event: ProgressEvent, public_body: dict[str, Any], *, final: bool
) -> list[dict[str, Any]]:
    """MUXI's chat tokens for one event: ``progress`` while the request runs; at its end (``final``: the
    request's last event) the answer as ``content`` and ``completed`` (``status: success``), a failure as
    ``completed`` with ``status: error``, a cancellation as ``cancelled``. ``public_body`` is the request as
    clients see it (``views.request_body``)."""
    base = {
        "request_id": record.request_id,
        "user_id": record.user_id,
        "session_id": record.session_id,
        "timestamp": _epoch(event.at),
        "event_id": event.id,
    }
    if not (final and event.is_terminal):
        return [
            {
                **base,
                "type": "progress",
                "stage": event.type,
                "content": event.message,
                "status": event.status,
                "progress": event.progress,
                "current_step": event.current_step,
                "total_steps": event.total_steps,
                "completed_steps": event.completed_steps,
            }
        ]
    ending = {**base, "status": event.status, "processing_time_ms": public_body.get("duration_ms")}
    if event.status == "completed":
        text = str((public_body.get("result") or {}).get("text") or "")
        completed = {**ending, "type": "completed", "status": "success", "content": text}
        completed.update({name: public_body[name] for name in ("result", "usage") if name in public_body})
        return [{**base, "type": "content", "content": text}, completed]
    if event.status == "failed":
        error = public_body.get("error") or {}
        return [{**ending, "type": "completed", "status": "error", "content": error.get("message", ""), "error": error}]
    return [{**ending, "type": "cancelled", "content": ""}]


def escalated_token(record: RequestRecord, last_id: int) -> dict[str, Any]:
    """The last token of a chat stream that ends before its request does (MUXI's ``escalated``): where to
    poll it and where to follow its events from."""
    poll = views.poll_url(record.request_id)
    return {
        "request_id": record.request_id,
        "user_id": record.user_id,
        "session_id": record.session_id,
        "type": "completed",
        "status": "escalated",
        "escalated": True,
        "content": f"Still working; poll {poll} or follow {poll}/events?after={last_id}",
        "poll_url": poll,
        "events_url": f"{poll}/events?after={last_id}",
        "event_id": last_id,
    }
