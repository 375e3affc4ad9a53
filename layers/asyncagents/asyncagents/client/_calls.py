"""The API's operations as data (method, path, parameters, body, and how to read the answer), shared by the
sync and the async client: each only sends them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from asyncagents.client._config import ConfigurationError, Settings
from asyncagents.client._errors import error_from_frame, unexpected_answer
from asyncagents.client._models import Accepted, EventPage, Job, Request, RequestPage, Trigger

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[int, Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    admin: bool = False
    timeout: float | None = None  # seconds to wait for the answer, when the client's default is too short


def read_answer(call: Call[T], status: int, content_type: str, text: str) -> T:
    """The call's typed answer; ``ApiError("unexpected_response")`` for one this API would not send."""
    try:
        return call.read(status, json.loads(text))
    except ValueError as error:  # not JSON, or JSON of another shape (pydantic's errors are ValueErrors)
        shown = content_type or "no content type"
        raise unexpected_answer(status, f"{call.method} {call.path} answered {shown}, not this API's JSON") from error


def _segment(value: str) -> str:
    return quote(value, safe="")


def _request_or_accepted(status: int, body: Any) -> Request | Accepted:
    return Request.model_validate(body) if status == 200 else Accepted.model_validate(body)


def chat_body(message: str, options: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /v1/chat`` body: ``async_`` is sent as ``async``; options left as ``None`` are not sent."""
    body: dict[str, Any] = {"message": message}
    for name, value in options.items():
        if value is not None:
            body["async" if name == "async_" else name] = value
    return body


def chat(message: str, **options: Any) -> Call[Request | Accepted]:
    return Call("POST", "/v1/chat", _request_or_accepted, body=chat_body(message, options))


def get_request(request_id: str) -> Call[Request]:
    return Call("GET", f"/v1/requests/{_segment(request_id)}", lambda _, body: Request.model_validate(body))


def list_requests(limit: int, status: str | None, cursor: str | None) -> Call[RequestPage]:
    params = {k: v for k, v in {"limit": limit, "status": status, "cursor": cursor}.items() if v is not None}
    return Call("GET", "/v1/requests", lambda _, body: RequestPage.model_validate(body), params=params)


def cancel(request_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/v1/requests/{_segment(request_id)}", lambda _, body: dict(body))


def answer(request_id: str, text: str, clarification_id: str | None) -> Call[Request]:
    body = {"answer": text, **({"clarification_request_id": clarification_id} if clarification_id else {})}
    path = f"/v1/requests/{_segment(request_id)}/clarification"
    return Call("POST", path, lambda _, answered: Request.model_validate(answered), body=body)


def events_path(request_id: str) -> str:
    return f"/v1/requests/{_segment(request_id)}/events"


def event_page(request_id: str, after: int, wait: float) -> Call[EventPage]:
    params = {"after": after, **({"wait": wait} if wait else {})}
    read: Callable[[int, Any], EventPage] = lambda _, body: EventPage.model_validate(body)  # noqa: E731
    # A long poll answers after up to ``wait`` seconds: its read may take that long and more.
    return Call("GET", events_path(request_id), read, params=params, timeout=wait + 15 if wait else None)


def list_triggers() -> Call[list[Trigger]]:
    return Call("GET", "/v1/triggers", lambda _, body: [Trigger.model_validate(t) for t in body.get("triggers", [])])


def get_trigger(name: str) -> Call[Trigger]:
    return Call("GET", f"/v1/triggers/{_segment(name)}", lambda _, body: Trigger.model_validate(body))


def fire_trigger(name: str, data: Any, async_: bool | None, session_id: str | None) -> Call[Request | Accepted]:
    body: dict[str, Any] = {"data": data}
    if async_ is not None:
        body["use_async"] = async_
    if session_id is not None:
        body["session_id"] = session_id
    return Call("POST", f"/v1/triggers/{_segment(name)}", _request_or_accepted, body=body)


def _job(_: int, body: Any) -> Job:
    return Job.model_validate(body)


def list_jobs(user_id: str | None) -> Call[list[Job]]:
    params = {"user_id": user_id} if user_id else {}
    read: Callable[[int, Any], list[Job]] = lambda _, body: [Job.model_validate(j) for j in body.get("jobs", [])]  # noqa: E731
    return Call("GET", "/v1/scheduler/jobs", read, params=params, admin=True)


def get_job(job_id: str) -> Call[Job]:
    return Call("GET", f"/v1/scheduler/jobs/{_segment(job_id)}", _job, admin=True)


def create_job(fields: dict[str, Any]) -> Call[Job]:
    body = {k: v for k, v in fields.items() if v is not None}
    return Call("POST", "/v1/scheduler/jobs", _job, body=body, admin=True)


def update_job(job_id: str, changes: dict[str, Any]) -> Call[Job]:
    return Call("PUT", f"/v1/scheduler/jobs/{_segment(job_id)}", _job, body=changes, admin=True)


def job_action(job_id: str, action: str) -> Call[Job]:
    return Call("POST", f"/v1/scheduler/jobs/{_segment(job_id)}/{action}", _job, admin=True)


def metrics(window: str) -> Call[dict[str, Any]]:
    return Call("GET", "/v1/admin/metrics", lambda _, body: dict(body), params={"window": window}, admin=True)


def spend(key_id: str | None) -> Call[dict[str, Any]]:
    params = {"key_id": key_id} if key_id else {}
    return Call("GET", "/v1/admin/spend", lambda _, body: dict(body), params=params, admin=True)


def delete_job(job_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/v1/scheduler/jobs/{_segment(job_id)}", lambda _, body: dict(body), admin=True)


# Streams have no overall time limit, but a silent connection is a dead one: the server sends a keepalive every
# 10 s (and on AWS answers within 30 s), so 45 s without a byte means reconnect.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=45.0)


def auth_headers(settings: Settings, admin: bool, user_id: str | None) -> dict[str, str]:
    """The key a call needs (``ConfigurationError`` naming where to set it when missing) and the user it is for;
    with an end user's token, a client call sends the token instead (the token names the user)."""
    if settings.token and not admin:
        return {"Authorization": f"Bearer {settings.token}"}
    key = settings.admin_key if admin else settings.client_key
    if not key:
        kind = "admin" if admin else "client"
        raise ConfigurationError(f"no {kind} key: pass {kind}_key= or set ASYNCAGENTS_{kind.upper()}_KEY")
    headers = {("X-Muxi-Admin-Key" if admin else "X-Muxi-Client-Key"): key}
    user = user_id or settings.user_id
    if user:
        headers["X-Muxi-User-Id"] = user
    return headers


def stream_headers(last_event_id: int) -> dict[str, str]:
    return {"Accept": "text/event-stream", "Cache-Control": "no-cache", "Last-Event-ID": str(last_event_id)}


def chat_frame(event: str, data: str) -> dict[str, Any]:
    """A chat stream's frame as ``chat_stream`` yields it: ``{"event", "data"}`` and the token's fields."""
    frame: dict[str, Any] = {"event": event, "data": data}
    if event == "error":
        raise error_from_frame(data)
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        return frame
    token = parsed.get("token") if isinstance(parsed, dict) else None
    if isinstance(token, dict):
        frame.update({k: v for k, v in token.items() if k not in frame})
    return frame
