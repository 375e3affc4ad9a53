"""The synchronous client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
from httpx_sse import SSEError, connect_sse

from asyncagents.client import _calls
from asyncagents.client._config import Settings, base_url, resolve
from asyncagents.client._errors import (
    ApiError,
    ConnectionFailed,
    ServiceUnavailableError,
    WaitTimeout,
    error_from_answer,
    error_from_frame,
    unexpected_answer,
)
from asyncagents.client._models import Accepted, EventPage, Job, ProgressEvent, Request, RequestPage, Result, Trigger

T = TypeVar("T")
STREAM = _calls.STREAM_TIMEOUT
ProgressCallback = Callable[[ProgressEvent], object]

# Reconnections in a row, without an event, before an event stream gives up (waits 0.5, 1, 2, 4, 8 s).
STREAM_RECONNECTS = 5
# One long poll of wait(): within API Gateway's 30 s.
LONG_POLL_SECONDS = 20.0


class Client:
    """The asyncagents API (and MUXI's, which it serves): requests, their events, triggers, scheduled jobs.

    ``api_url`` may end with ``/v1`` or not. Anything not given comes from the environment or the config file
    (``asyncagents.client.resolve``). ``user_id`` is the end user calls act for (``X-Muxi-User-Id``).
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        client_key: str | None = None,
        admin_key: str | None = None,
        user_id: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = resolve(Settings(api_url, client_key, admin_key, user_id, token))
        self.base_url = base_url(self.settings.api_url)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------------

    def chat(
        self,
        message: str,
        *,
        async_: bool | None = None,
        webhook_url: str | None = None,
        request_id: str | None = None,
        session_id: str | None = None,
        threshold_seconds: float | None = None,
        user_id: str | None = None,
    ) -> Request | Accepted:
        """Submit a request: the finished ``Request`` (a sync answer) or ``Accepted`` (it runs in the background)."""
        call = _calls.chat(
            message,
            async_=async_,
            webhook_url=webhook_url,
            request_id=request_id,
            session_id=session_id,
            threshold_seconds=threshold_seconds,
        )
        return self._send(call, user_id)

    def chat_async(
        self,
        message: str,
        *,
        on_complete: Callable[[Result], object] | None = None,
        on_progress: ProgressCallback | None = None,
        on_error: Callable[[Exception], object] | None = None,
        user_id: str | None = None,
        **options: Any,
    ) -> PendingRequest:
        """Submit a request to run in the background (seed 000's ``chat_async``). With callbacks, a thread
        follows it: ``on_progress(event)`` for each event, then ``on_complete(result)`` or ``on_error(error)``."""
        accepted = self.chat(message, async_=True, user_id=user_id, **options)
        pending = PendingRequest(self, accepted.request_id, user_id)
        if on_complete or on_progress or on_error:
            pending.follow_in_background(on_complete, on_progress, on_error)
        return pending

    def chat_stream(self, payload: dict[str, Any] | str, *, user_id: str | None = None) -> Iterator[dict[str, Any]]:
        """MUXI's ``chat_stream``: ``stream: true``, and each frame as ``{"event", "data"}`` with the token's
        fields beside them (so ``event.get("request_id")`` is the request's id, as seed 000 reads it)."""
        body: dict[str, Any] = {"message": payload} if isinstance(payload, str) else dict(payload)
        body["stream"] = True
        headers = {**self._headers(False, user_id), "Accept": "text/event-stream"}
        try:
            with connect_sse(self._http, "POST", "/v1/chat", json=body, headers=headers, timeout=STREAM) as source:
                self._check_stream(source.response)
                for sse in source.iter_sse():
                    yield _calls.chat_frame(sse.event, sse.data)
        except SSEError as error:
            raise unexpected_answer(200, f"/v1/chat answered {error}") from None
        except httpx.TransportError as error:
            raise self._unreachable(error) from None

    def get_request(self, request_id: str, *, user_id: str | None = None) -> Request:
        return self._send(_calls.get_request(request_id), user_id)

    get_request_status = get_request  # MUXI's name

    def list_requests(
        self, *, limit: int = 20, status: str | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> RequestPage:
        return self._send(_calls.list_requests(limit, status, cursor), user_id)

    def cancel(self, request_id: str, *, user_id: str | None = None) -> dict[str, Any]:
        """Cancel (a second cancel answers that it already was); ``ConflictError`` once it ended otherwise."""
        return self._send(_calls.cancel(request_id), user_id)

    cancel_request = cancel  # MUXI's name

    def answer(
        self, request_id: str, answer: str, *, clarification_id: str | None = None, user_id: str | None = None
    ) -> Request:
        """Answer the question the request waits on; it resumes."""
        return self._send(_calls.answer(request_id, answer, clarification_id), user_id)

    def event_page(self, request_id: str, *, after: int = 0, wait: float = 0, user_id: str | None = None) -> EventPage:
        """The events after ``after`` (JSON); with ``wait``, a long poll for the next ones."""
        return self._send(_calls.event_page(request_id, after, wait), user_id)

    def events(self, request_id: str, *, after: int = 0, user_id: str | None = None) -> Iterator[ProgressEvent]:
        """Every event after ``after``, as it comes, until the request ends. A dropped or ended connection is
        resumed from the last event received (``Last-Event-ID``): no event is lost or repeated."""
        last, failures, pause = after, 0, 1.0
        path = _calls.events_path(request_id)
        while True:
            try:
                headers = {**self._headers(False, user_id), **_calls.stream_headers(last)}
                with connect_sse(self._http, "GET", path, headers=headers, timeout=STREAM) as source:
                    if source.response.status_code == 204:
                        return
                    self._check_stream(source.response)
                    for sse in source.iter_sse():
                        pause = sse.retry / 1000 if sse.retry is not None else pause
                        if sse.event == "done":
                            return
                        if sse.event == "error":
                            raise error_from_frame(sse.data)
                        if sse.data:
                            event = ProgressEvent.model_validate_json(sse.data)
                            last, failures = event.id, 0
                            yield event
            except SSEError as error:
                raise unexpected_answer(200, f"{path} answered {error}") from None
            except httpx.TransportError as error:
                failures += 1
                if failures > STREAM_RECONNECTS:
                    raise self._unreachable(error) from None
                time.sleep(0.5 * 2 ** (failures - 1))
                continue
            time.sleep(pause)  # a buffered answer ended: come back for the rest

    def wait(
        self,
        request_id: str,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        user_id: str | None = None,
    ) -> Request:
        """The request once it ended (``raise_for_status()`` to raise if it did not complete), following its
        events by long polls; ``on_progress(event)`` for each. ``WaitTimeout`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        after = failures = 0
        while True:
            left = LONG_POLL_SECONDS if deadline is None else min(LONG_POLL_SECONDS, deadline - time.monotonic())
            if left <= 0:
                raise WaitTimeout(request_id, timeout or 0)
            try:
                page = self.event_page(request_id, after=after, wait=round(left, 3), user_id=user_id)
            except (ConnectionFailed, ServiceUnavailableError):
                failures += 1
                if failures > STREAM_RECONNECTS:
                    raise
                time.sleep(0.5 * 2 ** (failures - 1))
                continue
            failures = 0
            for event in page.events:
                if on_progress is not None:
                    on_progress(event)
            after = page.last_event_id
            if page.finished:
                return self.get_request(request_id, user_id=user_id)

    # -- triggers and scheduled jobs ----------------------------------------------------------------

    def list_triggers(self) -> list[Trigger]:
        return self._send(_calls.list_triggers(), None)

    def get_trigger(self, name: str) -> Trigger:
        return self._send(_calls.get_trigger(name), None)

    def fire_trigger(
        self,
        name: str,
        data: Any,
        *,
        async_: bool | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> Request | Accepted:
        """Fire a trigger with the client key (its definition must allow it), as MUXI's ``{data, use_async}``."""
        return self._send(_calls.fire_trigger(name, data, async_, session_id), user_id)

    def list_jobs(self, *, user_id: str | None = None) -> list[Job]:
        return self._send(_calls.list_jobs(user_id), None)

    def get_job(self, job_id: str) -> Job:
        return self._send(_calls.get_job(job_id), None)

    def create_job(self, *, schedule: str, message: str, user_id: str | None = None, **fields: Any) -> Job:
        """A scheduled job (admin key): ``schedule`` is cron (``0 9 * * 1-5``), ``rate(...)``, or an ISO time."""
        body = {"schedule": schedule, "message": message, "user_id": user_id or self.settings.user_id, **fields}
        return self._send(_calls.create_job(body), None)

    def update_job(self, job_id: str, **changes: Any) -> Job:
        return self._send(_calls.update_job(job_id, changes), None)

    def pause_job(self, job_id: str) -> Job:
        return self._send(_calls.job_action(job_id, "pause"), None)

    def resume_job(self, job_id: str) -> Job:
        return self._send(_calls.job_action(job_id, "resume"), None)

    def delete_job(self, job_id: str) -> dict[str, Any]:
        return self._send(_calls.delete_job(job_id), None)

    def metrics(self, window: str = "1h") -> dict[str, Any]:
        """The seed's monitoring figures over ``window`` (``15m``, ``1h``, ``7d``; admin key)."""
        return self._send(_calls.metrics(window), None)

    def spend(self, key_id: str | None = None) -> dict[str, Any]:
        """Today's and this month's spending against the caps: the formation's and each key's, or ``key_id``'s
        (admin key)."""
        return self._send(_calls.spend(key_id), None)

    # -- sending ------------------------------------------------------------------------------------

    def _headers(self, admin: bool, user_id: str | None) -> dict[str, str]:
        return _calls.auth_headers(self.settings, admin, user_id)

    def _send(self, call: _calls.Call[T], user_id: str | None) -> T:
        headers = self._headers(call.admin, user_id)
        body = None if call.body is None else json.dumps(call.body)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                call.method,
                call.path,
                params=call.params,
                content=body,
                headers=headers,
                timeout=call.timeout if call.timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as error:
            raise self._unreachable(error) from None
        if response.status_code >= 400:
            raise error_from_answer(response.status_code, response.headers.get("content-type", ""), response.text)
        content_type = response.headers.get("content-type", "")
        return _calls.read_answer(call, response.status_code, content_type, response.text)

    def _check_stream(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            response.read()
            raise error_from_answer(response.status_code, response.headers.get("content-type", ""), response.text)

    def _unreachable(self, error: httpx.TransportError) -> ConnectionFailed:
        return ConnectionFailed(f"cannot reach {self.base_url}: {error or type(error).__name__}")


class PendingRequest:
    """A request submitted by ``chat_async``: wait for it, cancel it, or let its callbacks tell you."""

    def __init__(self, client: Client, request_id: str, user_id: str | None) -> None:
        self.request_id = request_id
        self._client = client
        self._user_id = user_id
        self._thread: threading.Thread | None = None
        self._outcome: Request | BaseException | None = None

    def follow_in_background(
        self,
        on_complete: Callable[[Result], object] | None,
        on_progress: ProgressCallback | None,
        on_error: Callable[[Exception], object] | None,
    ) -> None:
        def run() -> None:
            try:
                request = self._client.wait(self.request_id, on_progress=on_progress, user_id=self._user_id)
                self._outcome = request
                request.raise_for_status()
            except Exception as error:
                self._outcome = self._outcome or error
                if on_error is not None:
                    on_error(error)
                return
            if on_complete is not None and request.result is not None:
                on_complete(request.result.model_copy(update={"request_id": request.request_id}))

        self._thread = threading.Thread(target=run, name=f"asyncagents-{self.request_id}", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> Request:
        """The request once it ended (its callbacks, if any, have run)."""
        if self._thread is None:
            return self._client.wait(self.request_id, timeout=timeout, user_id=self._user_id)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise WaitTimeout(self.request_id, timeout or 0)
        if isinstance(self._outcome, Request):
            return self._outcome
        raise self._outcome if isinstance(self._outcome, BaseException) else ApiError(0, "unknown", "no outcome")

    def cancel(self) -> dict[str, Any]:
        return self._client.cancel(self.request_id, user_id=self._user_id)
