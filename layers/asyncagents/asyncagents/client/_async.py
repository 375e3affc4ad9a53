"""The asyncio client: the same calls as ``Client``, awaited."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
from httpx_sse import SSEError, aconnect_sse

from asyncagents.client import _calls
from asyncagents.client._config import Settings, base_url, resolve
from asyncagents.client._errors import (
    ConnectionFailed,
    ServiceUnavailableError,
    WaitTimeout,
    error_from_answer,
    error_from_frame,
    unexpected_answer,
)
from asyncagents.client._models import Accepted, EventPage, Job, ProgressEvent, Request, RequestPage, Result, Trigger
from asyncagents.client._sync import LONG_POLL_SECONDS, STREAM_RECONNECTS

T = TypeVar("T")
STREAM = _calls.STREAM_TIMEOUT
ProgressCallback = Callable[[ProgressEvent], object]


class AsyncClient:
    """``Client`` for asyncio: every call is awaited; ``events`` and ``chat_stream`` are async iterators."""

    def __init__(
        self,
        api_url: str | None = None,
        *,
        client_key: str | None = None,
        admin_key: str | None = None,
        user_id: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = resolve(Settings(api_url, client_key, admin_key, user_id, token))
        self.base_url = base_url(self.settings.api_url)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def chat(self, message: str, *, user_id: str | None = None, **options: Any) -> Request | Accepted:
        """Submit a request (options as ``Client.chat``)."""
        return await self._send(_calls.chat(message, **options), user_id)

    async def chat_async(
        self,
        message: str,
        *,
        on_complete: Callable[[Result], object] | None = None,
        on_progress: ProgressCallback | None = None,
        on_error: Callable[[Exception], object] | None = None,
        user_id: str | None = None,
        **options: Any,
    ) -> AsyncPendingRequest:
        """Submit a request to run in the background; with callbacks, a task follows it (as ``Client``'s)."""
        accepted = await self.chat(message, async_=True, user_id=user_id, **options)
        pending = AsyncPendingRequest(self, accepted.request_id, user_id)
        if on_complete or on_progress or on_error:
            pending.follow_in_background(on_complete, on_progress, on_error)
        return pending

    async def chat_stream(
        self, payload: dict[str, Any] | str, *, user_id: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """MUXI's ``chat_stream`` (frames as ``Client.chat_stream`` gives them)."""
        body: dict[str, Any] = {"message": payload} if isinstance(payload, str) else dict(payload)
        body["stream"] = True
        headers = {**self._headers(False, user_id), "Accept": "text/event-stream"}
        try:
            opened = aconnect_sse(self._http, "POST", "/v1/chat", json=body, headers=headers, timeout=STREAM)
            async with opened as source:
                await self._check_stream(source.response)
                async for sse in source.aiter_sse():
                    yield _calls.chat_frame(sse.event, sse.data)
        except SSEError as error:
            raise unexpected_answer(200, f"/v1/chat answered {error}") from None
        except httpx.TransportError as error:
            raise self._unreachable(error) from None

    async def get_request(self, request_id: str, *, user_id: str | None = None) -> Request:
        return await self._send(_calls.get_request(request_id), user_id)

    get_request_status = get_request

    async def list_requests(
        self, *, limit: int = 20, status: str | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> RequestPage:
        return await self._send(_calls.list_requests(limit, status, cursor), user_id)

    async def cancel(self, request_id: str, *, user_id: str | None = None) -> dict[str, Any]:
        return await self._send(_calls.cancel(request_id), user_id)

    cancel_request = cancel

    async def answer(
        self, request_id: str, answer: str, *, clarification_id: str | None = None, user_id: str | None = None
    ) -> Request:
        return await self._send(_calls.answer(request_id, answer, clarification_id), user_id)

    async def event_page(
        self, request_id: str, *, after: int = 0, wait: float = 0, user_id: str | None = None
    ) -> EventPage:
        return await self._send(_calls.event_page(request_id, after, wait), user_id)

    async def events(
        self, request_id: str, *, after: int = 0, user_id: str | None = None
    ) -> AsyncIterator[ProgressEvent]:
        """Every event after ``after`` as it comes, resumed across dropped connections (as ``Client.events``)."""
        last, failures, pause = after, 0, 1.0
        path = _calls.events_path(request_id)
        while True:
            try:
                headers = {**self._headers(False, user_id), **_calls.stream_headers(last)}
                async with aconnect_sse(self._http, "GET", path, headers=headers, timeout=STREAM) as source:
                    if source.response.status_code == 204:
                        return
                    await self._check_stream(source.response)
                    async for sse in source.aiter_sse():
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
                await asyncio.sleep(0.5 * 2 ** (failures - 1))
                continue
            await asyncio.sleep(pause)

    async def wait(
        self,
        request_id: str,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        user_id: str | None = None,
    ) -> Request:
        """The request once it ended (as ``Client.wait``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        after = failures = 0
        while True:
            left = LONG_POLL_SECONDS if deadline is None else min(LONG_POLL_SECONDS, deadline - time.monotonic())
            if left <= 0:
                raise WaitTimeout(request_id, timeout or 0)
            try:
                page = await self.event_page(request_id, after=after, wait=round(left, 3), user_id=user_id)
            except (ConnectionFailed, ServiceUnavailableError):
                failures += 1
                if failures > STREAM_RECONNECTS:
                    raise
                await asyncio.sleep(0.5 * 2 ** (failures - 1))
                continue
            failures = 0
            for event in page.events:
                if on_progress is not None:
                    await _maybe_await(on_progress(event))
            after = page.last_event_id
            if page.finished:
                return await self.get_request(request_id, user_id=user_id)

    async def list_triggers(self) -> list[Trigger]:
        return await self._send(_calls.list_triggers(), None)

    async def get_trigger(self, name: str) -> Trigger:
        return await self._send(_calls.get_trigger(name), None)

    async def fire_trigger(
        self,
        name: str,
        data: Any,
        *,
        async_: bool | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> Request | Accepted:
        return await self._send(_calls.fire_trigger(name, data, async_, session_id), user_id)

    async def list_jobs(self, *, user_id: str | None = None) -> list[Job]:
        return await self._send(_calls.list_jobs(user_id), None)

    async def get_job(self, job_id: str) -> Job:
        return await self._send(_calls.get_job(job_id), None)

    async def create_job(self, *, schedule: str, message: str, user_id: str | None = None, **fields: Any) -> Job:
        body = {"schedule": schedule, "message": message, "user_id": user_id or self.settings.user_id, **fields}
        return await self._send(_calls.create_job(body), None)

    async def update_job(self, job_id: str, **changes: Any) -> Job:
        return await self._send(_calls.update_job(job_id, changes), None)

    async def pause_job(self, job_id: str) -> Job:
        return await self._send(_calls.job_action(job_id, "pause"), None)

    async def resume_job(self, job_id: str) -> Job:
        return await self._send(_calls.job_action(job_id, "resume"), None)

    async def delete_job(self, job_id: str) -> dict[str, Any]:
        return await self._send(_calls.delete_job(job_id), None)

    async def metrics(self, window: str = "1h") -> dict[str, Any]:
        """The seed's monitoring figures over ``window`` (``15m``, ``1h``, ``7d``; admin key)."""
        return await self._send(_calls.metrics(window), None)

    async def spend(self, key_id: str | None = None) -> dict[str, Any]:
        """Today's and this month's spending against the caps: the formation's and each key's, or ``key_id``'s
        (admin key)."""
        return await self._send(_calls.spend(key_id), None)

    def _headers(self, admin: bool, user_id: str | None) -> dict[str, str]:
        return _calls.auth_headers(self.settings, admin, user_id)

    async def _send(self, call: _calls.Call[T], user_id: str | None) -> T:
        headers = self._headers(call.admin, user_id)
        body = None if call.body is None else json.dumps(call.body)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
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

    async def _check_stream(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            await response.aread()
            raise error_from_answer(response.status_code, response.headers.get("content-type", ""), response.text)

    def _unreachable(self, error: httpx.TransportError) -> ConnectionFailed:
        return ConnectionFailed(f"cannot reach {self.base_url}: {error or type(error).__name__}")


class AsyncPendingRequest:
    """A request submitted by ``AsyncClient.chat_async``."""

    def __init__(self, client: AsyncClient, request_id: str, user_id: str | None) -> None:
        self.request_id = request_id
        self._client = client
        self._user_id = user_id
        self._task: asyncio.Task[Request] | None = None

    def follow_in_background(
        self,
        on_complete: Callable[[Result], object] | None,
        on_progress: ProgressCallback | None,
        on_error: Callable[[Exception], object] | None,
    ) -> None:
        async def run() -> Request:
            try:
                request = await self._client.wait(self.request_id, on_progress=on_progress, user_id=self._user_id)
                request.raise_for_status()
            except Exception as error:
                if on_error is not None:
                    await _maybe_await(on_error(error))
                if isinstance(error, WaitTimeout | ConnectionFailed):
                    raise
                return await self._client.get_request(self.request_id, user_id=self._user_id)
            if on_complete is not None and request.result is not None:
                await _maybe_await(on_complete(request.result.model_copy(update={"request_id": request.request_id})))
            return request

        self._task = asyncio.ensure_future(run())

    async def wait(self, timeout: float | None = None) -> Request:
        if self._task is None:
            return await self._client.wait(self.request_id, timeout=timeout, user_id=self._user_id)
        try:
            return await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            raise WaitTimeout(self.request_id, timeout or 0) from None

    async def cancel(self) -> dict[str, Any]:
        return await self._client.cancel(self.request_id, user_id=self._user_id)


async def _maybe_await(value: object) -> None:
    if isinstance(value, Awaitable):
        await value
