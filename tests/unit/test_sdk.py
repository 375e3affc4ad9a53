"""The SDK without a server: where it finds the API, and how it follows a request through the answers API
Gateway gives (buffered, ending before the request does) and through a dropped connection."""

from __future__ import annotations

import json

import httpx
import pytest

from asyncagents.client import Client, ConfigurationError, ConnectionFailed, base_url, resolve
from asyncagents.client._config import Settings


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://abc.execute-api.eu-west-1.amazonaws.com", "https://abc.execute-api.eu-west-1.amazonaws.com"),
        ("https://abc.execute-api.eu-west-1.amazonaws.com/v1/", "https://abc.execute-api.eu-west-1.amazonaws.com"),
        ("http://127.0.0.1:8001/api/my-assistant/v1", "http://127.0.0.1:8001/api/my-assistant"),
        ("http://127.0.0.1:8001/stage", "http://127.0.0.1:8001/stage"),
    ],
)
def test_the_api_url_works_with_or_without_v1(given, root):
    assert base_url(given) == root


@pytest.mark.parametrize("bad", [None, "", "ftp://x", "127.0.0.1:8001", "http://"])
def test_a_missing_or_malformed_api_url_is_a_configuration_error(bad):
    with pytest.raises(ConfigurationError):
        base_url(bad)


def test_arguments_win_over_the_environment_which_wins_over_the_config_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('api_url = "http://file"\nclient_key = "fmc_file"\nuser_id = "file-user"\n')
    environ = {"ASYNCAGENTS_CONFIG": str(config), "ASYNCAGENTS_CLIENT_KEY": "fmc_env"}
    settings = resolve(Settings(user_id="arg-user"), environ=environ)
    assert settings == Settings(api_url="http://file", client_key="fmc_env", admin_key=None, user_id="arg-user")
    config.write_text("api_url = [1, 2]\n")
    with pytest.raises(ConfigurationError, match="api_url must be a string"):
        resolve(environ=environ)
    config.write_text("not toml = = =\n")
    with pytest.raises(ConfigurationError, match=r"config\.toml"):
        resolve(environ=environ)


def sse(*frames: str) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, text="".join(frames))


def event_frame(number: int, kind: str = "step_started") -> str:
    body = {"id": number, "type": kind, "request_id": "req_1", "at": "2026-01-01T00:00:00.000000Z", "status": "x"}
    return f"id: {number}\nevent: {kind}\ndata: {json.dumps(body)}\n\n"


def test_events_resume_across_buffered_answers_and_a_dropped_connection(monkeypatch):
    # Given API Gateway's answers: events 1-2 (then the answer ends), a dropped connection, then 3 and the end
    monkeypatch.setattr("asyncagents.client._sync.time.sleep", lambda _: None)
    asked: list[str | None] = []
    answers = [
        lambda: sse("retry: 0\n\n", event_frame(1), event_frame(2)),
        lambda: (_ for _ in ()).throw(httpx.ReadError("connection reset")),
        lambda: sse("retry: 0\n\n", event_frame(3, "completed"), 'event: done\ndata: {"finished":true}\n\n'),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("Last-Event-ID"))
        return answers[len(asked) - 1]()

    client = Client("https://api.example", client_key="fmc_x", transport=httpx.MockTransport(handler))
    # When the SDK follows the request
    events = list(client.events("req_1"))
    # Then it got each event once, asking each time from the last one it had
    assert [e.id for e in events] == [1, 2, 3] and events[-1].is_terminal
    assert asked == ["0", "2", "2"]


def test_events_give_up_after_repeated_failures_with_one_clear_error(monkeypatch):
    monkeypatch.setattr("asyncagents.client._sync.time.sleep", lambda _: None)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client = Client("https://api.example", client_key="fmc_x", transport=httpx.MockTransport(handler))
    with pytest.raises(ConnectionFailed, match=r"cannot reach https://api\.example"):
        list(client.events("req_1"))


def test_a_long_poll_gets_a_read_timeout_longer_than_its_wait():
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        page = {"request_id": "req_1", "status": "completed", "events": [], "last_event_id": 3, "finished": True}
        if request.url.path.endswith("/events"):
            return httpx.Response(200, json=page)
        return httpx.Response(200, json={"request_id": "req_1", "status": "completed"})

    client = Client("https://api.example", client_key="fmc_x", timeout=3, transport=httpx.MockTransport(handler))
    assert client.wait("req_1").status == "completed"
    assert seen[0]["read"] >= 20 and seen[1]["read"] == 3  # the long poll, then the plain read


def test_an_answer_that_is_not_this_apis_is_a_typed_error_not_a_crash():
    from asyncagents.client import ApiError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, text="<html>a login page</html>")

    client = Client("https://api.example", client_key="fmc_x", transport=httpx.MockTransport(handler))
    for call in (lambda: client.get_request("req_1"), lambda: list(client.events("req_1"))):
        with pytest.raises(ApiError) as raised:
            call()
        assert raised.value.code == "unexpected_response" and "API URL" in raised.value.message


def test_an_error_inside_a_stream_keeps_its_type():
    from asyncagents.client import NotFoundError

    def handler(request: httpx.Request) -> httpx.Response:
        frame = 'event: error\ndata: {"code":"not_found","message":"request req_1 not found"}\n\n'
        return sse(frame)

    client = Client("https://api.example", client_key="fmc_x", transport=httpx.MockTransport(handler))
    with pytest.raises(NotFoundError):
        list(client.events("req_1"))


def test_frames_keep_unicode_line_separators_inside_their_json():
    from asyncagents.api.event_streams import frame

    text = frame({"token": {"content": "one\u2028two\u2029three\x85four"}})
    data_line = text.split("\n")[0]
    assert not any(separator in text for separator in ("\u2028", "\u2029", "\x85"))
    assert json.loads(data_line.removeprefix("data: "))["token"]["content"] == "one\u2028two\u2029three\x85four"
    # MUXI's SDK reads lines with httpx's iter_lines, which splits at U+2028: the data line survives it
    assert next(iter(httpx.Response(200, text=text).iter_lines())) == data_line


def test_a_refusal_for_a_limit_says_when_to_try_again():
    from asyncagents.client import RateLimitedError

    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "code": "rate_limited",
            "message": "this API key made 50 requests in this second already",
            "details": {"limit": "requests_per_second", "allowed": 50, "retry_after_seconds": 1},
        }
        return httpx.Response(429, headers={"Retry-After": "1"}, json=body)

    client = Client("https://api.example", client_key="fmc_x", transport=httpx.MockTransport(handler))
    with pytest.raises(RateLimitedError) as raised:
        client.get_request("req_1")
    assert raised.value.status == 429 and raised.value.retry_after_seconds == 1
    assert raised.value.details["limit"] == "requests_per_second"
