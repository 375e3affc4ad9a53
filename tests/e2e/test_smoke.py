"""``make smoke`` against the local stack, as a user runs it against a deployed one (so the smoke suite cannot
rot): every check passes with a trigger, a webhook receiver and an admin key; without an admin key or a receiver
the checks that need them say ``skip``; and nothing is left behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.stack_fixture import KEYS, stack_fixture

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
VERDICT = re.compile(r"^(ok|FAIL|skip)\s+(\S+(?: \S+)?)\s{2,}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    support = (ROOT / "triggers" / "support-ticket.md").read_text()
    yield from stack_fixture(
        tmp_path_factory, {"async": {"result_retention_seconds": 300}}, triggers={"support-ticket": support}
    )


def verdicts(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        match = VERDICT.match(line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def test_make_smoke_passes_every_check_against_the_local_stack_and_leaves_nothing_behind(stack, receiver):
    make = ["make", "--no-print-directory", "smoke", f"API={stack.url}", f"CLIENT_KEY={KEYS.client_key}"]
    make += [f"ADMIN_KEY={KEYS.admin_key}", f"WEBHOOK_URL={receiver.url('/smoke')}"]
    done = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert verdicts(done.stdout) == {
        check: "ok"
        for check in (
            "health",
            "async request",
            "events stream",
            "sync request",
            "cancel",
            "webhook",
            "trigger",
            "schedule",
            "metrics",
        )
    }, done.stdout
    assert "version 0." in done.stdout and "smoke: every check passed" in done.stdout
    assert [d for d in receiver.to("/smoke") if d.verified]  # the webhook really came, signed
    jobs = httpx.get(f"{stack.url}/v1/scheduler/jobs", headers={"X-Muxi-Admin-Key": KEYS.admin_key}).json()
    assert jobs["jobs"] == []  # the schedule it made is gone


def test_without_an_admin_key_or_a_receiver_those_checks_are_skipped_and_a_failure_is_reported(stack):
    command = [sys.executable, "-m", "asyncagents.smoke", "--api", f"{stack.url}/v1", "--client-key", KEYS.client_key]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    found = verdicts(done.stdout)
    assert {found[c] for c in ("webhook", "schedule", "metrics")} == {"skip"} and found["async request"] == "ok"
    wrong_key = [sys.executable, "-m", "asyncagents.smoke", "--api", stack.url, "--client-key", "fmc_not_a_key"]
    refused = subprocess.run(wrong_key, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1 and "FAIL" in refused.stdout and "401" in refused.stdout


def test_a_key_bound_to_a_user_is_checked_as_that_user(stack):
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    bound = httpx.post(f"{stack.url}/v1/admin/keys", json={"kind": "client", "user_id": "carol"}, headers=admin).json()
    command = [sys.executable, "-m", "asyncagents.smoke", "--api", stack.url, "--client-key", bound["key"]]
    done = subprocess.run([*command, "--user-id", "carol"], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert verdicts(done.stdout)["async request"] == "ok"
