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
