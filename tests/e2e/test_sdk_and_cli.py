"""Our SDK and our command line against the local stack over real HTTP (the CLI in a real pseudo-terminal)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from asyncagents.client import (
    AsyncClient,
    Client,
    ConfigurationError,
    ConnectionFailed,
    FormationClient,
    NotFoundError,
    RequestFailed,
    UnprocessableError,
)
from tests.stack_fixture import KEYS, stack_fixture, wait_for

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "asyncagents.cli"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


@pytest.fixture
def user() -> str:
    return f"sdk-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(stack, user):
    # The URL without /v1 (the CLI's old form); the other tests give it with /v1
    with Client(stack.url, client_key=KEYS.client_key, admin_key=KEYS.admin_key, user_id=user) as sdk:
        yield sdk


def test_chat_async_reports_progress_then_the_result_and_events_replay_it(client):
    progress, results = [], []
    pending = client.chat_async(
        "a, b, c [demo step_seconds=0.2]", on_progress=lambda e: progress.append(e), on_complete=results.append
    )
    request = pending.wait(timeout=60)
    assert request.status == "completed" and request.result.text
    assert results and results[0].text == request.result.text and results[0].request_id == pending.request_id
    assert [e.progress for e in progress] == sorted(e.progress for e in progress) and progress[-1].progress == 100
    replayed = list(client.events(pending.request_id))
    assert [e.id for e in replayed] == list(range(1, len(replayed) + 1)) == [e.id for e in progress]
    assert replayed[-1].is_terminal and replayed[-1].result.text == request.result.text
    # MUXI's dict-style reads work on our models too (seed 000 reads status.get("status"))
    assert request.get("status") == "completed" and request["request_id"] == pending.request_id


def test_errors_are_typed_and_a_cancelled_request_raises_when_asked(client, stack):
    with pytest.raises(NotFoundError) as missing:
        client.get_request("req_unknown")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with pytest.raises(UnprocessableError) as invalid:
        client.chat("   ")
    assert "message" in invalid.value.message and invalid.value.details["errors"]
    slow = client.chat("a, b, c [demo step_seconds=1]", async_=True)
    client.cancel(slow.request_id)
    with pytest.raises(RequestFailed) as failed:
        client.wait(slow.request_id, timeout=30).raise_for_status()
    assert failed.value.request.status == "cancelled"
    with pytest.raises(ConnectionFailed), Client("http://127.0.0.1:9/v1", client_key="fmc_x") as nowhere:
        nowhere.get_request("req_1")
    with pytest.raises(ConfigurationError):
        Client(f"{stack.url}/v1", client_key=None, user_id="x").get_request("req_1")


def test_answering_a_question_resumes_the_request(client):
    accepted = client.chat("a, b [demo ask=plan step_seconds=0.05]", async_=True)
    waiting = wait_for(lambda: (r := client.get_request(accepted.request_id)).status == "awaiting_clarification" and r)
    assert waiting.clarification["question"]
    client.answer(accepted.request_id, "the EU market")
    assert client.wait(accepted.request_id, timeout=60).raise_for_status().result.text


def test_scheduled_jobs_and_triggers_through_the_sdk(client):
    job = client.create_job(schedule="rate(1 hour)", message="daily report")
    assert job.id and job.enabled
    assert job.id in [j.id for j in client.list_jobs()]
    assert client.pause_job(job.id).enabled is False
    assert client.resume_job(job.id).enabled is True
    client.delete_job(job.id)
    with pytest.raises(NotFoundError):
        client.get_job(job.id)
    assert client.list_triggers() == []  # the test formation has none
    with pytest.raises(NotFoundError):
        client.fire_trigger("nope", {"x": 1})


def test_the_async_client_follows_a_request(stack, user):
    async def scenario() -> tuple[list[int], list[int], str, str]:
        async with AsyncClient(f"{stack.url}/v1", client_key=KEYS.client_key, user_id=user) as sdk:
            done: list[str] = []
            seen: list[int] = []

            async def on_progress(event) -> None:  # a coroutine callback is awaited
                seen.append(event.id)

            pending = await sdk.chat_async(
                "a, b [demo step_seconds=0.1]", on_complete=lambda r: done.append(r.text), on_progress=on_progress
            )
            ids = [event.id async for event in sdk.events(pending.request_id)]
            request = await pending.wait(timeout=30)
            return ids, seen, request.result.text, done[0]

    ids, seen, text, completed_text = asyncio.run(scenario())
    assert ids == list(range(1, len(ids) + 1)) == seen and text == completed_text


SEED_000_EXAMPLE = """
import time
formation = FormationClient(
    server_url="{server}",
    formation_id="test-formation",
    client_key="{key}",
)
for event in formation.chat_stream(
    {{"message": "Research AI trends [demo step_seconds=0.05]"}},
    user_id="user_123"
):
    if event.get("request_id"):
        request_id = event.get("request_id")
        print(f"Request ID: {{request_id}}")
while True:
    status = formation.get_request_status(request_id, user_id="user_123")
    if status.get("status") == "completed":
        print(status.get("result").text)
        break
    print(f"Status: {{status.get('status')}}")
    time.sleep(0.2)

def on_complete(result):
    print(f"Done! {{result.text}}")

def on_progress(status):
    print(f"Progress: {{status.progress}}%")

request = formation.chat_async("Research AI trends", on_complete=on_complete, on_progress=on_progress)
request.wait(timeout=60)
"""


def test_seed_000s_python_examples_run_with_only_host_key_and_formation_changed(stack, capsys):
    code = SEED_000_EXAMPLE.format(server=stack.url, key=KEYS.client_key)
    exec(compile(code, "seed_000_example", "exec"), {"FormationClient": FormationClient})
    printed = capsys.readouterr().out
    assert re.search(r"Request ID: req_[0-9a-f]{24}", printed)
    assert "Progress: 100%" in printed and "Done! [demo provider" in printed


def run_in_terminal(arguments: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run the CLI in a pseudo-terminal (as a person's shell would) and return its exit status and output."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        CLI + arguments, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None and not select.select([leader], [], [], 0.3)[0]:
            break  # it exited and nothing more is coming
    os.close(leader)
    return process.wait(timeout=5), output.decode("utf-8", errors="replace")


@pytest.fixture
def cli_env(stack, user, tmp_path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(f'api_url = "{stack.url}/v1"\nclient_key = "{KEYS.client_key}"\nuser_id = "{user}"\n')
    root = Path(__file__).resolve().parents[2]
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(root / "layers" / "asyncagents"),
        "ASYNCAGENTS_CONFIG": str(config),
        "TERM": "xterm-256color",
        "COLUMNS": "110",
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def test_chat_wait_shows_the_bar_advance_in_a_terminal_and_prints_the_result(cli_env):
    status, output = run_in_terminal(["chat", "a, b, c, d [demo step_seconds=0.4]", "--wait"], cli_env)
    assert status == 0, output
    percentages = [int(p) for p in re.findall(r"(\d+)%", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output))]
    # The bar was redrawn as the request advanced: several distinct values, in order, up to 100
    distinct = list(dict.fromkeys(percentages))
    assert len(distinct) >= 4 and distinct == sorted(distinct) and distinct[-1] == 100, distinct
    assert "4/4 steps" in output and "Step 4 of 4 (D): done." in output


def test_the_cli_for_scripts_and_its_one_line_errors(cli_env, user, stack):
    # A request that runs a few seconds (the test formation forgets ended requests after 3 s)
    status, output = run_in_terminal(["chat", "a, b, c [demo step_seconds=1.5]", "--async", "--json"], cli_env)
    assert status == 0, output
    request_id = json.loads(output)["request_id"]
    status, output = run_in_terminal(["list", "--json"], cli_env)
    assert status == 0 and request_id in output
    status, output = run_in_terminal(["status", request_id, "--json"], cli_env)
    assert status == 0 and json.loads(output)["request_id"] == request_id
    status, output = run_in_terminal(["watch", request_id, "--json"], cli_env)
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert status == 0 and [e["id"] for e in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["type"] == "completed"
    # Errors: one line, no traceback, a non-zero status
    status, output = run_in_terminal(["cancel", "req_nope"], cli_env)
    assert status == 1 and "404 not_found" in output and "Traceback" not in output
    elsewhere = {**cli_env, "ASYNCAGENTS_API_URL": "http://127.0.0.1:9"}
    status, output = run_in_terminal(["status", "req_1"], elsewhere)
    assert status == 1 and "cannot reach http://127.0.0.1:9" in output and "Traceback" not in output
    no_key = {**cli_env, "ASYNCAGENTS_CONFIG": "/nonexistent.toml"}
    status, output = run_in_terminal(["list", "--api", f"{stack.url}"], no_key)
    assert status == 2 and "no client key" in output and "Traceback" not in output
    status, output = run_in_terminal(["keys", "create", "--table", "t", "--region", "us-east-1"], no_key)
    assert status == 2 and output.count("\n") <= 1 and "Traceback" not in output
