"""End to end over real HTTP: the local stack's server, API Gateway v2 events, the whole workflow."""

from __future__ import annotations

import json
import os
import time
import uuid

import httpx
import pytest

from asyncagents import __version__
from tests.stack_fixture import KEYS, stack_fixture, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


@pytest.fixture
def http(stack):
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def headers(user: str, **extra: str) -> dict[str, str]:
    return {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": user, **extra}


def poll_until_terminal(http: httpx.Client, user: str, request_id: str) -> dict:
    def terminal():
        body = http.get(f"/v1/requests/{request_id}", headers=headers(user)).json()
        return body if body["status"] in {"completed", "failed", "cancelled"} else None

    return wait_for(terminal)


def test_seed_flow_async_submit_poll_progress_result_then_404(http, user):
    # The seeds' curl sends JSON with curl's default form content type: it must still work.
    response = http.post(
        "/v1/chat",
        content=json.dumps({"message": "Research AI trends, compare vendors", "async": True}),
        headers=headers(user, **{"Content-Type": "application/x-www-form-urlencoded"}),
    )
    assert response.status_code == 202
    accepted = response.json()
    request_id = accepted["request_id"]
    assert accepted == {
        "request_id": request_id,
        "status": "processing",
        "delivery": "polling",
        "poll_url": f"/v1/requests/{request_id}",
        "estimated_seconds": accepted["estimated_seconds"],
    }
    assert accepted["estimated_seconds"] > 0
    assert response.headers["location"] == f"/v1/requests/{request_id}"

    first = http.get(f"/v1/requests/{request_id}", headers=headers(user)).json()
    assert first["status"] in {"pending", "processing", "completed"}
    assert {"progress", "current_step", "total_steps", "completed_steps", "message"} <= set(first)

    done = poll_until_terminal(http, user, request_id)
    assert done["status"] == "completed"
    assert done["progress"] == 100
    assert done["result"]["text"].startswith("[demo provider")
    assert isinstance(done["duration_ms"], int)

    # Retention is 3 s in the test formation: then the request is gone.
    wait_for(lambda: http.get(f"/v1/requests/{request_id}", headers=headers(user)).status_code == 404, timeout=8)
    gone = http.get(f"/v1/requests/{request_id}", headers=headers(user))
    assert gone.json()["code"] == "not_found"


def test_sync_request_answers_200_with_finished_request(http, user):
    response = http.post("/v1/chat", json={"message": "Quick question", "async": False}, headers=headers(user))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "completed" and body["processing_mode"] == "sync"
    assert "Quick question" in body["result"]["text"]


def test_auto_mode_decides_by_the_estimate(http, user):
    quick = http.post("/v1/chat", json={"message": "What's the weather in SF?"}, headers=headers(user))
    assert quick.status_code == 200
    assert quick.json()["processing_mode"] == "sync" and quick.json()["mode_reason"] == "estimate"

    research = http.post(
        "/v1/chat",
        json={"message": "Research 3 competitors, compare features, create report"},
        headers=headers(user),
    )
    assert research.status_code == 202
    assert research.json()["estimated_seconds"] >= 60 and "estimated_time" not in research.json()
    status = http.get(f"/v1/requests/{research.json()['request_id']}", headers=headers(user)).json()
    assert status["mode_reason"] == "estimate"
    assert {f["name"] for f in status["estimate"]["factors"]} >= {"research", "analysis", "file"}

    lowered = http.post(
        "/v1/chat", json={"message": "What's the weather in SF?", "threshold_seconds": 1}, headers=headers(user)
    )
    assert lowered.status_code == 202


def test_sync_request_outlasting_the_wait_answers_202(http, user):
    # The test formation waits 5 s; this request needs about 8 s.
    started = time.monotonic()
    response = http.post(
        "/v1/chat", json={"message": "slow [demo step_seconds=8]", "async": False}, headers=headers(user)
    )
    assert response.status_code == 202
    assert 4 < time.monotonic() - started < 8
    request_id = response.json()["request_id"]
    status = http.get(f"/v1/requests/{request_id}", headers=headers(user)).json()
    assert status["processing_mode"] == "async"
    http.delete(f"/v1/requests/{request_id}", headers=headers(user))


def test_other_requests_go_through_while_a_sync_request_waits(http, stack, user):
    import threading

    slow: dict = {}
    thread = threading.Thread(
        target=lambda: slow.update(
            response=httpx.post(
                f"{stack.url}/v1/chat",
                json={"message": "slowish [demo step_seconds=2]", "async": False},
                headers=headers(user),
                timeout=30,
            )
        )
    )
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert http.get("/v1/health").status_code == 200
    assert http.get("/v1/requests", headers=headers(user)).status_code == 200
    assert time.monotonic() - started < 1.0
    thread.join()
    assert slow["response"].status_code == 200


def test_idempotent_resubmit_and_conflict(http, user):
    body = {"message": "do it once", "request_id": f"mine-{uuid.uuid4().hex[:6]}", "async": True}
    first = http.post("/v1/chat", json=body, headers=headers(user))
    again = http.post("/v1/chat", json=body, headers=headers(user))
    assert first.status_code == 202
    assert again.status_code in {200, 202}
    assert again.json()["request_id"] == body["request_id"]
    conflict = http.post("/v1/chat", json={**body, "message": "something else"}, headers=headers(user))
    assert conflict.status_code == 409
    assert conflict.json()["details"]["field"] == "request_id"

    retry_safe = headers(user, **{"X-Muxi-Idempotency-Key": f"idem-{uuid.uuid4()}"})
    once = http.post("/v1/chat", json={"message": "retried POST", "async": True}, headers=retry_safe)
    twice = http.post("/v1/chat", json={"message": "retried POST", "async": True}, headers=retry_safe)
    assert once.json()["request_id"] == twice.json()["request_id"]


def test_another_users_request_is_hidden(http, user):
    request_id = http.post("/v1/chat", json={"message": "private", "async": True}, headers=headers(user)).json()[
        "request_id"
    ]
    stranger = headers(f"other-{user}")
    assert http.get(f"/v1/requests/{request_id}", headers=stranger).status_code == 404
    assert http.delete(f"/v1/requests/{request_id}", headers=stranger).status_code == 404
    listed = http.get("/v1/requests", headers=stranger).json()
    assert request_id not in [r["request_id"] for r in listed["requests"]]


def test_list_cancel_and_cancel_semantics(http, user):
    created = [
        http.post("/v1/chat", json={"message": f"item {i}", "async": True}, headers=headers(user)).json()["request_id"]
        for i in range(3)
    ]
    page = http.get("/v1/requests", params={"limit": 2}, headers=headers(user)).json()
    assert [r["request_id"] for r in page["requests"]] == created[::-1][:2]
    assert page["next_cursor"]
    rest = http.get("/v1/requests", params={"limit": 2, "cursor": page["next_cursor"]}, headers=headers(user)).json()
    assert [r["request_id"] for r in rest["requests"]] == [created[0]]

    slow = http.post(
        "/v1/chat", json={"message": "a, b, c [demo step_seconds=0.5]", "async": True}, headers=headers(user)
    ).json()["request_id"]
    cancelled = http.delete(f"/v1/requests/{slow}", headers=headers(user))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["message"] == "Request cancelled by user"
    again = http.delete(f"/v1/requests/{slow}", headers=headers(user))
    assert again.status_code == 200 and "already cancelled" in again.json()["message"]
    status = http.get(f"/v1/requests/{slow}", headers=headers(user)).json()
    assert status["status"] == "cancelled" and "result" not in status

    # A finished request cannot be cancelled while it is kept (3 s here): a new one each time, as a request
    # finished a few seconds ago may be gone on a loaded machine (404), which is not what this checks.
    for _ in range(5):
        finished = http.post("/v1/chat", json={"message": "finish", "async": True}, headers=headers(user))
        poll_until_terminal(http, user, finished.json()["request_id"])
        done = http.delete(f"/v1/requests/{finished.json()['request_id']}", headers=headers(user))
        if done.status_code != 404:
            break
    assert done.status_code == 409
    assert done.json()["details"]["status"] == "completed"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 422, "message"),
        ({"message": ""}, 422, "message"),
        ({"message": "   "}, 422, "message"),
        ({"message": 42}, 422, "message"),
        ({"message": "x", "async": "maybe"}, 422, "async"),
        ({"message": "x", "threshold_seconds": -1}, 422, "threshold_seconds"),
        ({"message": "x", "webhook_url": "ftp://example.com"}, 422, "webhook_url"),
        ({"message": "x", "request_id": "bad id with spaces"}, 422, "request_id"),
        ({"message": "x", "stream": "yes please"}, 422, "stream"),
        ({"message": "x", "stream": "true"}, 422, "stream"),
        ({"message": "x", "stream": True, "async": False}, 422, "stream"),
        ({"message": "x", "surprise": 1}, 422, "surprise"),
        ([1, 2, 3], 400, "body"),
    ],
)
def test_bad_input_is_4xx_naming_the_field(http, user, body, status, field):
    response = http.post("/v1/chat", json=body, headers=headers(user))
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"code", "message", "details"}
    assert field in error["message"]


def test_crafted_cursors_binary_bodies_and_oversized_messages_are_4xx(http, user):
    import base64

    def cursor(key: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")

    for key in (
        {"pk": "x", "sk": "y", "owner": "z", "created_at": "w"},
        {"pk": {"N": "1"}, "sk": {"S": "REQUEST"}, "owner": {"S": "o"}, "created_at": {"S": "x"}},
        {"pk": {"S": "REQ#" + "0" * 32}, "sk": {"S": "REQUEST"}, "owner": {"S": "o"}, "created_at": {"N": "5"}},
    ):
        response = http.get("/v1/requests", params={"cursor": cursor(key)}, headers=headers(user))
        assert response.status_code == 400, response.text
    binary = http.post(
        "/v1/chat", content=b"\xff\xfe\x00", headers=headers(user, **{"Content-Type": "application/octet-stream"})
    )
    assert binary.status_code == 400
    too_big = http.post("/v1/chat", json={"message": "\u4e2d" * 20_000}, headers=headers(user))
    assert too_big.status_code == 422 and "bytes" in too_big.json()["message"]


def test_malformed_json_oversized_body_and_bad_query(http, user):
    malformed = http.post("/v1/chat", content=b'{"message": "x",', headers=headers(user))
    assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["message"]
    huge = http.post("/v1/chat", json={"message": "x" * 300_000}, headers=headers(user))
    assert huge.status_code == 413
    assert http.get("/v1/requests", params={"limit": 0}, headers=headers(user)).status_code == 422
    assert http.get("/v1/requests", params={"status": "bogus"}, headers=headers(user)).status_code == 422
    # The cursor's documented constraints: not empty, URL-safe base64 characters only
    assert http.get("/v1/requests", params={"cursor": ""}, headers=headers(user)).status_code == 422
    assert http.get("/v1/requests", params={"cursor": "a b/c"}, headers=headers(user)).status_code == 422
    bad_user = http.get("/v1/requests", headers={**headers(user), "X-Muxi-User-Id": "x" * 300})
    assert bad_user.status_code == 400


def test_auth_is_required_and_keys_are_not_interchangeable(http, user):
    assert http.post("/v1/chat", json={"message": "x"}).status_code == 401
    # The key is checked before the body: an invalid body without a key is still a 401
    assert http.post("/v1/chat", json={"surprise": 1}).status_code == 401
    wrong = http.get("/v1/requests", headers={"X-Muxi-Client-Key": "fmc_nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
    admin_as_client = http.get("/v1/requests", headers={"X-Muxi-Client-Key": KEYS.admin_key})
    assert admin_as_client.status_code == 403
    # Header names are case-insensitive.
    assert http.get("/v1/requests", headers={"x-muxi-client-key": KEYS.client_key}).status_code == 200


def test_admin_creates_and_revokes_client_keys(http):
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    assert http.post("/v1/admin/keys", json={"kind": "client"}, headers=headers("u")).status_code == 401
    created = http.post("/v1/admin/keys", json={"kind": "client", "label": "e2e"}, headers=admin)
    assert created.status_code == 201
    new_key = created.json()["key"]
    assert http.get("/v1/requests", headers={"X-Muxi-Client-Key": new_key}).status_code == 200
    assert http.delete(f"/v1/admin/keys/{created.json()['key_id']}", headers=admin).status_code == 200
    assert http.get("/v1/requests", headers={"X-Muxi-Client-Key": new_key}).status_code == 401


def test_a_user_bound_key_cannot_act_for_another_user(http):
    # Given alice's request, made by a trusted backend with the shared client key
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    alices = http.post("/v1/chat", json={"message": "Say hi", "async": True}, headers=headers("alice"))
    assert alices.status_code in (200, 202)
    alice_request = alices.json()["request_id"]
    # And a client key bound to bob
    created = http.post("/v1/admin/keys", json={"kind": "client", "user_id": "bob"}, headers=admin)
    assert created.status_code == 201 and created.json()["user_id"] == "bob"
    bob = {"X-Muxi-Client-Key": created.json()["key"]}
    # When bob's key names alice (the spoofing attempt), every route refuses
    as_alice = {**bob, "X-Muxi-User-Id": "alice"}
    for method, path in [
        ("GET", "/v1/requests"),
        ("GET", f"/v1/requests/{alice_request}"),
        ("DELETE", f"/v1/requests/{alice_request}"),
        ("GET", f"/v1/requests/{alice_request}/events"),
    ]:
        refused = http.request(method, path, headers=as_alice)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden", (method, path)
    chat = http.post("/v1/chat", json={"message": "Say hi", "user_id": "alice"}, headers=bob)
    assert chat.status_code == 403
    # And without naming anyone, bob's key sees bob's requests only: alice's is not there
    assert http.get(f"/v1/requests/{alice_request}", headers=bob).status_code == 404
    assert http.delete(f"/v1/requests/{alice_request}", headers=bob).status_code == 404
    own = http.post("/v1/chat", json={"message": "Say hi", "async": True}, headers=bob).json()["request_id"]
    listed = http.get("/v1/requests", headers={**bob, "X-Muxi-User-Id": "bob"}).json()
    assert own in {item["request_id"] for item in listed["requests"]}
    assert alice_request not in {item["request_id"] for item in listed["requests"]}
    # An admin key cannot be bound to a user
    refused = http.post("/v1/admin/keys", json={"kind": "admin", "user_id": "bob"}, headers=admin)
    assert refused.status_code == 400 and "user_id" in json.dumps(refused.json())


def test_a_key_with_an_expiry_stops_working_then(http):
    from datetime import UTC, datetime, timedelta

    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    expires = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    created = http.post("/v1/admin/keys", json={"kind": "client", "expires_at": expires}, headers=admin)
    assert created.status_code == 201 and created.json()["expires_at"].startswith(expires[:19])
    key = {"X-Muxi-Client-Key": created.json()["key"]}
    assert http.get("/v1/requests", headers=key).status_code == 200
    wait_for(lambda: http.get("/v1/requests", headers=key).status_code == 401, timeout=10)
    assert "expired" in http.get("/v1/requests", headers=key).json()["message"]
    # An expiry in the past, or without a time zone, is refused with the field named
    past = http.post("/v1/admin/keys", json={"expires_at": "2020-01-01T00:00:00Z"}, headers=admin)
    assert past.status_code == 400 and "expires_at" in past.json()["message"]
    naive = http.post("/v1/admin/keys", json={"expires_at": "2030-01-01T00:00:00"}, headers=admin)
    assert naive.status_code == 422 and "expires_at" in json.dumps(naive.json())


def test_health_openapi_and_unknown_routes(http):
    assert http.get("/v1/health").json() == {"status": "ok", "version": __version__}
    spec = http.get("/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/chat" in spec["paths"]
    assert "message" in spec["components"]["schemas"]["ChatRequest"]["properties"]
    assert spec["paths"]["/v1/admin/keys"]["post"]["security"] == [{"adminKey": []}]
    missing = http.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_artifacts_are_stored_in_s3_and_listed_with_presigned_urls(http, stack, user):
    from urllib.parse import urlsplit

    accepted = http.post(
        "/v1/chat", json={"message": "Compare two vendors and write a report", "async": True}, headers=headers(user)
    ).json()
    done = poll_until_terminal(http, user, accepted["request_id"])
    [report] = done["result"]["artifacts"]
    assert report["name"] == "report.md" and report["size"] > 0
    url = urlsplit(report["url"])
    assert "X-Amz-Expires=3600" in url.query and "X-Amz-Signature=" in url.query
    bucket = stack.bucket_names["ArtifactsBucket"]
    assert bucket in url.netloc or url.path.startswith(f"/{bucket}/")
    key = url.path.split(f"/{bucket}/", 1)[-1].lstrip("/")
    stored = stack.client("s3").get_object(Bucket=bucket, Key=key)
    assert stored["ContentType"] == "text/markdown"
    assert stored["Body"].read().decode().startswith("# Report: Compare two vendors and write a report")


def test_state_larger_than_the_table_allows_round_trips_whole(http, user):
    # Three steps of 150 KB each: the answer (about 450 KB) would not fit a DynamoDB item.
    accepted = http.post(
        "/v1/chat", json={"message": "one, two, three [demo output_kb=150]", "async": True}, headers=headers(user)
    ).json()
    done = poll_until_terminal(http, user, accepted["request_id"])
    assert done["status"] == "completed", done.get("error")
    text = done["result"]["text"]
    assert len(text.encode()) > 450 * 1024
    assert all(f"Step {i} of 3" in text for i in (1, 2, 3))


def test_a_long_message_is_kept_in_the_bucket_and_the_whole_of_it_is_worked_on(http, user, stack):
    # A 6 KB message whose clauses (the demo plans one step per clause) are split after the record's preview
    context = "Background notes on the quarterly figures region by region " * 100
    message = f"{context}: check the totals, then write a summary"
    accepted = http.post("/v1/chat", json={"message": message, "async": True}, headers=headers(user)).json()
    done = poll_until_terminal(http, user, accepted["request_id"])
    assert done["status"] == "completed", done.get("error")
    assert done["total_steps"] == 2 and done["result"]["steps"][-1]["title"] == "Write a summary"
    # The API put the whole message in the bucket (under its IAM grant), named by the request
    bucket = stack.bucket_names["ArtifactsBucket"]
    listed = stack.client("s3").list_objects_v2(Bucket=bucket, Prefix="texts/")["Contents"]
    [key] = [item["Key"] for item in listed if "/message-" in item["Key"] and item["Size"] == len(message)]
    assert stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode() == message


def test_a_long_plan_is_kept_apart_from_the_record_and_the_request_is_worked_on_from_it(http, user, stack):
    # Four clauses of about 250 characters: the demo plans a step of each (a plan of about 1.1 KB)
    clause = "compare the quarterly figures of region {0} with last year and explain each change in plain words " * 2
    message = ", ".join(clause.format(region).strip() for region in ("north", "south", "east", "west"))
    accepted = http.post("/v1/chat", json={"message": message, "async": True}, headers=headers(user)).json()
    done = poll_until_terminal(http, user, accepted["request_id"])
    assert done["status"] == "completed", done.get("error")
    # Every step ran from the plan on its own item, and the request shows them
    assert [step["state"] for step in done["steps"]] == ["done"] * 4
    assert [step["title"] for step in done["result"]["steps"]] == [step["title"] for step in done["steps"]]
    table = stack.client("dynamodb")
    found = table.scan(
        TableName=stack.table_name,
        FilterExpression="request_id = :id",
        ExpressionAttributeValues={":id": {"S": accepted["request_id"]}},
    )["Items"]
    [record] = [item for item in found if item["sk"]["S"] == "REQUEST"]
    assert "steps" not in record and record["plan_apart"] == {"BOOL": True}
    plan = table.get_item(
        TableName=stack.table_name, Key={"pk": record["pk"], "sk": {"S": "REQUEST#PLAN#" + record["planned_by"]["S"]}}
    )["Item"]
    assert len(plan["steps"]["L"]) == 4 and int(plan["ttl"]["N"]) > 0


def test_a_redrive_over_http_keeps_a_long_plan_for_its_new_run(http, user, stack):
    # Given a request with a long plan (on its own item) whose second step failed every attempt of its execution
    clause = "compare the quarterly figures of region {0} with last year and explain each change in plain words " * 2
    message = ", ".join(clause.format(r).strip() for r in ("north", "south", "east"))
    sent = {"message": message + " [demo fail_step=1 fail_transient=4]", "async": True}
    accepted = http.post("/v1/chat", json=sent, headers=headers(user)).json()
    failed = poll_until_terminal(http, user, accepted["request_id"])
    assert failed["status"] == "failed", failed
    table, name = stack.client("dynamodb"), stack.table_name
    [record] = [
        item
        for item in table.scan(
            TableName=name,
            FilterExpression="request_id = :id",
            ExpressionAttributeValues={":id": {"S": accepted["request_id"]}},
        )["Items"]
        if item["sk"]["S"] == "REQUEST"
    ]
    plan_key = {"pk": record["pk"], "sk": {"S": "REQUEST#PLAN#" + record["planned_by"]["S"]}}
    planned_ttl = int(table.get_item(TableName=name, Key=plan_key)["Item"]["ttl"]["N"])
    # When an admin redrives it (the API function, under its own IAM grants)
    time.sleep(1.1)
    body = {"key_id": failed["key_id"], "user_id": user, "request_id": accepted["request_id"]}
    redriven = http.post("/v1/admin/requests/redrive", json=body, headers={"X-Muxi-Admin-Key": KEYS.admin_key})
    assert redriven.status_code == 202, redriven.text
    # Then the plan is kept longer, and the new run finishes from it
    assert int(table.get_item(TableName=name, Key=plan_key)["Item"]["ttl"]["N"]) > planned_ttl
    done = poll_until_terminal(http, user, accepted["request_id"])
    assert done["status"] == "completed", done.get("error")
    assert [step["state"] for step in done["steps"]] == ["done"] * 3


def test_an_idempotency_key_is_kept_a_day_though_the_result_expired(http, user):
    # Given a request made with an idempotency key, completed, and gone after its retention (3 s here)
    sent = {"message": "charge the card once", "async": True}
    key = headers(user, **{"X-Muxi-Idempotency-Key": f"charge-{uuid.uuid4().hex[:8]}"})
    first = http.post("/v1/chat", json=sent, headers=key).json()
    poll_until_terminal(http, user, first["request_id"])
    wait_for(lambda: http.get(f"/v1/requests/{first['request_id']}", headers=headers(user)).status_code == 404)
    # When the client retries it, then it is a 409 naming the request and why: the work never runs twice
    retried = http.post("/v1/chat", json=sent, headers=key)
    assert retried.status_code == 409
    assert retried.json()["details"] == {"request_id": first["request_id"], "reason": "result_expired"}
    assert "stays taken until" in retried.json()["message"]


def test_the_functions_read_the_formation_as_the_layer_ships_it(stack):
    # The local stack writes the formation as make build does: the JSON and, beside it, its validated objects,
    # which the functions read without validating anything (as on Lambda)
    from pathlib import Path

    from asyncagents.built_formation import load_built, pickled_path

    shipped = Path(os.environ["FORMATION_PATH"])
    assert shipped.suffix == ".json" and pickled_path(shipped).is_file()
    assert load_built(shipped) == stack.formation
