"""Admin keys over real HTTP: the key listing (no secrets, last use) and the audit of what admin keys did."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.stack_fixture import KEYS, stack_fixture

pytestmark = pytest.mark.e2e

ADMIN = {"X-Muxi-Admin-Key": KEYS.admin_key}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


@pytest.fixture
def http(stack):
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


def test_the_listing_shows_each_key_and_its_last_use_never_a_secret(http):
    label = f"device-{uuid.uuid4().hex[:6]}"
    created = http.post("/v1/admin/keys", json={"kind": "client", "label": label, "user_id": "ann"}, headers=ADMIN)
    key_id, secret = created.json()["key_id"], created.json()["key"]
    assert http.get("/v1/requests", headers={"X-Muxi-Client-Key": secret}).status_code == 200
    http.delete(f"/v1/admin/keys/{key_id}", headers=ADMIN)

    listed = http.get("/v1/admin/keys", params={"limit": 100}, headers=ADMIN)
    assert listed.status_code == 200
    (mine,) = [key for key in listed.json()["keys"] if key["key_id"] == key_id]
    assert mine["label"] == label and mine["kind"] == "client" and mine["user_id"] == "ann"
    assert mine["last_used_at"] and mine["revoked_at"]
    assert secret not in listed.text and "secret_hash" not in listed.text
    # A client key lists nothing
    assert http.get("/v1/admin/keys", headers={"X-Muxi-Client-Key": KEYS.client_key}).status_code in (401, 403)


def test_each_admin_call_leaves_a_record_and_no_other_call_does(http):
    marker = uuid.uuid4().hex[:8]

    def audit() -> list[dict]:
        return http.get("/v1/admin/audit", params={"limit": 100}, headers=ADMIN).json()["entries"]

    before = {entry["entry_id"] for entry in audit()}
    # Given calls by the admin key (one answered 404), a client's call, and a call with a wrong admin key
    created = http.post("/v1/admin/keys", json={"kind": "client", "label": marker}, headers=ADMIN).json()
    http.get(f"/v1/admin/requests/req_{marker}", params={"key_id": created["key_id"]}, headers=ADMIN)
    http.get(f"/v1/requests/req_{marker}", headers={"X-Muxi-Client-Key": KEYS.client_key})
    http.delete(f"/v1/admin/keys/key_{marker}", headers={"X-Muxi-Admin-Key": "fma_wrong"})
    # When the audit is read, then exactly the admin's calls are new (the first listing is one too: its record is
    # written as it answers), newest first, with who, what, when and the answer
    new = [entry for entry in audit() if entry["entry_id"] not in before]
    assert [(entry["action"], entry["status"]) for entry in new] == [
        (f"GET /v1/admin/requests/req_{marker}?key_id={created['key_id']}", 404),
        ("POST /v1/admin/keys", 201),
        ("GET /v1/admin/audit?limit=100", 200),
    ]
    assert len({entry["key_id"] for entry in new}) == 1 and new[0]["key_id"].startswith("key_")
    assert all(entry["at"] and entry["request_id"] for entry in new)
