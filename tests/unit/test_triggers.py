"""Triggers without AWS: templates, definitions, providers' signatures (their documented examples) and firing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from asyncagents.config import load_formation, parse_formation
from asyncagents.domain.auth import KeyService
from asyncagents.domain.errors import (
    BadRequest,
    ConfigError,
    Forbidden,
    InvalidData,
    NotFound,
    Unauthorized,
    Unavailable,
)
from asyncagents.domain.requests import RequestService
from asyncagents.domain.triggers import signatures
from asyncagents.domain.triggers.fire import Fired, Handshake, Ignored, TriggerCall, Triggers
from asyncagents.domain.triggers.template import data_fields, foreign_expressions, render
from asyncagents.trigger_definitions import TriggerDefinition, Verification, load_definition

from .fakes import FakeTimer, InMemoryStore, ManualClock, RecordingEngine, RecordingTelemetry

REPO = Path(__file__).resolve().parents[2]

# -- templates -------------------------------------------------------------------------------------


def test_placeholders_fill_from_nested_data_and_list_indexes():
    template = "#${{ data.issue.number }} ${{data.issue.title}} [${{ data.labels.1.name }}] ${{ data.issue }}"
    data = {"issue": {"number": 7, "title": "Crash"}, "labels": [{"name": "bug"}, {"name": "p1"}]}
    assert render(template, data) == '#7 Crash [p1] {"number": 7, "title": "Crash"}'
    assert data_fields(template) == ["issue.number", "issue.title", "labels.1.name", "issue"]
    # null reads as nothing (GitHub sends "body": null for an issue without text)
    assert render("body: ${{ data.body }}.", {"body": None}) == "body: ."


@pytest.mark.parametrize(
    ("data", "missing"),
    [
        ({"issue": {}}, "data.issue.title"),
        ({}, "data.issue"),
        ({"issue": "text"}, "data.issue.title"),
    ],
)
def test_a_path_the_data_lacks_is_an_error_naming_it(data, missing):
    with pytest.raises(InvalidData) as raised:
        render("Title: ${{ data.issue.title }}", data)
    assert raised.value.details == {"field": "data.issue.title", "missing": missing}


def test_a_list_index_out_of_range_is_missing_data():
    with pytest.raises(InvalidData, match=r"data\.labels\.2"):
        render("${{ data.labels.2 }}", {"labels": ["a", "b"]})


def test_templates_reach_only_data():
    assert foreign_expressions("${{ env.HOME }} ${{ data.a }} ${{ secrets.X }}") == [
        "${{ env.HOME }}",
        "${{ secrets.X }}",
    ]
    assert render("${{ env.HOME }}", {}) == "${{ env.HOME }}"  # never evaluated (and refused at build time)


# -- definitions -----------------------------------------------------------------------------------


def _definition(tmp_path: Path, name: str, text: str) -> TriggerDefinition:
    folder = tmp_path / "triggers"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(text)
    return load_definition(path)


def test_the_shipped_definitions_are_valid_and_load_with_the_formation():
    formation = load_formation(REPO / "formation.yaml")
    github = formation.triggers["github-issue"]
    assert github.verify is not None and github.verify.provider == "github"
    assert "issue.title" in github.data_fields and github.async_ is True
    assert formation.triggers["support-ticket"].verify is None


def test_a_definition_is_front_matter_and_a_body(tmp_path):
    definition = _definition(
        tmp_path,
        "deploy",
        "---\nname: deploy\ntype: webhook\nasync: false\nverify: {provider: hmac, header: X-Sig, prefix: 'sha256='}\n"
        "webhook: anything MUXI keeps\n---\nDeploy ${{ data.ref }}\n",
    )
    assert definition.template == "Deploy ${{ data.ref }}" and definition.async_ is False
    assert definition.verify == Verification(provider="hmac", header="X-Sig", prefix="sha256=")
    # Without front matter the whole file is the message, as in MUXI
    assert _definition(tmp_path, "plain", "Hello ${{ data.name }}").template == "Hello ${{ data.name }}"


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("bad.name", "x", "file name must match"),
        ("open", "---\nasync: true\nbody", "never closed"),
        ("other", "---\nname: another\n---\nx", "differs from the file's name"),
        ("typo", "---\nasnyc: true\n---\nx", "asnyc: Extra inputs are not permitted"),
        ("code", "---\ntransformer: transform.py\n---\nx", "transformer: not supported"),
        ("files", "---\nparse: {files: $.attachments}\n---\nx", "files: not supported"),
        ("path", "---\nparse: {user_id: sender.login}\n---\nx", "is not a path like"),
        ("hmac", "---\nverify: {provider: hmac}\n---\nx", "header: required when provider is hmac"),
        ("fixed", "---\nverify: {provider: github, header: X-Sig}\n---\nx", "header: only for provider hmac"),
        ("env", "---\n---\nHome: ${{ env.HOME }}", "may only use ${{ data.<path> }}"),
        ("empty", "---\ndescription: nothing to say\n---\n", "the body is empty"),
        ("both", "---\nparse: {message: $.text}\n---\nAlso a body", "not both"),
        ("arn", "---\nverify: {provider: github, secret_arn: my-secret}\n---\nx", "verify.secret_arn"),
        ("yaml", "---\nverify: [unclosed\n---\nx", "not valid YAML"),
    ],
)
def test_invalid_definitions_are_refused_naming_the_file_key_and_reason(tmp_path, name, text, reason):
    with pytest.raises(ConfigError) as raised:
        _definition(tmp_path, name, text)
    assert f"{name}.md" in raised.value.message
    assert reason in raised.value.message


def test_triggers_are_files_not_formation_keys(tmp_path):
    path = tmp_path / "formation.yaml"
    path.write_text("triggers:\n  github: {}\n")
    with pytest.raises(ConfigError, match=r"triggers/<name>\.md"):
        load_formation(path)


def test_secrets_of_yours_reach_the_template_parameters(tmp_path):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:github-hook-AbCdEf"
    _definition(tmp_path, "gh", f"---\nverify: {{provider: github, secret_arn: '{arn}'}}\n---\nx")
    _definition(tmp_path, "slack", "---\nverify: {provider: slack}\n---\nx")
    (tmp_path / "formation.yaml").write_text("formation_id: f\n")
    parameters = load_formation(tmp_path / "formation.yaml").template_parameters()
    assert parameters["TriggerSecretArns"] == arn


# -- providers' signatures: the examples in their own documentation ---------------------------------


def test_github_documented_example():
    scheme = Verification(provider="github")
    header = {"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    signatures.verify(scheme, header, b"Hello, World!", ["It's a Secret to Everybody"], now=0)
    with pytest.raises(Unauthorized, match="X-Hub-Signature-256: the signature does not match"):
        signatures.verify(scheme, header, b"Hello, World?", ["It's a Secret to Everybody"], now=0)
    with pytest.raises(Unauthorized, match="missing X-Hub-Signature-256"):
        signatures.verify(scheme, {}, b"Hello, World!", ["It's a Secret to Everybody"], now=0)


SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_HEADERS = {
    "x-slack-request-timestamp": "1531420618",
    "x-slack-signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
}


def test_slack_documented_example_and_its_five_minutes():
    scheme = Verification(provider="slack")
    secret = ["8f742231b10e8888abcd99yyyzzz85a5"]
    signatures.verify(scheme, SLACK_HEADERS, SLACK_BODY, secret, now=1531420618 + 299)
    with pytest.raises(Unauthorized, match="X-Slack-Request-Timestamp: the timestamp is more than 300 s"):
        signatures.verify(scheme, SLACK_HEADERS, SLACK_BODY, secret, now=1531420618 + 301)


def test_standard_webhooks_documented_example_with_several_signatures():
    scheme = Verification(provider="standard-webhooks")
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        # A signature that is not ours, then the documented one: any may match
        "webhook-signature": "v1,bm9ldHUjKzFob2VudXRob2VodWUzMjRvdWVvdW9ldQo= "
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    secret = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    signatures.verify(scheme, headers, b'{"test": 2432232314}', secret, now=1614265330)
    with pytest.raises(Unauthorized, match="webhook-signature"):
        signatures.verify(
            scheme, {**headers, "webhook-id": "msg_other"}, b'{"test": 2432232314}', secret, now=1614265330
        )


def _stripe_header(secret: str, stamp: int, body: bytes) -> str:
    # As Stripe's documentation describes it (it publishes no fixed example): HMAC-SHA256 of "t.body".
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={'0' * 64},v1={digest},v0=ignored"


def test_stripe_any_v1_matches_within_the_tolerance():
    scheme = Verification(provider="stripe", tolerance_seconds=300)
    body = b'{"id": "evt_1", "type": "invoice.paid"}'
    header = {"stripe-signature": _stripe_header("whsec_test", 1_700_000_000, body)}
    signatures.verify(scheme, header, body, ["whsec_old", "whsec_test"], now=1_700_000_100)
    with pytest.raises(Unauthorized, match="more than 300 s"):
        signatures.verify(scheme, header, body, ["whsec_test"], now=1_700_000_301)
    with pytest.raises(Unauthorized, match="expected t=<timestamp> and v1=<signature>"):
        signatures.verify(scheme, {"stripe-signature": "v1=abc"}, body, ["whsec_test"], now=1_700_000_000)


@pytest.mark.parametrize(("encoding", "algorithm"), [("hex", "sha256"), ("base64", "sha1"), ("hex", "sha512")])
def test_generic_hmac(encoding, algorithm):
    scheme = Verification(provider="hmac", header="X-Signature", algorithm=algorithm, encoding=encoding, prefix="h=")
    body = b'{"ref": "main"}'
    digest = hmac.new(b"s3cret", body, algorithm).digest()
    value = "h=" + (digest.hex() if encoding == "hex" else base64.b64encode(digest).decode())
    signatures.verify(scheme, {"x-signature": value}, body, ["s3cret"], now=0)
    with pytest.raises(Unauthorized, match="X-Signature"):
        signatures.verify(scheme, {"x-signature": value}, body, ["other"], now=0)


def test_hostile_timestamps_and_secrets_are_refused_cleanly():
    body = b"{}"
    for stamp in ("\u00b2", "1" + "0" * 5000, "-1", " "):
        with pytest.raises(Unauthorized, match="X-Slack-Request-Timestamp"):
            headers = {"x-slack-request-timestamp": stamp, "x-slack-signature": "v0=00"}
            signatures.verify(Verification(provider="slack"), headers, body, ["s"], now=0)
        with pytest.raises(Unauthorized, match="Stripe-Signature"):
            signatures.verify(
                Verification(provider="stripe"), {"stripe-signature": f"t={stamp},v1=00"}, body, ["s"], now=0
            )
    headers = {"webhook-id": "m", "webhook-timestamp": "0", "webhook-signature": "v1,AA=="}
    for unusable in (["whsec_"], ["whsec_not base64!"], [""]):
        with pytest.raises(Unavailable):
            signatures.verify(Verification(provider="standard-webhooks"), headers, body, unusable, now=0)


def test_stripe_retries_are_named_by_the_signed_event_id():
    scheme = Verification(provider="stripe")
    payload = {"id": "evt_1"}
    assert signatures.signed_delivery_id(scheme, {}, payload) == "evt_1"
    assert signatures.signed_delivery_id(Verification(provider="github"), {"x-github-delivery": "d"}, payload) is None


# -- firing ----------------------------------------------------------------------------------------

GITHUB_SECRET = "gh-secret"


class Secrets:
    def __init__(self, values: dict[str, list[str]]) -> None:
        self.values = values
        self.reads = 0

    def secrets_for(self, trigger: str, secret_arn: str | None) -> list[str]:
        self.reads += 1
        if trigger not in self.values:
            raise Unavailable(f"trigger {trigger} has no signing secret yet")
        return self.values[trigger]


@pytest.fixture
def world(clocked_world):
    """Triggers over an in-memory store: a GitHub one, a MUXI-style one, a Slack one."""
    return clocked_world[:5]


@pytest.fixture
def clocked_world(telemetry):
    """``world``, and the request service's clock."""
    definitions = {
        "gh": TriggerDefinition.model_validate(
            {
                "name": "gh",
                "verify": {"provider": "github"},
                "when": {"$.action": ["opened"]},
                "parse": {"user_id": "$.sender.login"},
                "template": "Issue ${{ data.issue.title }}",
            }
        ),
        "ticket": TriggerDefinition(name="ticket", template="Ticket: ${{ data.subject }}"),
        "both": TriggerDefinition.model_validate(
            {"name": "both", "verify": {"provider": "github", "allow_client_key": True}, "template": "x ${{ data.a }}"}
        ),
        "slack": TriggerDefinition.model_validate(
            {"name": "slack", "verify": {"provider": "slack"}, "template": "Slack: ${{ data.text }}"}
        ),
        "w": TriggerDefinition.model_validate({"name": "w", "when": {"$.ok": [True]}, "template": "ok"}),
    }
    store, engine = InMemoryStore(), RecordingEngine()
    formation = parse_formation({})
    clock = ManualClock(datetime(2026, 11, 30, tzinfo=UTC))
    timer = FakeTimer()
    requests = RequestService(
        store, engine, formation, clock=clock, sleep=timer.sleep, monotonic=timer.monotonic, telemetry=telemetry
    )
    keys = KeyService(store)
    client_key = keys.create("client").secret
    secrets = Secrets({"gh": [GITHUB_SECRET], "both": [GITHUB_SECRET], "slack": ["slack-secret"]})
    triggers = Triggers(
        definitions, requests, keys, lambda: secrets, clock=lambda: 1_800_000_000.0, telemetry=telemetry
    )
    return triggers, engine, client_key, secrets, store, clock


def _github(body: dict, delivery: str = "d-1", event: str = "issues", secret: str = GITHUB_SECRET) -> TriggerCall:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"x-hub-signature-256": signature, "x-github-delivery": delivery, "x-github-event": event}
    return TriggerCall(body=raw, headers=headers)


ISSUE = {"action": "opened", "issue": {"title": "Crash on start"}, "sender": {"login": "octocat"}}


def test_a_provider_delivery_fires_once_and_its_retry_returns_the_same_request(world):
    triggers, engine, _, _, _ = world
    first = triggers.fire("gh", _github(ISSUE))
    again = triggers.fire("gh", _github(ISSUE))
    # X-GitHub-Delivery is not signed: a replay under a new delivery id (or a user header) is still the same
    replayed = _github(ISSUE, delivery="d-forged")
    replay = triggers.fire("gh", TriggerCall(body=replayed.body, headers=replayed.headers, user_id="mallory"))
    other = triggers.fire("gh", _github({**ISSUE, "issue": {"title": "Another"}}, delivery="d-2"))
    assert isinstance(first, Fired) and isinstance(again, Fired) and isinstance(other, Fired)
    assert isinstance(replay, Fired) and first.signed
    record = first.submission.record
    assert again.submission.record.request_id == record.request_id != other.submission.record.request_id
    assert replay.submission.record.request_key == record.request_key
    # The retry and the replay start no second execution (a still-pending request's start is repeated under
    # the same name, which Step Functions treats as the same execution)
    assert len({name for name, _ in engine.started}) == 2
    assert record.prompt == "Issue Crash on start" and record.trigger == "gh"
    assert (record.key_id, record.user_id, record.processing_mode) == ("trigger:gh", "octocat", "async")
    assert record.mode_reason == "trigger"  # the trigger's default (async unless its definition says)


def test_a_github_form_delivery_carries_its_json_in_payload(world):
    from urllib.parse import urlencode

    triggers, _, _, _, _ = world
    raw = urlencode({"payload": json.dumps(ISSUE)}).encode()
    signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"x-hub-signature-256": signature, "x-github-delivery": "form-1", "x-github-event": "issues"}
    call = TriggerCall(body=raw, headers=headers, content_type="application/x-www-form-urlencoded")
    fired = triggers.fire("gh", call)
    assert isinstance(fired, Fired) and fired.submission.record.prompt == "Issue Crash on start"


@pytest.fixture
def telemetry() -> RecordingTelemetry:
    return RecordingTelemetry()


def test_signature_failures_are_401s_naming_the_header(world, telemetry):
    triggers, engine, client_key, _, _ = world
    with pytest.raises(Unauthorized, match="X-Hub-Signature-256: the signature does not match"):
        triggers.fire("gh", _github(ISSUE, secret="wrong"))
    tampered = _github(ISSUE)
    with pytest.raises(Unauthorized, match="X-Hub-Signature-256"):
        triggers.fire("gh", TriggerCall(body=tampered.body + b" ", headers=tampered.headers))
    # A client key does not stand in for a signature unless the definition allows it
    with pytest.raises(Unauthorized, match=r"missing X-Hub-Signature-256 header.*a client key is not enough"):
        triggers.fire("gh", TriggerCall(body=json.dumps(ISSUE).encode(), headers={"x-muxi-client-key": client_key}))
    allowed = triggers.fire("both", TriggerCall(body=b'{"data": {"a": 1}}', headers={"x-muxi-client-key": client_key}))
    assert isinstance(allowed, Fired) and allowed.submission.record.prompt == "x 1"
    # A provider's body is its data as it is, never MUXI's wrapper (Standard Webhooks bodies have a "data" key)
    with pytest.raises(InvalidData, match=r"data\.a"):
        triggers.fire("both", _github({"data": {"a": 1}}))
    assert engine.started and all(name for name, _ in engine.started)
    # Two signatures failed (a missing one is no signature to reject); the client key's call fired its trigger
    assert telemetry.values("TriggerSignatureRejections") == [1, 1]
    assert [meta["trigger"] for m, meta in telemetry.emitted if "TriggerFires" in m] == ["both"]
    assert telemetry.values("RequestsAccepted") == [1]


def test_the_secret_is_read_only_for_signed_calls(world):
    triggers, _, client_key, secrets, _ = world
    triggers.fire("ticket", TriggerCall(body=b'{"data": {"subject": "hi"}}', headers={"x-muxi-client-key": client_key}))
    with pytest.raises(Unauthorized):
        triggers.fire("gh", TriggerCall(body=b"{}", headers={}))
    assert secrets.reads == 0


def test_events_the_trigger_does_not_want_are_acknowledged_and_ignored(world):
    triggers, engine, _, _, _ = world
    closed = triggers.fire("gh", _github({**ISSUE, "action": "closed"}))
    assert isinstance(closed, Ignored) and "$.action is 'closed'" in closed.reason
    assert isinstance(triggers.fire("gh", _github({"zen": "Keep it simple."}, event="ping")), Handshake)
    assert engine.started == []


def test_slack_url_verification_echoes_the_challenge_after_the_signature(world):
    triggers, engine, _, _, _ = world
    body = b'{"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}'
    stamp = "1800000000"
    signature = "v0=" + hmac.new(b"slack-secret", f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"x-slack-request-timestamp": stamp, "x-slack-signature": signature}
    outcome = triggers.fire("slack", TriggerCall(body=body, headers=headers))
    assert outcome == Handshake("slack", challenge="3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    with pytest.raises(Unauthorized):
        triggers.fire("slack", TriggerCall(body=body, headers={**headers, "x-slack-signature": "v0=00"}))
    # A slash command (a form body) is data too
    form = b"command=%2Fask&text=why+is+the+sky+blue"
    signature = "v0=" + hmac.new(b"slack-secret", f"v0:{stamp}:".encode() + form, hashlib.sha256).hexdigest()
    call = TriggerCall(
        body=form,
        headers={"x-slack-request-timestamp": stamp, "x-slack-signature": signature},
        content_type="application/x-www-form-urlencoded",
    )
    fired = triggers.fire("slack", call)
    assert isinstance(fired, Fired) and fired.submission.record.prompt == "Slack: why is the sky blue"
    assert len(engine.started) == 1


def test_muxi_bodies_modes_and_idempotency(world):
    triggers, engine, client_key, _, _ = world
    headers = {"x-muxi-client-key": client_key}
    wrapped = triggers.fire(
        "ticket", TriggerCall(body=b'{"data": {"subject": "A"}, "session_id": "s-1"}', headers=headers)
    )
    assert isinstance(wrapped, Fired)
    assert wrapped.submission.record.session_id == "s-1" and wrapped.submission.record.processing_mode == "async"
    # MUXI's SDK sends the data unwrapped, with ?async=false (which waits like a sync chat)
    raw = triggers.fire("ticket", TriggerCall(body=b'{"subject": "B"}', headers=headers, async_=False))
    # (nothing runs it here: after the sync wait it falls back to async)
    assert isinstance(raw, Fired) and not raw.submission.finished
    assert raw.submission.record.mode_reason == "fallback" and raw.submission.record.prompt == "Ticket: B"
    # The body's use_async wins over the query
    body = b'{"data": {"subject": "C"}, "use_async": true}'
    forced = triggers.fire("ticket", TriggerCall(body=body, headers=headers, async_=False))
    assert isinstance(forced, Fired) and forced.submission.record.processing_mode == "async"
    # An idempotency key names the request
    keyed = TriggerCall(body=b'{"subject": "D"}', headers=headers, idempotency_key="k-1")
    first, second = triggers.fire("ticket", keyed), triggers.fire("ticket", keyed)
    assert isinstance(first, Fired) and isinstance(second, Fired)
    assert first.submission.record.request_id == second.submission.record.request_id
    assert len({name for name, _ in engine.started}) == 4


def test_when_tells_true_from_one(world):
    triggers, _, client_key, _, _ = world
    headers = {"x-muxi-client-key": client_key}
    assert isinstance(triggers.fire("w", TriggerCall(body=b'{"ok": 1}', headers=headers)), Ignored)
    assert isinstance(triggers.fire("w", TriggerCall(body=b'{"ok": true}', headers=headers)), Fired)


def test_bad_calls_get_clear_4xx(world):
    triggers, _, client_key, _, _ = world
    headers = {"x-muxi-client-key": client_key}
    with pytest.raises(NotFound, match="no trigger named 'nope'"):
        triggers.fire("nope", TriggerCall(body=b"{}", headers=headers))
    with pytest.raises(BadRequest, match="name: must match"):
        triggers.get("../etc")
    with pytest.raises(InvalidData) as missing:
        triggers.fire("ticket", TriggerCall(body=b'{"data": {"topic": "x"}}', headers=headers))
    assert missing.value.details["field"] == "data.subject"
    with pytest.raises(BadRequest, match="body: malformed JSON"):
        triggers.fire("ticket", TriggerCall(body=b"{nope", headers=headers))
    with pytest.raises(BadRequest, match="nested too deeply"):
        triggers.fire("ticket", TriggerCall(body=b"[" * 100_000 + b"]" * 100_000, headers=headers))
    with pytest.raises(BadRequest, match="lone surrogate"):
        triggers.fire("ticket", TriggerCall(body=b'{"subject": "\\ud800"}', headers=headers))
    with pytest.raises(BadRequest, match="UTF-8"):
        triggers.fire("ticket", TriggerCall(body=b'{"subject": "\xff"}', headers=headers))
    with pytest.raises(InvalidData, match="use_async: must be true or false"):
        triggers.fire("ticket", TriggerCall(body=b'{"data": {"subject": "x"}, "use_async": "no"}', headers=headers))
    with pytest.raises(InvalidData, match="renders to"):
        triggers.fire("ticket", TriggerCall(body=json.dumps({"subject": "x" * 40_000}).encode(), headers=headers))
    with pytest.raises(Unauthorized, match="X-Muxi-Client-Key"):
        triggers.fire("ticket", TriggerCall(body=b'{"subject": "x"}', headers={}))


def test_a_user_bound_key_fires_for_its_own_user_only(world):
    _, _, _, _, store = world
    # Given a trigger that reads the user from the event, and a client key bound to bob
    definitions = {"t": TriggerDefinition.model_validate({"name": "t", "parse": {"user_id": "$.who"}, "template": "x"})}
    requests = RequestService(store, RecordingEngine(), parse_formation({}), sleep=FakeTimer().sleep)
    fire = Triggers(definitions, requests, KeyService(store), lambda: Secrets({})).fire
    bob = {"x-muxi-client-key": KeyService(store).create("client", user_id="bob").secret}
    # When the event names alice, the request is still bob's
    fired = fire("t", TriggerCall(body=b'{"data": {"who": "alice"}}', headers=bob))
    assert isinstance(fired, Fired) and fired.submission.record.user_id == "bob"
    # And naming alice in X-Muxi-User-Id is refused
    with pytest.raises(Forbidden, match="X-Muxi-User-Id"):
        fire("t", TriggerCall(body=b'{"data": {"who": "x"}}', headers=bob, user_id="alice"))


@pytest.mark.parametrize("later_hours", [1, 25, 71])
def test_a_providers_retry_long_after_its_delivery_ran_is_acknowledged_and_never_runs_it_again(
    clocked_world, later_hours
):
    # Given a delivery that fired a request which ended, and whose result expired (the provider never saw our 202)
    triggers, engine, _, _, store, clock = clocked_world
    first = triggers.fire("gh", _github(ISSUE))
    assert isinstance(first, Fired)
    clock.advance(later_hours * 3600)  # Stripe retries for 3 days, Svix for about 28 h: past the 24 h idempotency
    store.items[first.submission.record.request_key].update(status="completed", expires_at=clock().timestamp() - 1)
    # When the provider retries the same signed delivery, it is acknowledged (a 200 it stops on), not a 409
    retry = triggers.fire("gh", _github(ISSUE))
    assert isinstance(retry, Ignored) and "already handled" in retry.reason
    # And the agent never ran twice
    assert len(engine.started) == 1
