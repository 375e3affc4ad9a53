"""Verified end users (auth.jwt) over real HTTP: a real OpenID issuer on 127.0.0.1, the local stack's JWT API
with the template's routes and API Gateway's authorizer checks, and the main API refusing unbound client keys."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.stack_fixture import KEYS, stack_fixture, wait_for
from tests.support.issuer import Issuer, new_key

pytestmark = pytest.mark.e2e

AUDIENCE = "asyncagents-app"


@pytest.fixture(scope="module")
def issuer():
    with Issuer() as running:
        yield running


@pytest.fixture(scope="module")
def stack(tmp_path_factory, issuer):
    auth = {"jwt": {"issuer": issuer.url, "audiences": [AUDIENCE, "another-app"]}}
    yield from stack_fixture(tmp_path_factory, {"auth": auth})


@pytest.fixture
def users() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:6]
    return f"alice-{suffix}", f"bob-{suffix}"


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def test_the_token_names_the_user_and_no_header_can_change_it(stack, issuer, users):
    alice, bob = users
    with httpx.Client(base_url=stack.jwt_url, timeout=30) as jwt_api:
        # Given alice's token, when she submits naming bob in the header and in the body
        as_alice = bearer(issuer.token(alice), **{"X-Muxi-User-Id": bob})
        accepted = jwt_api.post("/v1/chat", json={"message": "mine", "async": True}, headers=as_alice)
        assert accepted.status_code == 202, accepted.text
        request_id = accepted.json()["request_id"]
        # Then the request is hers: she reads it, and bob's token neither reads, lists nor cancels it
        assert jwt_api.get(f"/v1/requests/{request_id}", headers=as_alice).status_code == 200
        as_bob = bearer(issuer.token(bob), **{"X-Muxi-User-Id": alice})
        assert jwt_api.get(f"/v1/requests/{request_id}", headers=as_bob).status_code == 404
        assert jwt_api.delete(f"/v1/requests/{request_id}", headers=as_bob).status_code == 404
        assert jwt_api.get("/v1/requests", headers=as_bob).json()["requests"] == []
        # And a token from another of the issuer's app clients (audiences) is the same user
        other_app = bearer(issuer.token(alice, audience="another-app"))
        wait_for(lambda: jwt_api.get(f"/v1/requests/{request_id}", headers=other_app).json()["status"] == "completed")
    # And an admin finds it under the token's owner, jwt:<user>
    with httpx.Client(base_url=stack.url, timeout=30) as api:
        found = api.get(
            f"/v1/admin/requests/{request_id}",
            params={"key_id": f"jwt:{alice}", "user_id": alice},
            headers={"X-Muxi-Admin-Key": KEYS.admin_key},
        )
        assert found.status_code == 200 and found.json()["status"] == "completed"


@pytest.mark.parametrize(
    "bad",
    ["none", "garbage", "another key", "expired", "another audience", "another issuer", "no bearer scheme"],
)
def test_the_authorizer_answers_401_for_a_token_it_cannot_verify(stack, issuer, users, bad):
    alice, _ = users
    tokens = {
        "garbage": "Bearer not.a.token",
        "another key": "Bearer " + issuer.token(alice, key=new_key()),
        "expired": "Bearer " + issuer.token(alice, expires_in=-60),
        "another audience": "Bearer " + issuer.token(alice, audience="someone-else"),
        "another issuer": "Bearer " + issuer.token(alice, issuer="https://issuer.example"),
        "no bearer scheme": issuer.token(alice),  # API Gateway takes the bare token too
    }
    headers = {"Authorization": tokens[bad]} if bad in tokens else {}
    with httpx.Client(base_url=stack.jwt_url, timeout=30) as jwt_api:
        answer = jwt_api.post("/v1/chat", json={"message": "x", "async": True}, headers=headers)
    if bad == "no bearer scheme":
        assert answer.status_code == 202
    else:
        assert (answer.status_code, answer.json()) == (401, {"message": "Unauthorized"})


def test_the_jwt_api_serves_the_client_routes_only(stack, issuer, users):
    alice, _ = users
    with httpx.Client(base_url=stack.jwt_url, timeout=30) as jwt_api:
        assert jwt_api.get("/v1/health").status_code == 200  # open, as on the main API
        admin = {"X-Muxi-Admin-Key": KEYS.admin_key, **bearer(issuer.token(alice))}
        assert jwt_api.post("/v1/admin/keys", json={"kind": "client"}, headers=admin).status_code == 404
        assert jwt_api.get("/v1/triggers", headers=bearer(issuer.token(alice))).status_code == 200


def test_the_main_api_takes_only_keys_bound_to_a_user_from_clients(stack, users):
    alice, bob = users
    with httpx.Client(base_url=stack.url, timeout=30) as api:
        # An unbound client key (MUXI's trusted-backend model) no longer names users
        unbound = api.get("/v1/requests", headers={"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": alice})
        assert unbound.status_code == 401
        assert "verifies end users" in unbound.json()["message"]
        # A key bound to alice still acts for her, and only for her
        created = api.post(
            "/v1/admin/keys",
            json={"kind": "client", "label": "alice's device", "user_id": alice},
            headers={"X-Muxi-Admin-Key": KEYS.admin_key},
        )
        bound = {"X-Muxi-Client-Key": created.json()["key"]}
        assert api.get("/v1/requests", headers=bound).status_code == 200
        assert api.get("/v1/requests", headers={**bound, "X-Muxi-User-Id": bob}).status_code == 403


def test_a_token_sent_to_the_main_api_is_not_looked_at(stack, issuer, users):
    """The main API has no authorizer: only the JWT API's makes a token a caller."""
    alice, _ = users
    with httpx.Client(base_url=stack.url, timeout=30) as api:
        answer = api.get("/v1/requests", headers=bearer(issuer.token(alice)))
    assert answer.status_code == 401 and answer.json()["details"] == {"header": "X-Muxi-Client-Key"}


def test_the_sdk_calls_the_jwt_api_with_the_users_token(stack, issuer, users):
    from asyncagents.client import AuthenticationError, Client

    alice, bob = users
    with Client(f"{stack.jwt_url}/v1", token=issuer.token(alice)) as client:
        accepted = client.chat("Research three vendors, compare them", async_=True)
        finished = client.wait(accepted.request_id, timeout=60)
        assert finished.status == "completed"
    with Client(f"{stack.jwt_url}/v1", token=issuer.token(bob)) as client:
        assert client.list_requests().requests == []
    expired = issuer.token(alice, expires_in=-60)
    with Client(f"{stack.jwt_url}/v1", token=expired) as client, pytest.raises(AuthenticationError):
        client.get_request(accepted.request_id)


def test_an_end_user_signs_in_to_the_console_with_a_token_and_sees_only_their_requests(stack, issuer, browser):
    from tests.e2e.conftest import console_tab

    alice = f"alice-{uuid.uuid4().hex[:6]}"
    with console_tab(browser, "jwt_sign_in") as page:
        # Given the console on the JWT API, and alice's token (no key at all)
        page.goto(f"{stack.jwt_url}/console")
        page.fill("#token", issuer.token(alice))
        page.click("#signin button[type=submit]")
        # When she submits a request from the page
        page.fill("#new-message", "[demo step_seconds=0.1] summarise this")
        page.click("#new-request button[type=submit]")
        page.wait_for_selector("#notice:not([hidden])")
        request_id = page.inner_text("#notice").removeprefix("Accepted: ").strip()
        # Then it runs to completed on her page, and it is hers: the API lists it under her token's user
        row = page.locator(f'tr[data-request-id="{request_id}"]')
        row.locator('.status[data-status="completed"]').wait_for(timeout=20_000)
        listed = httpx.get(f"{stack.jwt_url}/v1/requests", headers=bearer(issuer.token(alice))).json()["requests"]
        assert [r["request_id"] for r in listed] == [request_id]
