"""Hostile input over real HTTP: every shape of bad body, method and header is a 4xx that names the field (or
the header, or the method) and the reason; never a 5xx, never an HTML page."""

from __future__ import annotations

import json
import socket
import uuid

import httpx
import pytest

from tests.stack_fixture import KEYS, stack_fixture

pytestmark = pytest.mark.e2e

CLIENT = {"X-Muxi-Client-Key": KEYS.client_key}
ADMIN = {"X-Muxi-Admin-Key": KEYS.admin_key}
DEEP = "[" * 1000 + "]" * 1000  # 2 KB, and deeper than Python's JSON decoder can go


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def http(stack):
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


HOSTILE_BODIES = [
    # (path, headers, body text, status, what the message must name)
    ("/v1/chat", CLIENT, DEEP, 400, "nested deeper than 64"),
    ("/v1/chat", CLIENT, '{"message": "x", "session_id": ' + DEEP + "}", 400, "nested deeper than 64"),
    ("/v1/chat", CLIENT, '{"async": true, "message": "' + "[" * 5000 + '"}', 202, ""),  # in a string: text
    # A 400-digit count in the text is just "very many" to the estimator (it was a float overflow, a 500).
    ("/v1/chat", CLIENT, '{"async": true, "message": "process ' + "9" * 400 + ' files"}', 202, ""),
    ("/v1/requests/req_1/clarification", CLIENT, DEEP, 400, "nested deeper than 64"),
    ("/v1/admin/keys", ADMIN, DEEP, 400, "nested deeper than 64"),
    ("/v1/scheduler/jobs", ADMIN, DEEP, 400, "nested deeper than 64"),
    ("/v1/triggers/anything", CLIENT, DEEP, 400, "nested deeper than 64"),
    ("/v1/chat", CLIENT, '{"message": "x", "threshold_seconds": 1' + "0" * 5000 + "}", 400, "longer than 1000 digits"),
    ("/v1/chat", CLIENT, '{"message": "x", "async": "yes"}', 422, "async: Input should be a valid boolean"),
    ("/v1/chat", CLIENT, '{"message": "x", "async": 1}', 422, "async: Input should be a valid boolean"),
    ("/v1/chat", CLIENT, '{"message": "x", "stream": "true"}', 422, "stream: Input should be a valid boolean"),
    ("/v1/chat", CLIENT, '{"message": "x", "threshold_seconds": "10"}', 422, "threshold_seconds: Input should be"),
    ("/v1/chat", CLIENT, '{"message": "x", "threshold_seconds": NaN}', 422, "threshold_seconds: Input should be a"),
    ("/v1/chat", CLIENT, '{"message": "x", "threshold_seconds": -Infinity}', 422, "threshold_seconds: Input should"),
    ("/v1/chat", CLIENT, '{"message": "x", "threshold_seconds": 1e400}', 422, "threshold_seconds: Input should"),
    ("/v1/chat", CLIENT, '{"message": ["x"]}', 422, "message: Input should be a valid string"),
    ("/v1/chat", CLIENT, '{"message": null}', 422, "message"),
    ("/v1/chat", CLIENT, '{"message": "x\\ud800"}', 422, "message: Input should be a valid string"),
    ("/v1/chat", CLIENT, '{"message": "x", "request_id": 5}', 422, "request_id"),
    ("/v1/chat", CLIENT, '{"message": "x", "webhook_url": "http://[::1"}', 422, "webhook_url"),
    ("/v1/chat", CLIENT, '{"message": "x",}', 400, "body: malformed JSON"),
    ("/v1/chat", CLIENT, '"just a string"', 400, "body: must be a JSON object"),
    ("/v1/requests/req_1/clarification", CLIENT, '{"answer": true}', 422, "answer: Input should be a valid string"),
    ("/v1/admin/keys", ADMIN, '{"kind": "client", "label": 5}', 422, "label: Input should be a valid string"),
    ("/v1/scheduler/jobs", ADMIN, '{"schedule": "rate(1 hour)", "message": "x", "enabled": "no"}', 422, "enabled"),
    ("/v1/scheduler/jobs", ADMIN, '{"schedule": "rate(1 hour)", "message": "  "}', 422, "message: must contain text"),
    # 32,768 characters but three bytes each: over the 32 KiB a message may have
    ("/v1/scheduler/jobs", ADMIN, '{"schedule": "rate(1 hour)", "message": "' + "€" * 32768 + '"}', 422, "bytes"),
    ("/v1/scheduler/jobs", ADMIN, '{"schedule": "0 9 * * *", "message": "x", "timezone": "America"}', 422, "timezone"),
]


@pytest.mark.parametrize(("path", "headers", "body", "status", "named"), HOSTILE_BODIES)
def test_hostile_bodies_are_4xx_naming_what_and_why(http, path, headers, body, status, named):
    user = {"X-Muxi-User-Id": f"hostile-{uuid.uuid4().hex[:8]}"}
    response = http.post(path, content=body, headers={**headers, **user, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    if status >= 400:
        error = response.json()
        assert set(error) == {"code", "message", "details"} and named in error["message"], error


def test_a_job_id_longer_than_any_job_has_is_a_404_and_a_blank_change_a_422(http):
    for method in ("GET", "DELETE"):
        response = http.request(method, "/v1/scheduler/jobs/" + "j" * 1100, headers=ADMIN)
        assert response.status_code == 404, response.text
    made = http.post("/v1/scheduler/jobs", json={"schedule": "rate(1 hour)", "message": "Hourly"}, headers=ADMIN)
    assert made.status_code == 201, made.text
    job_id = made.json()["id"]
    changed = http.put(f"/v1/scheduler/jobs/{job_id}", json={"message": "\n\t "}, headers=ADMIN)
    assert changed.status_code == 422 and "message: must contain text" in changed.json()["message"]
    http.delete(f"/v1/scheduler/jobs/{job_id}", headers=ADMIN)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/chat", "POST"),
        ("DELETE", "/v1/health", "GET, HEAD"),
        ("TRACE", "/v1/health", "GET, HEAD"),
        ("PATCH", "/v1/requests/req_1", "DELETE, GET, HEAD"),
        ("PUT", "/v1/admin/keys", "GET, HEAD, POST"),
    ],
)
def test_a_wrong_method_is_a_405_with_allow(http, method, path, allowed):
    response = http.request(method, path, headers=CLIENT)
    assert response.status_code == 405 and response.headers["allow"] == allowed
    assert response.json()["code"] == "method_not_allowed" and method in response.json()["message"]


def test_head_is_get_without_a_body_and_options_lists_the_methods(http):
    head = http.head("/v1/health")
    assert head.status_code == 200 and head.content == b""
    assert http.head("/v1/requests/req_nope", headers=CLIENT).status_code == 404
    assert http.head("/v1/requests/req_nope").status_code == 401  # HEAD needs GET's key
    options = http.options("/v1/requests/req_1")
    assert options.status_code == 204 and options.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"
    assert http.get("/v1/nothing-here", headers=CLIENT).status_code == 404


def test_the_local_server_never_answers_html(http, stack):
    # Any method reaches the API, as API Gateway's ANY routes pass it on
    brew = http.request("BREW", "/v1/health")
    assert brew.status_code == 405 and brew.headers["allow"] == "GET, HEAD"
    # What the server itself refuses (a request line that is not HTTP) is JSON too
    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"NOT AN HTTP REQUEST LINE AT ALL\r\n\r\n")
        received = b""
        while chunk := raw.recv(65536):  # until the server closes the connection
            received += chunk
        answer = received.decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.") and " 400 " in head.splitlines()[0]
    assert "content-type: application/json" in head.lower() and json.loads(body)["message"]
