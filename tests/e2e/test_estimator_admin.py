"""What auto mode learned, seen and forgotten over real HTTP (and from the command line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from tests.stack_fixture import KEYS, stack_fixture, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


def test_the_demo_providers_lessons_are_visible_and_can_be_forgotten(stack):
    client = {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": f"learn-{uuid.uuid4().hex[:8]}"}
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    message = "Research 3 competitors, compare features, create report [demo step_seconds=0.05]"
    # Given requests the demo provider finishes in well under a second (the estimate says about a minute)
    for _ in range(3):
        done = httpx.post(f"{stack.url}/v1/chat", json={"message": message, "async": True}, headers=client).json()
        wait_for(
            lambda rid=done["request_id"]: (
                httpx.get(f"{stack.url}/v1/requests/{rid}", headers=client).json()["status"] == "completed"
            )
        )
    # Then the admin sees what auto mode learned: this kind's estimates are now scaled far down
    learned = wait_for(
        lambda: (body := httpx.get(f"{stack.url}/v1/admin/estimator", headers=admin).json())["count"] and body
    )
    kind = next(k for k in learned["kinds"] if k["samples"] >= 3)
    assert kind["correction"] < 0.5 and learned["threshold_seconds"] > 0
    # And a new request's estimate shows the history it used
    estimate = httpx.post(f"{stack.url}/v1/chat", json={"message": message, "async": True}, headers=client).json()
    seen = httpx.get(f"{stack.url}/v1/requests/{estimate['request_id']}", headers=client).json()["estimate"]
    assert seen["history_samples"] >= 3
    # (its end teaches the estimator once more, just after it completes: let that happen before forgetting)
    wait_for(
        lambda: any(
            k["samples"] >= 4 for k in httpx.get(f"{stack.url}/v1/admin/estimator", headers=admin).json()["kinds"]
        )
    )
    # When the admin forgets it (from the command line)
    environment = {**os.environ, "ASYNCAGENTS_ADMIN_KEY": KEYS.admin_key}
    reset = subprocess.run(
        [sys.executable, "-m", "asyncagents.cli", "estimator", "reset", "--api", f"{stack.url}/v1"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert reset.returncode == 0 and json.loads(reset.stdout)["forgotten_kinds"] >= 1
    # Then nothing is learned any more, and estimates come from the analysis alone again
    assert httpx.get(f"{stack.url}/v1/admin/estimator", headers=admin).json()["count"] == 0
    fresh = httpx.post(f"{stack.url}/v1/chat", json={"message": message, "async": True}, headers=client).json()
    again = httpx.get(f"{stack.url}/v1/requests/{fresh['request_id']}", headers=client).json()["estimate"]
    assert again["history_samples"] == 0
    # And a client key cannot see or reset it
    assert httpx.get(f"{stack.url}/v1/admin/estimator", headers=client).status_code == 401
