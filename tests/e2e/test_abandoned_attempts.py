"""An attempt that outlived its Task's timeout is stopped a moment later (Lambda's timeout is the Task's plus
3 s): it never finishes a step beside the retry that replaced it, and every model call it made is counted."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from asyncagents import runtime
from asyncagents.domain.auth import Principal
from tests.stack_fixture import KEYS, stack_fixture, wait_for

pytestmark = pytest.mark.e2e

# Five attempts of 2 s each, back to back (retry waits are shrunk in tests): the last times out at about 10 s.
FORMATION = {
    "overlord": {
        "workflow": {
            "timeouts": {"task_timeout": 2, "workflow_timeout": 60},
            "retry": {"max_attempts": 5, "initial_delay": 1, "max_delay": 2, "backoff_factor": 2.0},
        }
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory, FORMATION)


def test_no_abandoned_attempt_outlives_its_task_timeout_and_every_call_is_counted(stack):
    user = f"user-{uuid.uuid4().hex[:8]}"
    headers = {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user}
    key = runtime.current().key_service.authenticate(KEYS.client_key, kind="client")
    service = runtime.current().request_service
    principal = Principal(key_id=key.key_id, user_id=user)
    # Given a step that hangs 9 s: longer than its Task's timeout (2 s) and than its function's (2 + 3 s), but
    # shorter than the five attempts together, so the first attempt would finish while the last one runs
    with httpx.Client(base_url=stack.url, timeout=30, headers=headers) as http:
        accepted = http.post("/v1/chat", json={"message": "one step [demo hang_seconds=9]", "async": True})
    request_id = accepted.json()["request_id"]
    # When every attempt times out
    failed = wait_for(lambda: (r := service.get(principal, request_id)).status.is_terminal and r, timeout=40)
    time.sleep(4)  # any attempt that could still finish has by now
    final = runtime.current().request_records.get(failed.request_key) or failed
    # Then the request failed as a timeout; no abandoned attempt finished its step meanwhile or afterwards;
    # and every attempt's model call was counted (the plan's, and five attempts')
    assert failed.status.value == "failed" and failed.error is not None and failed.error.type == "timeout"
    assert (final.completed_steps, final.done_steps) == (0, set())
    assert final.model_calls == 1 + 5 and final.step_attempts == {"0": 5}
