"""The README's local-stack command, as a newcomer runs it: start, curl the seed flow, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.stack_fixture import ROOT, wait_for

pytestmark = pytest.mark.e2e


def _start_local(formation, port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    """``python -m asyncagents.local`` as `make local` runs it, its output readable line by line."""
    return subprocess.Popen(
        [sys.executable, "-m", "asyncagents.local", "--port", str(port), "--formation", str(formation)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_local_command_serves_the_seed_flow_and_stops_cleanly(tmp_path, stop_signal):
    port = _free_port()
    formation = tmp_path / "formation.yaml"
    formation.write_text("llm:\n  demo:\n    step_seconds: 0.05\n")
    env = {
        **os.environ,
        "ASYNCAGENTS_CLIENT_KEY": "fmc_cmd_test",
        "ASYNCAGENTS_ADMIN_KEY": "fma_cmd_test",
        "ASYNCAGENTS_WEBHOOK_SECRET": "whsec_cmd_test",
    }
    process = _start_local(formation, port, env)
    try:
        banner = process.stdout.readline()  # type: ignore[union-attr]
        assert f"http://127.0.0.1:{port}/v1" in banner
        base = f"http://127.0.0.1:{port}"
        headers = {"X-Muxi-Client-Key": "fmc_cmd_test"}
        accepted = httpx.post(
            f"{base}/v1/chat", json={"message": "Research AI trends", "async": True}, headers=headers
        ).json()
        done = wait_for(
            lambda: (
                (s := httpx.get(f"{base}/v1/requests/{accepted['request_id']}", headers=headers).json())["status"]
                == "completed"
                and s
            )
        )
        assert done["result"]["text"]
        process.send_signal(stop_signal)
        started = time.monotonic()
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 15
        assert "stopping" in process.stdout.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()


def _refused(formation) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncagents.local", "--port", "0", "--formation", str(formation)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_local_command_rejects_a_bad_formation(tmp_path):
    formation = tmp_path / "formation.yaml"
    formation.write_text("async:\n  mdoe: async\n")
    result = _refused(formation)
    assert result.returncode == 2
    assert "async.mdoe" in result.stderr


def test_local_command_prints_a_generated_trigger_secret_that_signs_deliveries(tmp_path):
    import hashlib
    import hmac
    import json

    port = _free_port()
    formation = tmp_path / "formation.yaml"
    formation.write_text("llm:\n  demo:\n    step_seconds: 0.05\n")
    (tmp_path / "triggers").mkdir()
    (tmp_path / "triggers" / "deploy.md").write_text(
        "---\nverify: {provider: hmac, header: X-Signature, prefix: 'sha256='}\n---\nDeploy ${{ data.ref }}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ASYNCAGENTS_TRIGGER_SECRET_DEPLOY"}
    process = _start_local(formation, port, env)
    try:
        printed = ""
        for _ in range(12):  # the banner, the keys, then the triggers' secrets
            line = process.stdout.readline()  # type: ignore[union-attr]
            if line.strip().startswith("ASYNCAGENTS_TRIGGER_SECRET_DEPLOY="):
                printed = line
                break
        assert "(generated)" in printed and f"http://127.0.0.1:{port}/v1/triggers/deploy" in printed
        secret = printed.split("=", 1)[1].split()[0]
        body = json.dumps({"ref": "main"}).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        fired = httpx.post(
            f"http://127.0.0.1:{port}/v1/triggers/deploy", content=body, headers={"X-Signature": signature}
        )
        assert fired.status_code == 202, fired.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()


def test_local_command_rejects_a_bad_trigger_naming_its_file(tmp_path):
    formation = tmp_path / "formation.yaml"
    formation.write_text("formation_id: t\n")
    (tmp_path / "triggers").mkdir()
    (tmp_path / "triggers" / "broken.md").write_text("---\nverify: {provider: gitlab}\n---\nx\n")
    result = _refused(formation)
    assert result.returncode == 2
    assert "broken.md: verify.provider" in result.stderr
