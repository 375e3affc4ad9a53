"""Following requests over real HTTP: MUXI's chat_stream, the events stream resumed after a disconnect, and
the answers API Gateway gets (buffered within the window) for both."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from httpx_sse import connect_sse
from muxi import FormationClient
from muxi.errors import MuxiError

from asyncagents.local.http import build_event
from tests.stack_fixture import KEYS, stack_fixture

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


@pytest.fixture
def user() -> str:
    return f"follow-{uuid.uuid4().hex[:8]}"


def headers(user: str, **more: str) -> dict[str, str]:
    return {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user, **more}


def submit(stack, user: str, message: str) -> str:
    answer = httpx.post(f"{stack.url}/v1/chat", json={"message": message, "async": True}, headers=headers(user))
    assert answer.status_code == 202, answer.text
    return answer.json()["request_id"]


def test_muxi_sdk_chat_stream_gives_the_request_id_first_then_progress_then_the_result(stack, user):
    # Given MUXI's own SDK, built the way seed 000 builds it
    with FormationClient(
        server_url=stack.url, formation_id="test-formation", client_key=KEYS.client_key, timeout=60
    ) as muxi:
        # When it streams a chat
        frames = list(muxi.chat_stream({"message": "a, b, c [demo step_seconds=0.1]"}, user_id=user))
        # Then the first token names the request, progress follows, and the answer ends it
        tokens = [json.loads(f["data"])["token"] for f in frames if f["event"] == "message"]
        request_id = tokens[0]["request_id"]
        assert tokens[0]["type"] == "progress" and tokens[0]["stage"] == "accepted"
        assert {t["request_id"] for t in tokens} == {request_id}
        stages = [t["stage"] for t in tokens if t["type"] == "progress"]
        assert stages[1] == "planned" and stages.count("step_completed") == 3
        assert [t["progress"] for t in tokens if t["type"] == "progress"] == sorted(
            t["progress"] for t in tokens if t["type"] == "progress"
        )
        status = muxi.get_request_status(request_id, user_id=user)
        assert tokens[-2] == {**tokens[-2], "type": "content", "content": status["result"]["text"]}
        assert tokens[-1]["type"] == "completed" and tokens[-1]["status"] == "success"
        assert tokens[-1]["content"] == status["result"]["text"]
        assert frames[-1] == {"event": "done", "data": '{"finished":true}'}
        # And a bad body is raised by the SDK (an error frame), naming the field
        with pytest.raises(MuxiError) as raised:
            list(muxi.chat_stream({"message": "   "}, user_id=user))
        assert raised.value.code == "validation_error" and "message" in raised.value.message


def read_events(stack, user: str, request_id: str, last_event_id: int, *, stop_after: int | None = None):
    """Events from the SSE stream (and whether it said done), stopping early after ``stop_after`` events."""
    events, done = [], False
    with (
        httpx.Client(timeout=30) as client,
        connect_sse(
            client,
            "GET",
            f"{stack.url}/v1/requests/{request_id}/events",
            headers=headers(user, **{"Last-Event-ID": str(last_event_id)}),
        ) as source,
    ):
        assert source.response.status_code == 200
        for sse in source.iter_sse():
            if sse.event == "done":
                done = True
                break
            if not sse.data:  # the retry: hint
                continue
            event = json.loads(sse.data)
            assert int(sse.id) == event["id"] and sse.event == event["type"]
            events.append(event)
            if stop_after is not None and len(events) >= stop_after:
                break
    return events, done


def test_a_reconnecting_events_client_loses_no_event(stack, user):
    # Given a request with four slow steps, followed over SSE from the start
    request_id = submit(stack, user, "a, b, c, d [demo step_seconds=0.3]")
    first, done = read_events(stack, user, request_id, 0, stop_after=2)
    assert not done and [e["id"] for e in first] == [1, 2]
    # When the client disconnects while the request goes on, then reconnects with Last-Event-ID
    time.sleep(0.7)
    rest, done = read_events(stack, user, request_id, first[-1]["id"])
    # Then it got every event once, in order, up to the end, and the same as the JSON page has
    received = first + rest
    assert done and [e["id"] for e in received] == list(range(1, len(received) + 1))
    assert received[-1]["type"] == "completed" and received[-1]["result"]["text"]
    page = httpx.get(f"{stack.url}/v1/requests/{request_id}/events", headers=headers(user)).json()
    assert page["finished"] and page["events"] == received
    # And a client that has it all is told so (an EventSource stops on 204)
    again = httpx.get(
        f"{stack.url}/v1/requests/{request_id}/events",
        headers=headers(user, Accept="text/event-stream", **{"Last-Event-ID": str(received[-1]["id"])}),
    )
    assert again.status_code == 204
    # And MUXI's stream_request route serves the same stream
    with FormationClient(base_url=f"{stack.url}/v1", client_key=KEYS.client_key, timeout=30) as muxi:
        frames = list(muxi.stream_request(user, "no-session", request_id))
    assert [json.loads(f["data"])["id"] for f in frames if f["event"] not in {"done", "message"}] == [
        e["id"] for e in received
    ]


def test_a_long_poll_answers_with_the_next_events_and_others_get_404(stack, user):
    request_id = submit(stack, user, "a, b [demo step_seconds=0.5]")
    url = f"{stack.url}/v1/requests/{request_id}/events"
    first = httpx.get(url, headers=headers(user)).json()
    nxt = httpx.get(url, params={"after": first["last_event_id"], "wait": 10}, headers=headers(user), timeout=30)
    assert nxt.status_code == 200 and nxt.json()["events"]
    assert nxt.json()["events"][0]["id"] == first["last_event_id"] + 1
    assert httpx.get(url, headers=headers("someone-else")).status_code == 404
    for params, field in (({"after": -1}, "after"), ({"wait": 99}, "wait")):
        refused = httpx.get(url, params=params, headers=headers(user))
        assert refused.status_code == 422 and field in refused.text
    refused = httpx.get(url, headers=headers(user, **{"Last-Event-ID": "x1"}))
    assert refused.status_code == 400 and "last-event-id" in refused.text.lower()


def call_as_api_gateway(
    stack, method: str, path: str, user: str, body: dict | None = None, **more_headers: str
) -> dict:
    """What API Gateway gets from ApiFunction: the whole answer at once (it cannot stream)."""
    data = json.dumps(body).encode() if body is not None else b""
    event = build_event(
        method,
        path,
        headers(user, Accept="text/event-stream", **{"Content-Type": "application/json"}, **more_headers),
        data,
        "127.0.0.1",
    )
    return stack.gateway.call(event)


def test_on_aws_a_chat_stream_is_buffered_within_the_window_and_ends_with_where_to_follow(stack, user):
    # Given a request longer than the sync window (5 s in the test formation), streamed through API Gateway
    started = time.monotonic()
    answer = call_as_api_gateway(
        stack, "POST", "/v1/chat", user, {"message": "a, b, c, d [demo step_seconds=2]", "stream": True}
    )
    # Then the answer comes within the window, with the request id first and where to follow it last
    assert time.monotonic() - started < 8
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"] == "text/event-stream"
    frames = [block for block in answer["body"].split("\n\n") if block.startswith("data:")]
    tokens = [json.loads(block.removeprefix("data: "))["token"] for block in frames]
    assert tokens[0]["stage"] == "accepted" and tokens[0]["request_id"]
    assert tokens[-1]["status"] == "escalated" and tokens[-1]["poll_url"].endswith(tokens[0]["request_id"])
    assert answer["body"].endswith('event: done\ndata: {"finished":true}\n\n')
    # And the events route, buffered too, answers once the next events come (an EventSource then reconnects)
    after = tokens[-1]["event_id"]
    path = f"/v1/requests/{tokens[0]['request_id']}/events"
    events = call_as_api_gateway(stack, "GET", path, user, **{"Last-Event-ID": str(after)})
    assert events["statusCode"] == 200 and events["body"].startswith("retry: 1000\n\n")
    ids = [int(line.removeprefix("id: ")) for line in events["body"].splitlines() if line.startswith("id: ")]
    assert ids and ids[0] == after + 1 and "event: done" not in events["body"]
    httpx.delete(f"{stack.url}/v1/requests/{tokens[0]['request_id']}", headers=headers(user))
