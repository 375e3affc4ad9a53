"""MUXI's own Python SDK (nobody here wrote it) against the local stack."""

from __future__ import annotations

import uuid

import pytest
from muxi import FormationClient
from muxi.errors import ConflictError, NotFoundError

from tests.stack_fixture import KEYS, stack_fixture, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


@pytest.fixture
def client(stack):
    with FormationClient(base_url=f"{stack.url}/v1", client_key=KEYS.client_key, timeout=30) as formation:
        yield formation


def test_sdk_async_chat_status_list_and_cancel(client):
    user = f"sdk-{uuid.uuid4().hex[:8]}"
    accepted = client.chat({"message": "Research AI trends, write a summary", "async": True}, user_id=user)
    request_id = accepted["request_id"]
    assert accepted["status"] == "processing" and accepted["delivery"] == "polling"

    done = wait_for(lambda: (s := client.get_request_status(request_id, user_id=user))["status"] == "completed" and s)
    assert done["result"]["text"].startswith("[demo provider")
    assert done["progress"] == 100

    listed = client.get_requests(user_id=user)
    assert [r["request_id"] for r in listed["requests"]] == [request_id]

    slow = client.chat({"message": "a, b, c [demo step_seconds=0.5]", "async": True}, user_id=user)["request_id"]
    client.cancel_request(slow, user_id=user)
    assert client.get_request_status(slow, user_id=user)["status"] == "cancelled"
    client.cancel_request(slow, user_id=user)  # idempotent

    with pytest.raises(ConflictError):
        client.cancel_request(request_id, user_id=user)
    with pytest.raises(NotFoundError):
        client.get_request_status(request_id, user_id="someone-else")


def test_sdk_sync_chat_with_stream_false(client):
    user = f"sdk-{uuid.uuid4().hex[:8]}"
    finished = client.chat({"message": "Quick question", "stream": False, "async": False}, user_id=user)
    assert finished["status"] == "completed"
    assert "Quick question" in finished["result"]["text"]
