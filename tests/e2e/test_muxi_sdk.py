"""MUXI's own Python SDK (nobody here wrote it) against the local stack."""

from __future__ import annotations

import uuid

import pytest
from muxi import FormationClient
from muxi.errors import ConflictError, NotFoundError

from asyncagents import __version__
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


@pytest.mark.parametrize("form", ["server_url", "url"])
def test_the_sdk_built_the_way_the_seeds_build_it(stack, form):
    # seeds/000 builds the client from the server's address and the formation id: /api/<formation id>/v1/...
    arguments = (
        {"server_url": stack.url, "formation_id": "test-formation"} if form == "server_url" else {"url": stack.url}
    )
    with FormationClient(**arguments, client_key=KEYS.client_key, timeout=30) as formation:
        user = f"sdk-{uuid.uuid4().hex[:8]}"
        accepted = formation.chat({"message": "Research AI trends", "async": True}, user_id=user)
        done = wait_for(
            lambda: (
                (s := formation.get_request_status(accepted["request_id"], user_id=user))["status"] == "completed" and s
            )
        )
        assert done["request_id"] == accepted["request_id"]


def test_another_formation_id_is_a_404_naming_it(stack):
    import httpx

    answer = httpx.get(f"{stack.url}/api/someone-else/v1/requests", headers={"X-Muxi-Client-Key": KEYS.client_key})
    assert answer.status_code == 404
    assert answer.json()["details"] == {"formation_id": "someone-else"}
    assert "test-formation" in answer.json()["message"]
    # Draft mode's prefix serves the same API; anything else is API Gateway's own 404
    draft = httpx.get(f"{stack.url}/draft/test-formation/v1/health")
    assert draft.status_code == 200 and draft.json() == {"status": "ok", "version": __version__}
    assert httpx.get(f"{stack.url}/elsewhere/v1/health").status_code == 404
