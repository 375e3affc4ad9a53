"""Webhooks without sockets: signatures, destinations (SSRF), the per-attempt decision, the sender, events."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from datetime import UTC, datetime

import pytest
from muxi import webhook as muxi_webhook

from asyncagents import streams
from asyncagents.config import parse_formation
from asyncagents.data.request_items import request_image
from asyncagents.data.signing_secrets import SigningSecrets
from asyncagents.domain.auth import Principal
from asyncagents.domain.destinations import DestinationPolicy, UnsafeDestination, check_destination
from asyncagents.domain.errors import BadRequest, ConfigError, Unauthorized
from asyncagents.domain.ports import HttpResult
from asyncagents.domain.requests import NewRequest, RequestService
from asyncagents.domain.statuses import Status
from asyncagents.domain.webhooks.delivery import Outcome, WebhookDispatcher, WebhookMessage
from asyncagents.domain.webhooks.events import webhook_message_for
from asyncagents.domain.webhooks.payload import build_payload, delivery_id, snapshot_of
from asyncagents.domain.webhooks.sender import RetryLater, WebhookSender
from asyncagents.webhooks import parse, sign, verify_signature

from .fakes import InMemoryStore, ManualClock, RecordingEngine, RecordingTelemetry

SECRET = "whsec_unit"
NOW = 1_800_000_000


# -- signatures ----------------------------------------------------------------------------------


def test_signature_round_trip_and_tampering():
    body = b'{"id":"req_1","status":"completed"}'
    header = sign(body, [SECRET], timestamp=NOW)
    assert header.startswith(f"t={NOW},v1=")
    assert verify_signature(body, header, SECRET, now=NOW + 10)
    assert not verify_signature(body + b" ", header, SECRET, now=NOW)
    assert not verify_signature(body, header, "whsec_other", now=NOW)
    assert not verify_signature(body, header, SECRET, now=NOW + 301)  # replay window
    assert not verify_signature(body, header, SECRET, tolerance_seconds=5, now=NOW + 6)
    for malformed in ("", "t=abc,v1=00", "v1=00", f"t={NOW}", "garbage"):
        assert not verify_signature(body, malformed, SECRET, now=NOW)


def test_rotation_signs_with_both_and_muxi_accepts_the_last(monkeypatch):
    body = b'{"id":"req_1"}'
    header = sign(body, ["whsec_new", "whsec_old"], timestamp=NOW)
    assert header.count("v1=") == 2
    assert verify_signature(body, header, "whsec_new", now=NOW)
    assert verify_signature(body, header, "whsec_old", now=NOW)
    monkeypatch.setattr("time.time", lambda: NOW)
    # MUXI's helper reads the last v1 only: receivers that still hold the previous secret keep working.
    assert muxi_webhook.verify_signature(body, header, "whsec_old")
    assert muxi_webhook.verify_signature(body, sign(body, ["whsec_new"], timestamp=NOW), "whsec_new")


class FakeSecretsManager:
    def __init__(self, value: dict) -> None:
        self.value = json.dumps(value)

    def get_secret_value(self, SecretId: str) -> dict:
        return {"SecretString": self.value}

    def put_secret_value(self, SecretId: str, SecretString: str) -> None:
        self.value = SecretString


def test_secret_rotation_keeps_previous_for_grace_period_and_caches_reads():
    client = FakeSecretsManager({"current": "whsec_a", "previous": ""})
    now = [1000.0]
    secrets = SigningSecrets(client, "arn", cache_seconds=60, clock=lambda: now[0])
    assert secrets() == ["whsec_a"]
    new = secrets.rotate(grace_seconds=3600)
    assert secrets() == [new, "whsec_a"]
    now[0] += 3601
    assert secrets() == [new]


# -- destinations ----------------------------------------------------------------------------------


def resolver_for(mapping: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise OSError("Name or service not known")
        return mapping[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "addresses", "reason"),
    [
        ("https://127.0.0.1/hook", None, "loopback"),
        ("https://[::1]/hook", None, "loopback"),
        ("https://10.1.2.3/hook", None, "private"),
        ("https://172.16.0.9/hook", None, "private"),
        ("https://192.168.1.1/hook", None, "private"),
        ("https://100.64.0.1/hook", None, "private"),  # carrier-grade NAT
        ("https://[fd00::1]/hook", None, "private"),  # unique-local IPv6
        ("https://169.254.169.254/latest/meta-data", None, "refused"),  # cloud metadata
        ("https://[fe80::1]/hook", None, "refused"),
        ("https://224.0.0.1/hook", None, "refused"),  # multicast
        ("https://0.0.0.0/hook", None, "refused"),
        ("https://[::]/hook", None, "refused"),
        ("https://[::ffff:10.0.0.1]/hook", None, "private"),  # IPv4-mapped IPv6
        # IPv6 forms that carry an IPv4 address are judged by it: NAT64, 6to4, IPv4-compatible
        ("https://[64:ff9b::a9fe:a9fe]/hook", None, "refused"),  # NAT64 of 169.254.169.254
        ("https://[64:ff9b::7f00:1]/hook", None, "loopback"),
        ("https://[2002:a00:1::1]/hook", None, "private"),  # 6to4 of 10.0.0.1
        ("https://[::10.0.0.1]/hook", None, "private"),
        ("https://[64:ff9b:1::1]/hook", None, "private"),  # a local-use NAT64 translator
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", None, "refused"),  # Teredo: not global
        ("https://resolves-nat64.example/hook", ["64:ff9b::a00:5"], "private"),
        # privileged ports other than the web's are other services
        ("https://public.example:25/hook", ["93.184.216.34"], "port 25 is not allowed"),
        ("https://public.example:22/hook", ["93.184.216.34"], "port 22 is not allowed"),
        ("https://internal.example/hook", ["10.0.0.7"], "private"),  # a name that resolves privately
        ("https://mixed.example/hook", ["93.184.216.34", "127.0.0.1"], "loopback"),  # any bad address refuses
        ("http://public.example/hook", ["93.184.216.34"], "https"),
        ("ftp://public.example/hook", ["93.184.216.34"], "https"),
        ("https://user:pw@public.example/hook", ["93.184.216.34"], "credentials"),
        ("https://nowhere.example/hook", [], "resolve"),
        ("https://unknown.invalid/hook", None, "resolve"),
    ],
)
def test_unsafe_destinations_are_refused(url, addresses, reason):
    host = url.split("//", 1)[1].split("/", 1)[0].split("@")[-1]
    resolver = resolver_for({host: addresses} if addresses is not None else {})
    with pytest.raises(UnsafeDestination) as caught:
        check_destination(url, DestinationPolicy(), resolver=resolver)
    assert reason in caught.value.message
    assert caught.value.details["field"] == "webhook_url"


def test_public_https_destination_pins_the_checked_address():
    checked = check_destination(
        "https://hooks.example:8443/path?x=1",
        DestinationPolicy(),
        resolver=resolver_for({"hooks.example": ["93.184.216.34"]}),
    )
    assert checked.connect_url == "https://93.184.216.34:8443/path?x=1"
    assert checked.host_header == "hooks.example:8443"


def test_public_addresses_carried_in_ipv6_and_unprivileged_ports_are_allowed():
    resolver = resolver_for({"hooks.example": ["93.184.216.34"]})
    assert check_destination("https://[64:ff9b::5db8:d822]/x", DestinationPolicy()).address == "64:ff9b::5db8:d822"
    assert check_destination("https://hooks.example:8443/x", DestinationPolicy(), resolver=resolver).port == 8443


def test_a_formation_chooses_its_ports():
    formation = parse_formation({"async": {"webhook_security": {"allowed_ports": "443, 9000-9001"}}})
    policy = DestinationPolicy(**formation.async_.webhook_security.model_dump())
    resolver = resolver_for({"hooks.example": ["93.184.216.34"]})
    assert check_destination("https://hooks.example/x", policy, resolver=resolver).port == 443
    assert check_destination("https://hooks.example:9001/x", policy, resolver=resolver).port == 9001
    with pytest.raises(UnsafeDestination, match=r"port 8443 is not allowed \(allowed: 443, 9000-9001\)"):
        check_destination("https://hooks.example:8443/x", policy, resolver=resolver)
    # what the local stack writes back as JSON reads the same
    again = parse_formation(formation.model_dump(by_alias=True, mode="json"))
    assert again.async_.webhook_security.allowed_ports == ((443, 443), (9000, 9001))


@pytest.mark.parametrize(
    ("ports", "reason"),
    [
        ("https", "'https' is not a port or a range of ports"),
        ("0", "ports are 1-65535"),
        ("9000-80", "the low end first"),
        ([], "give ports and ranges"),
    ],
)
def test_port_settings_that_are_not_ports_are_refused(ports, reason):
    with pytest.raises(ConfigError, match=r"async\.webhook_security\.allowed_ports") as caught:
        parse_formation({"async": {"webhook_security": {"allowed_ports": ports}}})
    assert reason in str(caught.value)


def test_policy_can_allow_http_loopback_and_private_explicitly():
    policy = DestinationPolicy(allow_http=True, allow_loopback=True, allow_private_networks=True)
    assert check_destination("http://127.0.0.1:9000/x", policy).address == "127.0.0.1"
    assert check_destination("https://10.0.0.1/x", policy).address == "10.0.0.1"
    with pytest.raises(UnsafeDestination):  # metadata stays refused whatever the policy says
        check_destination("http://169.254.169.254/", policy)


def test_submit_refuses_unsafe_webhook_url(clock_service):
    service, _ = clock_service
    with pytest.raises(UnsafeDestination):
        service.submit(Principal("k", "u"), NewRequest(message="x", webhook_url="https://169.254.169.254/"))


# -- delivery decisions ------------------------------------------------------------------------------


@pytest.fixture
def clock_service():
    store = InMemoryStore()
    formation = parse_formation({"async": {"webhook_retries": 3, "webhook_backoff_seconds": 4}})
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    resolver = resolver_for({"hooks.example": ["93.184.216.34"]})
    service = RequestService(store, RecordingEngine(), formation, clock=clock, resolver=resolver)
    return service, store


class ScriptedTransport:
    """Answers each post with the next scripted result and remembers what it was sent."""

    def __init__(self, *results: HttpResult) -> None:
        self.results = list(results)
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, destination, body, headers, timeout):
        self.sent.append((destination.connect_url, body, headers))
        return self.results.pop(0)


def completed_request(store: InMemoryStore, service: RequestService) -> WebhookMessage:
    record = service.submit(
        Principal("k", "u"), NewRequest(message="hello", webhook_url="https://hooks.example/cb")
    ).record
    store.items[record.request_key].update(
        status="completed",
        result={"text": "the answer", "artifacts": []},
        ended_at="2026-01-01T00:00:05.000000Z",
        duration_ms=5000,
    )
    return WebhookMessage(
        request_key=record.request_key,
        status="completed",
        delivery_id=delivery_id(record.request_key, "completed", "2026-01-01T00:00:05.000000Z"),
        event_time="2026-01-01T00:00:05.000000Z",
    )


def dispatcher_with(store, transport, jitter=lambda low, high: high, sent_notices=None, **settings):
    formation = parse_formation({"async": {"webhook_retries": 3, "webhook_backoff_seconds": 4, **settings}})
    return WebhookDispatcher(
        store,
        transport,
        lambda: [SECRET],
        formation,
        resolver=resolver_for({"hooks.example": ["93.184.216.34"]}),
        clock=lambda: datetime.fromtimestamp(NOW, UTC),
        jitter=jitter,
        sent_notices=sent_notices,
    )


def test_delivered_webhook_is_signed_payload_of_seed_shape(clock_service):
    service, store = clock_service
    message = completed_request(store, service)
    transport = ScriptedTransport(HttpResult(status_code=204))
    outcome = dispatcher_with(store, transport).deliver(message, attempt=1)

    assert outcome.kind == "delivered"
    url, body, headers = transport.sent[0]
    assert url == "https://93.184.216.34:443/cb"
    assert verify_signature(body, headers["X-Muxi-Signature"], SECRET, now=NOW)
    assert headers["X-Muxi-Delivery-Id"] == message.delivery_id
    payload = json.loads(body)
    assert set(payload) >= {
        "id", "status", "timestamp", "response", "error", "formation_id", "user_id", "processing_time",
        "processing_mode",
    }  # fmt: skip
    assert payload["response"] == [{"type": "text", "text": "the answer"}]
    assert payload["processing_time"] == 5.0 and payload["error"] is None
    event = parse(body)
    assert event.status == "completed" and event.response[0].text == "the answer"
    assert muxi_webhook.parse(body).content[0].text == "the answer"
    assert store.get(message.request_key, with_delivery=True).webhook_status == "delivered"


@pytest.mark.parametrize(
    ("result", "attempt", "kind", "delay"),
    [
        (HttpResult(status_code=500), 1, "retry", 4),
        (HttpResult(status_code=503), 2, "retry", 8),
        (HttpResult(error="timed out after 10s"), 3, "retry", 16),
        (HttpResult(status_code=408), 1, "retry", 4),
        (HttpResult(status_code=429, retry_after=30), 1, "retry", 30),  # Retry-After wins when longer
        (HttpResult(status_code=500), 4, "dead", 0),  # 1 attempt + 3 retries, then the DLQ
        (HttpResult(status_code=400), 1, "dead", 0),
        (HttpResult(status_code=404), 1, "dead", 0),
        (HttpResult(status_code=302), 1, "dead", 0),
    ],
)
def test_retry_decisions(clock_service, result, attempt, kind, delay):
    service, store = clock_service
    message = completed_request(store, service)
    outcome = dispatcher_with(store, ScriptedTransport(result)).deliver(message, attempt=attempt)
    assert (outcome.kind, outcome.delay_seconds) == (kind, delay)
    record = store.get(message.request_key, with_delivery=True)
    assert record.webhook_attempts == attempt
    assert record.webhook_status == {"retry": "retrying", "dead": "failed"}[kind]
    if result.status_code == 302:
        assert "redirects are not followed" in outcome.reason


def test_jitter_keeps_backoff_within_half_and_full_ceiling(clock_service):
    service, store = clock_service
    message = completed_request(store, service)
    seen = []
    dispatcher = dispatcher_with(
        store, ScriptedTransport(HttpResult(status_code=500)), jitter=lambda low, high: seen.append((low, high)) or low
    )
    assert dispatcher.deliver(message, attempt=2).delay_seconds == 4
    assert seen == [(4.0, 8.0)]


def test_destination_that_turned_private_is_dead_lettered_without_sending(clock_service):
    service, store = clock_service
    message = completed_request(store, service)
    transport = ScriptedTransport()
    dispatcher = dispatcher_with(store, transport)
    dispatcher._resolver = resolver_for({"hooks.example": ["10.0.0.5"]})  # DNS changed since submit
    outcome = dispatcher.deliver(message, attempt=1)
    assert outcome.kind == "dead" and "private" in outcome.reason
    assert transport.sent == []


def test_a_host_that_does_not_resolve_at_a_delivery_is_retried_then_delivered(clock_service):
    service, store = clock_service
    message = completed_request(store, service)
    transport = ScriptedTransport(HttpResult(status_code=200))
    dispatcher = dispatcher_with(store, transport)
    resolves = resolver_for({"hooks.example": ["93.184.216.34"]})

    def dns_down(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    # When the resolver fails (a DNS outage), the delivery is retried later, not dead-lettered, and nothing is sent
    dispatcher._resolver = dns_down
    outcome = dispatcher.deliver(message, attempt=1)
    assert outcome.kind == "retry" and "does not resolve" in outcome.reason and transport.sent == []
    # And once DNS answers, the next attempt delivers it
    dispatcher._resolver = resolves
    assert dispatcher.deliver(message, attempt=2).kind == "delivered"


def test_event_for_a_status_the_request_left_is_skipped(clock_service):
    service, store = clock_service
    message = completed_request(store, service).model_copy(update={"status": "awaiting_clarification"})
    assert dispatcher_with(store, ScriptedTransport()).deliver(message, attempt=1).kind == "skipped"


def test_an_event_is_delivered_from_its_own_snapshot_after_its_request_is_gone_or_its_id_reused(clock_service):
    service, store = clock_service
    message = completed_request(store, service)
    record = store.get(message.request_key)
    with_body = message.model_copy(
        update={"webhook_url": record.webhook_url, "snapshot": snapshot_of(record), "created_at": record.created_at}
    )
    # Given the request's record deleted (retention passed, TTL swept it)
    del store.items[message.request_key]
    transport = ScriptedTransport(HttpResult(status_code=200), HttpResult(status_code=200))
    # Then its event is delivered whole, from the snapshot it carries
    assert dispatcher_with(store, transport).deliver(with_body, attempt=1).kind == "delivered"
    body = json.loads(transport.sent[0][1])
    assert body["status"] == "completed" and body["response"] == [{"type": "text", "text": "the answer"}]
    # Given the id reused by a new request (pending) under the same key
    store.items[message.request_key] = {**record.model_dump(mode="json"), "status": "pending", "created_at": "later"}
    # Then the old request's event is neither skipped nor recorded on the new request
    assert dispatcher_with(store, transport).deliver(with_body, attempt=1).kind == "delivered"
    assert store.items[message.request_key].get("webhook_status") is None


def test_retries_stop_at_the_window_from_the_first_attempt(clock_service):
    service, store = clock_service
    message = completed_request(store, service)
    formation = parse_formation(
        {
            "async": {
                "webhook_backoff_seconds": 4,
                "webhook_retry_window_seconds": 3600,
                "webhook_max_backoff_seconds": 600,
            }
        }
    )
    dispatcher = WebhookDispatcher(
        store,
        ScriptedTransport(HttpResult(status_code=503), HttpResult(status_code=503)),
        lambda: [SECRET],
        formation,
        resolver=resolver_for({"hooks.example": ["93.184.216.34"]}),
        clock=lambda: datetime.fromtimestamp(NOW, UTC),
        jitter=lambda low, high: high,
    )
    # Within the window: retried later, with the backoff (attempt 5: 4 s doubled four times, capped at 600)
    assert dispatcher.deliver(message, attempt=5, first_received_at=NOW - 100) == Outcome("retry", "HTTP 503", 64)
    # When the next delay would end past the window: given up, saying so
    late = dispatcher.deliver(message, attempt=5, first_received_at=NOW - 3550)
    assert late.kind == "dead" and "window 3600 s" in late.reason


class RecordingQueue:
    def __init__(self) -> None:
        self.delayed: list[tuple[str, int]] = []
        self.dead: list[tuple[str, str]] = []

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self.delayed.append((receipt_handle, seconds))

    def dead_letter(self, body: str, *, reason: str) -> None:
        self.dead.append((body, reason))


def test_sender_delays_retries_dead_letters_with_reason_and_rejects_malformed(clock_service):
    service, store = clock_service
    message = completed_request(store, service)
    queue = RecordingQueue()
    telemetry = RecordingTelemetry()
    transport = ScriptedTransport(HttpResult(status_code=502), HttpResult(status_code=410))
    sender = WebhookSender(dispatcher_with(store, transport), queue, telemetry=telemetry)

    with pytest.raises(RetryLater):
        sender.handle(message.model_dump_json(), attempt=1, receipt_handle="rh-1")
    assert queue.delayed == [("rh-1", 4)]

    sender.handle(message.model_dump_json(), attempt=2, receipt_handle="rh-2")
    body, reason = queue.dead[0]
    assert reason == "HTTP 410: not retried"
    assert json.loads(body)["delivery_id"] == message.delivery_id and json.loads(body)["attempts"] == 2

    sender.handle("{not json", attempt=1, receipt_handle="rh-3")
    assert "malformed" in queue.dead[1][1]
    # Each attempt is measured with its outcome; the delivery id goes in the metadata, never a dimension
    assert telemetry.values("WebhookAttempts") == [1, 1, 1]
    assert [sorted(m) for m, _ in telemetry.emitted] == [
        ["WebhookAttempts", "WebhookRetried"],
        ["WebhookAttempts", "WebhookDead"],
        ["WebhookAttempts", "WebhookDead"],
    ]
    assert telemetry.emitted[0][1] == {"delivery_id": message.delivery_id, "attempt": 1, "outcome": "retry"}


# -- which changes are events ------------------------------------------------------------------------


def test_only_status_changes_to_webhook_statuses_with_a_url_are_events():
    base = {"request_key": "a" * 32, "webhook_url": "https://x.example/", "created_at": "t0"}
    done = {**base, "status": "completed", "ended_at": "t1"}
    message = webhook_message_for({**base, "status": "processing"}, done)
    assert message is not None and message.status == "completed" and message.event_time == "t1"
    # the same change delivered twice by the stream is the same delivery
    assert webhook_message_for({**base, "status": "processing"}, done).delivery_id == message.delivery_id
    assert webhook_message_for(done, {**done, "webhook_status": "delivered"}) is None  # no status change
    assert webhook_message_for({**base, "status": "pending"}, {**base, "status": "processing"}) is None
    assert webhook_message_for({**base, "status": "processing"}, {**done, "webhook_url": None}) is None
    assert webhook_message_for({**base, "status": "processing"}, {**base, "status": "cancelled"}) is not None


def test_stream_images_reach_the_domain_in_its_own_words():
    # Given a request record's images as the table's stream delivers them, and a step checkpoint's
    request = {"pk": "REQ#" + "b" * 32, "sk": "REQUEST", "owner": "OWNER#x", "webhook_url": "https://x.example/"}
    processing = {**request, "status": "processing", "created_at": "t0"}
    completed = {**processing, "status": "completed", "ended_at": "t1"}
    checkpoint = {"pk": "REQ#" + "b" * 32, "sk": "STEP#lineage#0001", "status": "completed"}
    # When the task adapter reads them
    message = streams.webhook_event_of(processing, completed)
    # Then the request's change is an event keyed by the request key, and the table's keys stay behind
    assert message is not None and message.request_key == "b" * 32
    assert request_image(completed) == {
        "webhook_url": "https://x.example/",
        "status": "completed",
        "created_at": "t0",
        "ended_at": "t1",
        "request_key": "b" * 32,
    }
    assert request_image(checkpoint) is None
    assert streams.webhook_event_of(None, {**checkpoint, "webhook_url": "https://x.example/"}) is None


def test_failed_payload_carries_error_and_no_response(clock_service):
    service, store = clock_service
    record = service.submit(Principal("k", "u"), NewRequest(message="x", webhook_url="https://hooks.example/")).record
    store.items[record.request_key].update(
        status=Status.FAILED.value,
        error={"type": "provider_error", "message": "boom", "retryable": False},
        ended_at="2026-01-01T00:00:01.000000Z",
    )
    payload = build_payload(store.get(record.request_key))
    assert payload["response"] == []
    assert payload["error"] == {
        "code": "provider_error",
        "type": "provider_error",
        "message": "boom",
        "retryable": False,
    }
    assert muxi_webhook.parse(json.dumps(payload)).error.code == "provider_error"


def test_the_delivery_id_is_covered_by_a_signature_by_default(clock_service):
    from asyncagents.domain.triggers.signatures import verify
    from asyncagents.trigger_definitions import Verification

    # Given a delivered webhook, with the formation's defaults
    service, store = clock_service
    transport = ScriptedTransport(HttpResult(status_code=204))
    dispatcher_with(store, transport).deliver(completed_request(store, service), attempt=1)
    _, body, headers = transport.sent[0]
    # Then its Standard Webhooks headers name the delivery id, and their signature covers it
    lower = {name.lower(): value for name, value in headers.items()}
    assert lower["webhook-id"] == lower["x-muxi-delivery-id"]
    scheme = Verification(provider="standard-webhooks")
    verify(scheme, lower, body, [SECRET], now=NOW)
    with pytest.raises(Unauthorized):  # a replay under another delivery id does not verify
        verify(scheme, {**lower, "webhook-id": "whd_other"}, body, [SECRET], now=NOW)
    # And a formation that opts out sends MUXI's headers only
    quiet = ScriptedTransport(HttpResult(status_code=204))
    dispatcher_with(store, quiet, webhook_standard_headers=False).deliver(completed_request(store, service), attempt=1)
    assert "webhook-id" not in quiet.sent[0][2] and "X-Muxi-Signature" in quiet.sent[0][2]


def test_rotated_secrets_work_for_standard_webhooks_too():
    from asyncagents.data.signing_secrets import new_signing_secret
    from asyncagents.domain.webhooks.signing import standard_webhook_headers

    for _ in range(50):  # every generated secret decodes (url-safe alphabets used to break this)
        headers = standard_webhook_headers(b"{}", "whd_1", NOW, [new_signing_secret()])
        assert headers["webhook-signature"].startswith("v1,")
    # a secret that is not base64 signs with its own bytes instead of failing
    assert standard_webhook_headers(b"{}", "whd_1", NOW, ["whsec_not base64!"])["webhook-signature"]


def test_unexpected_errors_are_retried_then_dead_lettered_and_recorded(clock_service):
    service, store = clock_service
    message = completed_request(store, service)

    def broken_secrets():
        raise RuntimeError("secret unreadable")

    dispatcher = dispatcher_with(store, ScriptedTransport())
    dispatcher._secrets = broken_secrets
    first = dispatcher.deliver(message, attempt=1)
    assert first.kind == "retry" and "RuntimeError" in first.reason
    last = dispatcher.deliver(message, attempt=4)
    assert last.kind == "dead"
    assert store.get(message.request_key, with_delivery=True).webhook_status == "failed"


def test_resolver_prefers_ipv4(monkeypatch):
    import socket

    from asyncagents.domain.destinations import system_resolver

    answers = [(socket.AF_INET6, 1, 6, "", ("2600:1f18::1", 443, 0, 0)), (socket.AF_INET, 1, 6, "", ("52.1.2.3", 443))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    assert system_resolver("hooks.example", 443) == ["52.1.2.3", "2600:1f18::1"]


def test_a_key_with_its_own_secret_signs_its_requests_webhooks_with_it_alone(clock_service):
    from asyncagents.domain.auth import KeyService

    service, store = clock_service
    keys = KeyService(store)
    own = keys.create("client", webhook_secret=True)
    assert own.webhook_secret is not None and own.webhook_secret.startswith("whsec_")
    store.put_key(secret_hash="h", key_id="k", kind="client", label="", created_at="2026-01-01T00:00:00Z")
    message = completed_request(store, service)  # made by key "k", which has no secret of its own
    formation = parse_formation({"async": {"webhook_retries": 3}})

    def deliver(key_id: str | None) -> dict:
        transport = ScriptedTransport(HttpResult(status_code=204))
        dispatcher = WebhookDispatcher(
            store,
            transport,
            lambda: [SECRET],
            formation,
            resolver=resolver_for({"hooks.example": ["93.184.216.34"]}),
            clock=lambda: datetime.fromtimestamp(NOW, UTC),
            key_secrets=keys.webhook_secret_of,
        )
        assert dispatcher.deliver(message.model_copy(update={"key_id": key_id}), attempt=1).kind == "delivered"
        return transport.sent[0]

    # A request of the key with its own secret: its receivers verify with that secret, not the stack's
    _, body, headers = deliver(own.key_id)
    assert verify_signature(body, headers["X-Muxi-Signature"], own.webhook_secret, now=NOW)
    assert not verify_signature(body, headers["X-Muxi-Signature"], SECRET, now=NOW)
    # Another key's request (named by the message, or by its record when the message is older): the stack's
    for key_id in ("k", None):
        _, body, headers = deliver(key_id)
        assert verify_signature(body, headers["X-Muxi-Signature"], SECRET, now=NOW)
    # The secret is read once, and never listed
    reads = store.calls.count("get_key_by_id")
    deliver(own.key_id)
    assert store.calls.count("get_key_by_id") == reads
    (listed,) = [key for key in keys.list(limit=10, cursor=None)[0] if key.key_id == own.key_id]
    assert listed.signs_webhooks and own.webhook_secret not in repr(keys.list(limit=10, cursor=None))
    with pytest.raises(BadRequest, match="webhook_secret"):
        keys.create("admin", webhook_secret=True)


class MemoryMarks:
    """``SentNoticeMarks`` in memory, with its claims (atomic under a lock, as its conditional writes are)."""

    def __init__(self) -> None:
        self.sent: set[str] = set()
        self.sending: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, delivery_id: str) -> str | None:
        with self._lock:
            if delivery_id in self.sent:
                return "sent"
            if delivery_id in self.sending:
                return "sending"
            self.sending.add(delivery_id)
            return None

    def mark_sent(self, delivery_id: str) -> None:
        with self._lock:
            self.sending.discard(delivery_id)
            self.sent.add(delivery_id)

    def release(self, delivery_id: str) -> None:
        with self._lock:
            self.sending.discard(delivery_id)


def test_the_same_notice_delivered_twice_at_once_is_sent_once(clock_service):
    # Given a notice whose two deliveries (the stream's repeat, SQS's) run at once on the sender's threads
    service, store = clock_service
    event = completed_request(store, service)
    notice = event.model_copy(
        update={"channel": "slack", "delivery_id": event.delivery_id + "-s", "webhook_url": "https://hooks.example/s"}
    )
    both_sending = threading.Barrier(2, timeout=5)

    class SlowSlack(ScriptedTransport):
        def post(self, destination, body, headers, timeout):
            with contextlib.suppress(threading.BrokenBarrierError):  # the other one waits here too, if it sends
                both_sending.wait(0.5)
            return super().post(destination, body, headers, timeout)

    transport = SlowSlack(HttpResult(status_code=200), HttpResult(status_code=200))
    dispatcher = dispatcher_with(store, transport, sent_notices=MemoryMarks())
    outcomes: list[Outcome] = []
    threads = [threading.Thread(target=lambda: outcomes.append(dispatcher.deliver(notice, 1))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then Slack gets it once: the other delivery asks again later, and then finds it sent
    assert len(transport.sent) == 1
    assert sorted(o.kind for o in outcomes) == ["delivered", "retry"]
    assert dispatcher.deliver(notice, 2) == Outcome("delivered", "sent already")


def test_a_notice_whose_claim_could_not_be_given_back_is_sent_by_a_later_attempt():
    # Given a delivery whose send failed and whose claim could not be given back (DynamoDB throttled): still held
    marks = MemoryMarks()
    assert marks.claim("d-1") is None
    # Then a retry meanwhile is told to ask again later (not that it was sent), and sends it once the claim is gone
    assert marks.claim("d-1") == "sending"
    marks.release("d-1")  # (the claim lapsing, in SentNoticeMarks)
    assert marks.claim("d-1") is None


def test_a_notice_delivered_again_is_not_sent_twice_and_a_failed_send_is_retried(clock_service):
    service, store = clock_service
    event = completed_request(store, service)
    notice = event.model_copy(
        update={
            "channel": "slack",
            "delivery_id": event.delivery_id + "-slack",
            "webhook_url": "https://hooks.example/s",
        }
    )

    marks = MemoryMarks()
    transport = ScriptedTransport(HttpResult(status_code=503), HttpResult(status_code=200))
    dispatcher = dispatcher_with(store, transport, sent_notices=marks)
    assert dispatcher.deliver(notice, attempt=1).kind == "retry"  # not sent: its claim given back, retried
    assert dispatcher.deliver(notice, attempt=2).kind == "delivered"
    repeat = dispatcher.deliver(notice, attempt=1)  # the stream's repeat
    assert repeat == Outcome("delivered", "sent already")
    assert len(transport.sent) == 2 and marks.sent == {notice.delivery_id}
    assert json.loads(transport.sent[-1][1])["text"].startswith("Request ")
    assert (
        store.get(event.request_key, with_delivery=True).webhook_status is None
    )  # the webhook's bookkeeping is not the notice's


def test_a_retry_delay_never_asks_sqs_for_more_than_it_allows_after_a_receive():
    from asyncagents.data.webhook_queue import WebhookQueue

    class Sqs:
        def __init__(self) -> None:
            self.hidden: list[int] = []

        def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
            self.hidden.append(VisibilityTimeout)

    sqs = Sqs()
    queue = WebhookQueue(sqs, "https://sqs.example/queue")
    # SQS counts 12 h from the receive, and the sender has worked on the message for a while when it asks
    for seconds in (60, 42_300, 43_200, 86_400):
        queue.delay("receipt", seconds)
    assert sqs.hidden == [60, 42_300, 42_300, 42_300]
