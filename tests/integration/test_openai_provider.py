"""The OpenAI-compatible provider against a local server speaking the chat-completions protocol."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from asyncagents.domain.agents import StepContext
from asyncagents.domain.errors import PermanentProviderError, TransientProviderError
from asyncagents.providers.chat import ChatAgentProvider
from asyncagents.providers.openai import OpenAIChat

pytestmark = pytest.mark.integration


class ChatCompletionsServer:
    """Answers POST /v1/chat/completions from a script of (status, body, delay) and records requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any, float]] = []
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, reply, delay = server.script.pop(0)
                time.sleep(delay)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def reply(self, text: str, prompt_tokens: int = 9, completion_tokens: int = 5) -> None:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        }
        self.script.append((200, body, 0.0))

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def server():
    running = ChatCompletionsServer()
    yield running
    running.close()


def provider_for(server: ChatCompletionsServer, timeout: float = 5.0) -> ChatAgentProvider:
    return ChatAgentProvider("openai", OpenAIChat(server.base_url, "local-model", lambda: "sk-test", timeout=timeout))


def test_plan_and_steps_over_chat_completions(server):
    server.reply(
        json.dumps(
            {
                "steps": [
                    {"title": "Outline", "instruction": "outline it"},
                    {"title": "Write", "instruction": "write it"},
                ]
            }
        )
    )
    server.reply("an outline", 20, 10)
    provider = provider_for(server)

    plan = provider.plan("Write a blog post", max_steps=4)
    assert [s.title for s in plan.steps] == ["Outline", "Write"]
    output = provider.run_step(
        plan.steps[0], StepContext(request_id="r", message="Write a blog post", index=0, total=2)
    )
    assert output.text == "an outline" and (output.usage.input_tokens, output.usage.output_tokens) == (20, 10)

    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["body"]["model"] == "local-model"
    assert [m["role"] for m in first["body"]["messages"]] == ["system", "user"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, TransientProviderError), (500, TransientProviderError), (503, TransientProviderError),
     (400, PermanentProviderError), (401, PermanentProviderError), (404, PermanentProviderError)],
)  # fmt: skip
def test_http_errors_are_classified(server, status, error):
    server.script.append((status, {"error": {"message": "no"}}, 0.0))
    with pytest.raises(error, match=f"HTTP {status}"):
        provider_for(server).plan("hello", max_steps=2)


def test_timeouts_and_bad_bodies_are_transient(server):
    server.script.append((200, {"choices": []}, 1.0))
    with pytest.raises(TransientProviderError, match="timed out"):
        provider_for(server, timeout=0.3).plan("hello", max_steps=2)
    time.sleep(0.8)  # let the slow answer finish
    server.script.append((200, {"unexpected": True}, 0.0))
    with pytest.raises(TransientProviderError, match="unexpected body"):
        provider_for(server).plan("hello", max_steps=2)


def test_unreachable_endpoint_is_transient():
    chat = OpenAIChat("http://127.0.0.1:9/v1", "m", lambda: None, timeout=1)
    with pytest.raises(TransientProviderError):
        chat.complete("s", "p")


def test_a_request_runs_end_to_end_on_a_chat_completions_model(tmp_path_factory, monkeypatch):
    """The whole workflow on moto with the openai provider: the model plans, runs each step, composes."""
    from asyncagents import runtime
    from asyncagents.api.schemas import ChatRequest
    from asyncagents.api.views import request_body
    from asyncagents.domain.auth import Principal
    from asyncagents.domain.statuses import Status
    from tests.stack_fixture import stack_fixture, wait_for

    server = ChatCompletionsServer()
    server.reply(
        json.dumps(
            {
                "steps": [
                    {"title": "Gather", "instruction": "gather facts"},
                    {"title": "Write", "instruction": "write it up"},
                ]
            }
        ),
        30,
        20,
    )
    server.reply("fact one; fact two", 25, 10)
    server.reply("a write-up of fact one and fact two", 40, 15)
    server.reply("The final answer.", 60, 8)
    monkeypatch.setenv("LOCAL_MODEL_KEY", "sk-local")
    llm = {
        "provider": "openai",
        "model": "local-model",
        "openai": {"base_url": server.base_url, "api_key_env": "LOCAL_MODEL_KEY"},
    }
    stacks = stack_fixture(tmp_path_factory, {"llm": llm, "async": {"result_retention_seconds": 60}})
    stack = next(stacks)
    try:
        key = runtime.current().key_service.authenticate(stack.keys.client_key, kind="client")
        principal = Principal(key_id=key.key_id, user_id="model-user")
        service = runtime.current().request_service
        record = service.submit(
            principal, ChatRequest.model_validate({"message": "Write about facts", "async": True}).to_domain()
        ).record
        final = wait_for(lambda: (r := service.get(principal, record.request_id)).status.is_terminal and r)
        assert final.status is Status.COMPLETED, final.error
        assert final.result is not None and final.result.text == "The final answer."
        assert (final.total_steps, final.completed_steps) == (2, 2)
        assert final.usage is not None and final.usage.input_tokens == 30 + 25 + 40 + 60
        # Per step too: the two steps' own calls
        assert [(s["index"], s["input_tokens"]) for s in request_body(final)["result"]["steps"]] == [(0, 25), (1, 40)]
        # The second step saw the first step's output.
        second_step_prompt = server.requests[2]["body"]["messages"][1]["content"]
        assert "fact one; fact two" in second_step_prompt
        assert all(r["auth"] == "Bearer sk-local" for r in server.requests)
    finally:
        next(stacks, None)
        server.close()
