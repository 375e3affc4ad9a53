"""Following a request: ``GET /v1/requests/{id}/events`` (numbered events, as SSE or as a JSON long poll) and
the answer of ``POST /v1/chat`` with ``stream: true`` (MUXI's chat tokens)."""

import json
from collections.abc import Iterator
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Query

from asyncagents import runtime
from asyncagents.api import views
from asyncagents.api.event_streams import (
    KEEPALIVE,
    error_frame,
    escalated_token,
    event_stream,
    frame,
    muxi_tokens,
    wants_event_stream,
)
from asyncagents.api.routing import UserIdHeader, app, json_response, principal, public, route
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import AsyncAgentsError, NotFound
from asyncagents.domain.requests import EventPage, Submission

# A quiet stream sends a comment this often, so that proxies and clients keep it open.
KEEPALIVE_SECONDS = 10.0
# What an EventSource waits before it reconnects after a buffered answer (milliseconds).
RECONNECT_MS = 1000
# The Lambda must answer before its timeout (and API Gateway's 30 s): a buffered stream ends this much earlier.
_ANSWER_MARGIN_SECONDS = 2.0

LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=r"^[0-9]{1,9}$",
        description="The last event the client has (an EventSource sends it when it reconnects).",
    ),
]
AcceptHeader = Annotated[str | None, Header(alias="Accept", max_length=1024)]


@route(
    "GET",
    "/v1/requests/<request_id>/events",
    key="client",
    model="EventPage",
    errors=(404,),
    summary="A request's progress events, numbered: SSE (text/event-stream) or a JSON long poll",
)
def request_events(
    request_id: str,
    after: Annotated[int, Query(ge=0, le=999_999_999, description="Events after this number")] = 0,
    wait: Annotated[
        float, Query(ge=0, le=28, description="Seconds to wait for a next event when there is none yet")
    ] = 0,
    last_event_id: LastEventIdHeader = None,
    accept: AcceptHeader = None,
    user_id: UserIdHeader = None,
) -> Response[Any]:
    caller = principal(user_id)
    start = max(after, int(last_event_id or 0))
    if not wants_event_stream(accept):
        service = runtime.current().request_service
        page = service.events(caller, request_id, after=start, wait_seconds=min(wait, _window(wait)))
        return json_response(200, _page_body(page))
    return _follow_stream(caller, request_id, start, wait)


@route(
    "GET",
    "/v1/events/<session_id>/<request_id>",
    key="client",
    errors=(404,),
    summary="MUXI's stream of one request of a session: the same events, always as SSE",
)
def session_request_events(
    session_id: str, request_id: str, last_event_id: LastEventIdHeader = None, user_id: UserIdHeader = None
) -> Response[Any]:
    caller = principal(user_id)
    record = runtime.current().request_service.get(caller, request_id)
    if record.session_id is not None and record.session_id != session_id:
        raise NotFound(f"request {request_id} not found in session {session_id}", details={"session_id": session_id})
    return _follow_stream(caller, request_id, int(last_event_id or 0), 0)


def _follow_stream(caller: Principal, request_id: str, start: int, wait: float) -> Response[Any]:
    """The request's events after ``start`` as SSE, until it ends (or, buffered, until the first new ones)."""
    service = runtime.current().request_service
    first = service.events(caller, request_id, after=start)  # an unknown request is a 404, before any frame
    if first.finished and not first.events:
        return Response(status_code=204, body="")  # all told: an EventSource stops reconnecting on a 204
    window = _window(wait or None)

    def frames(streaming: bool) -> Iterator[str]:
        yield f"retry: {RECONNECT_MS}\n\n"
        deadline = None if streaming else service.monotonic() + window
        heartbeat = KEEPALIVE_SECONDS if streaming else None
        try:
            pages = service.follow(
                caller, request_id, after=start, deadline=deadline, heartbeat_seconds=heartbeat, first=first
            )
            for page in pages:
                yield from _event_frames(page)
                if page.finished:
                    done = {"finished": True, "request_id": request_id, "status": page.record.status.value}
                    yield frame({**done, "last_event_id": page.last_id}, event="done")
                    return
                if not streaming and page.events:
                    return  # buffered: answer what came; the client reconnects for the rest
        except AsyncAgentsError as error:
            yield error_frame(error.code, error.message)

    return event_stream(frames)


def chat_stream(caller: Principal, submission: Submission) -> Response[Any]:
    """``POST /v1/chat`` with ``stream: true``: MUXI's chat tokens, the request id in the first; the answer at
    the end, or, when the window closes first (a buffered stream), where to poll and follow the request."""
    record = submission.record
    service = runtime.current().request_service
    window = _window(None)

    def frames(streaming: bool) -> Iterator[str]:
        yield KEEPALIVE
        deadline = None if streaming else service.monotonic() + window
        heartbeat = KEEPALIVE_SECONDS if streaming else None
        last_id = 0
        try:
            pages = service.follow(caller, record.request_id, after=0, deadline=deadline, heartbeat_seconds=heartbeat)
            for page in pages:
                ended = public(page.record) if page.record.status.is_terminal else {}
                for event in page.events:
                    final = page.finished and event.id == page.total
                    for token in muxi_tokens(page.record, event, ended, final=final):
                        yield frame({"token": token})
                last_id = page.last_id
                if not page.events:
                    yield KEEPALIVE
                if page.finished:
                    break
            else:
                yield frame({"token": escalated_token(record, last_id)})
        except AsyncAgentsError as error:
            yield error_frame(error.code, error.message)
        yield frame({"finished": True}, event="done")

    return event_stream(frames, headers={"Location": views.poll_url(record.request_id)})


def as_event_stream_error(response: dict[str, Any]) -> dict[str, Any]:
    """An error answer (JSON) for a client that asked for an event stream: the same status, its body as MUXI's
    ``event: error`` frame, which MUXI's SDK raises (it reads no status)."""
    try:
        body = json.loads(response.get("body") or "{}")
    except ValueError:
        return response
    if not isinstance(body, dict) or "code" not in body:
        return response
    headers = {k: v for k, v in (response.get("headers") or {}).items() if k.lower() != "content-type"}
    return {
        **response,
        "headers": {**headers, "Content-Type": "text/event-stream"},
        "body": error_frame(str(body["code"]), str(body.get("message", "")), body.get("details") or {}),
        "isBase64Encoded": False,
    }


def _event_frames(page: EventPage) -> Iterator[str]:
    if not page.events:
        yield KEEPALIVE
        return
    ended = public(page.record) if page.finished else None
    for event in page.events:
        outcome = ended if event.id == page.total else None
        yield frame(views.event_body(page.record.request_id, event, outcome), event=event.type, event_id=event.id)


def _page_body(page: EventPage) -> dict[str, Any]:
    ended = public(page.record) if page.finished else None
    events = [views.event_body(page.record.request_id, e, ended if e.id == page.total else None) for e in page.events]
    return {
        "request_id": page.record.request_id,
        "status": page.record.status.value,
        "events": events,
        "last_event_id": page.last_id,
        "finished": page.finished,
    }


def _window(requested: float | None) -> float:
    """How long an answer may wait or buffer: what was asked (else the formation's sync wait), within the
    function's remaining time."""
    wanted = requested if requested else runtime.current().formation.async_.sync_wait_seconds
    context = app.lambda_context
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else wanted
    return max(0.0, min(wanted, remaining - _ANSWER_MARGIN_SECONDS))
