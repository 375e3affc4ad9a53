"""A local stack for tests: the real template, the real ASL on moto, a small test formation."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from asyncagents import runtime
from asyncagents.domain.auth import Principal
from asyncagents.local.stack import LocalKeys, LocalStack

ROOT = Path(__file__).resolve().parents[1]
KEYS = LocalKeys(client_key="fmc_test_client_key", admin_key="fma_test_admin_key", webhook_secret="whsec_test")

TEST_FORMATION: dict[str, Any] = {
    "formation_id": "test-formation",
    "async": {"result_retention_seconds": 3, "sync_wait_seconds": 5},
    "overlord": {
        "workflow": {
            "timeouts": {"task_timeout": 30, "workflow_timeout": 600},
            "retry": {"max_attempts": 3, "initial_delay": 1, "max_delay": 10, "backoff_factor": 2.0},
            "max_concurrency": 1,
        }
    },
    "llm": {"provider": "demo", "demo": {"step_seconds": 0.05}},
}


def start_stack(
    tmp_dir: Path, overrides: dict[str, Any] | None = None, *, triggers: dict[str, str] | None = None, **options: Any
) -> LocalStack:
    """A stack on the test formation (``overrides`` replace its top-level sections), with ``triggers``
    (name → the text of ``triggers/<name>.md``); ``options`` go to ``LocalStack`` (e.g. faster schedules)."""
    formation = {**TEST_FORMATION, **(overrides or {})}
    path = tmp_dir / "formation.yaml"
    path.write_text(yaml.safe_dump(formation))
    if triggers:
        (tmp_dir / "triggers").mkdir()
        for name, text in triggers.items():
            (tmp_dir / "triggers" / f"{name}.md").write_text(text)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    # Retry waits (whole seconds in the ASL) are shrunk 100x: moto sleeps them for real.
    settings = {"retry_time_scale": 0.01, **options}
    return LocalStack(root=ROOT, formation_path=path, keys=KEYS, port=0, **settings).start()


def new_principal(stack: LocalStack) -> Principal:
    """A caller of its own (the stack's client key, a fresh user id), so tests never see each other's requests."""
    key = runtime.current().key_service.authenticate(stack.keys.client_key, kind="client")
    return Principal(key_id=key.key_id, user_id=f"user-{uuid.uuid4().hex[:8]}")


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate`` returns something truthy; fail the test with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def stack_fixture(
    tmp_path_factory: Any, overrides: dict[str, Any] | None = None, **options: Any
) -> Iterator[LocalStack]:
    stack = start_stack(tmp_path_factory.mktemp("stack"), overrides, **options)  # options may hold triggers
    try:
        yield stack
    finally:
        stack.stop()
    assert_no_access_denied(stack)


def assert_no_access_denied(stack: LocalStack) -> None:
    """Every function did its work within its template policy (the stack refuses what IAM would refuse)."""
    refused = sorted({reason for _, reason in stack.permissions.denials})
    assert not refused, "calls the template's IAM policies would refuse on AWS:\n" + "\n".join(refused)
