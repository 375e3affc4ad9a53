"""Delivering one webhook event: build, sign, send to the checked address, and decide what happens next.

The queue gives at-least-once delivery; this module decides per attempt:
- 2xx: delivered;
- network errors, timeouts, 408, 429 (``Retry-After`` honoured) and 5xx: retried with exponential backoff
  and jitter, by delaying the message's visibility (no sleeping in Lambda), ``webhook_retries`` times;
- anything else (other 4xx, redirects, an unsafe destination): given up at once;
- given up or out of retries: dead-lettered with the reason, and the request record says so.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from asyncagents.config import FormationConfig
from asyncagents.domain.destinations import (
    DestinationPolicy,
    Resolver,
    UnresolvedDestination,
    UnsafeDestination,
    check_destination,
    system_resolver,
)
from asyncagents.domain.ports import NoticeTopic, RequestStore, SentNotices, SigningSecretSource, WebhookTransport
from asyncagents.domain.records import RequestRecord, bare_request_key
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import iso, utc_now
from asyncagents.domain.webhooks.payload import encode, event_time_of, render, snapshot_of
from asyncagents.domain.webhooks.signing import SIGNATURE_HEADER, sign, standard_webhook_headers
from asyncagents.model_base import LazyModel

logger = logging.getLogger(__name__)

DELIVERY_ID_HEADER = "X-Muxi-Delivery-Id"
USER_AGENT = "asyncagents-webhooks/1"
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))


class WebhookMessage(LazyModel):
    """What the queue carries: a reference to the event, never the result itself (no size limit to hit)."""

    # Messages queued (or dead-lettered) by release 0.1 name the request "REQ#<key>": still delivered.
    request_key: Annotated[str, BeforeValidator(bare_request_key)]
    status: str
    delivery_id: str
    event_time: str
    # The event's own copy of where it goes and what it says (see ``payload.snapshot_of``): a delivery never
    # depends on the request record, which retention removes long before three days of retries end.
    webhook_url: str | None = None
    snapshot: dict[str, Any] | None = None
    # Which request under that key (an id may be reused once its request has expired).
    created_at: str | None = None
    # The API key that made the request: a key with a webhook secret of its own signs its requests' webhooks.
    key_id: str | None = None
    # "webhook": the signed event to the request's URL; "slack": the formation's notice to a Slack incoming webhook.
    channel: Literal["webhook", "slack", "email"] = "webhook"


@dataclass(frozen=True)
class Outcome:
    kind: Literal["delivered", "retry", "dead", "skipped"]
    reason: str = ""
    delay_seconds: int = 0


class WebhookDispatcher:
    """Delivers webhook events for request records. Storage, transport, secrets and DNS are injected."""

    def __init__(
        self,
        store: RequestStore,
        transport: WebhookTransport,
        signing_secrets: SigningSecretSource,
        formation: FormationConfig,
        *,
        resolver: Resolver = system_resolver,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[float, float], float] = random.uniform,
        artifact_url: Callable[[str], str] | None = None,
        stored_text: Callable[[str], str] | None = None,
        key_secrets: Callable[[str], str | None] | None = None,
        notice_topic: NoticeTopic | None = None,
        sent_notices: SentNotices | None = None,
    ) -> None:
        self._notice_topic = notice_topic
        self._sent_notices = sent_notices
        self._key_secrets = key_secrets
        self._artifact_url = artifact_url
        self._stored_text = stored_text
        self._store = store
        self._transport = transport
        self._secrets = signing_secrets
        self._settings = formation.async_
        self._notice_link = formation.notifications.result_link
        self._policy = DestinationPolicy(**formation.async_.webhook_security.model_dump())
        self._resolver = resolver
        self._clock = clock
        self._jitter = jitter

    def _signing_secrets(self, key_id: str | None) -> list[str]:
        """The key's own secret when it has one (its receivers verify with it alone), else the stack's."""
        own = self._key_secrets(key_id) if self._key_secrets is not None and key_id else None
        return [own] if own else list(self._secrets())

    def deliver(self, message: WebhookMessage, attempt: int, *, first_received_at: float | None = None) -> Outcome:
        """Attempt ``attempt`` (1-based) of one event, first received at ``first_received_at`` (epoch seconds;
        the retry window counts from it). Never raises for a delivery failure."""
        record = self._store.get(message.request_key)
        if record is not None and message.created_at and record.created_at != message.created_at:
            record = None  # another request under the same id now: the event's own is gone
        skipped = _moved_on(record, message)
        if skipped is not None:
            return skipped
        url = message.webhook_url or (record.webhook_url if record else None)
        if message.channel == "email":
            url = "sns:"  # the stack's notice topic, not an address of the request's
        if not url:
            return Outcome("skipped", "the request has no webhook URL")
        if message.snapshot is not None:
            snapshot = message.snapshot
        elif record is not None:  # an event queued before events carried their body
            snapshot = snapshot_of(record)
        else:
            return Outcome("dead", "the request record no longer exists")
        elapsed = max(0.0, self._clock().timestamp() - first_received_at) if first_received_at else 0.0
        try:
            key_id = message.key_id or (record.key_id if record else None)
            outcome = self._attempt(url, snapshot, message, attempt, elapsed, key_id)
        except Exception as error:  # a bug or an unreadable secret: retried, then dead-lettered, and on record
            logger.exception("webhook %s failed unexpectedly", message.delivery_id)
            outcome = self._next(f"internal error ({type(error).__name__})", attempt, elapsed, None)
        if record is not None and message.channel == "webhook":  # the record's bookkeeping is its webhook's
            self._record(record, message, attempt, outcome)
        return outcome

    def _attempt(
        self,
        url: str,
        snapshot: dict[str, Any],
        message: WebhookMessage,
        attempt: int,
        elapsed: float,
        key_id: str | None,
    ) -> Outcome:
        if message.channel != "webhook":
            return self._notice(url, snapshot, message, attempt, elapsed)
        try:
            destination = check_destination(url, self._policy, resolver=self._resolver)
        except UnresolvedDestination as unresolved:  # DNS may be back at the next attempt
            return self._next(unresolved.message, attempt, elapsed, None)
        except UnsafeDestination as refused:
            return Outcome("dead", refused.message)
        body = encode(render(snapshot, self._artifact_url, self._stored_text))
        secrets = self._signing_secrets(key_id)
        now = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(body, secrets, timestamp=now),
            DELIVERY_ID_HEADER: message.delivery_id,
            "X-Muxi-Event": message.status,
            "X-Muxi-Attempt": str(attempt),
        }
        if self._settings.webhook_standard_headers:
            headers.update(standard_webhook_headers(body, message.delivery_id, now, secrets))
        result = self._transport.post(destination, body, headers, self._settings.webhook_timeout)
        return self._sent(result, attempt, elapsed)

    def _notice(
        self, url: str, snapshot: dict[str, Any], message: WebhookMessage, attempt: int, elapsed: float
    ) -> Outcome:
        # A notice: the stream or the queue may bring it again after it was sent, and a person reading Slack or
        # mail cannot drop a repeat as a webhook receiver does (by its delivery id).
        # Of its deliveries running at once (both in one batch, on the sender's threads), one claims and sends it.
        sent = self._sent_notices
        held = sent.claim(message.delivery_id) if sent is not None else None
        if held == "sent":
            return Outcome("delivered", "sent already")
        if held is not None:  # another delivery sends it now (or was stopped doing so: its claim lapses): ask later
            return self._next("being sent by another delivery of it", attempt, elapsed, None)
        try:
            if message.channel == "email":
                outcome = self._mail(snapshot, attempt, elapsed)
            else:
                outcome = self._slack(url, snapshot, attempt, elapsed)
        except BaseException:
            if sent is not None:
                sent.release(message.delivery_id)
            raise
        if sent is not None:
            if outcome.kind == "delivered":
                sent.mark_sent(message.delivery_id)
            else:  # retried later, or dead-lettered (and perhaps redriven): its next delivery claims it again
                sent.release(message.delivery_id)
        return outcome

    def _slack(self, url: str, snapshot: dict[str, Any], attempt: int, elapsed: float) -> Outcome:
        from asyncagents.domain.webhooks.notices import slack_body

        try:
            destination = check_destination(url, self._policy, resolver=self._resolver)
        except UnresolvedDestination as unresolved:  # DNS may be back at the next attempt
            return self._next(unresolved.message, attempt, elapsed, None)
        except UnsafeDestination as refused:
            return Outcome("dead", refused.message)
        body = encode(slack_body(render(snapshot, None, self._stored_text), self._notice_link))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        return self._sent(
            self._transport.post(destination, body, headers, self._settings.webhook_timeout), attempt, elapsed
        )

    def _mail(self, snapshot: dict[str, Any], attempt: int, elapsed: float) -> Outcome:
        from asyncagents.domain.webhooks.notices import email_notice

        if self._notice_topic is None:
            return Outcome("dead", "no notice topic: notifications.email needs the stack deployed with it")
        subject, text = email_notice(render(snapshot, None, self._stored_text), self._notice_link)
        try:
            self._notice_topic.publish(subject, text)
        except Exception as error:  # SNS throttled or failed: retried as a webhook would be
            return self._next(f"SNS: {type(error).__name__}", attempt, elapsed, None)
        return Outcome("delivered")

    def _sent(self, result: Any, attempt: int, elapsed: float) -> Outcome:
        if result.status_code is not None and 200 <= result.status_code < 300:
            return Outcome("delivered")
        retryable = result.status_code is None or result.status_code in RETRYABLE_STATUSES
        reason = result.error or f"HTTP {result.status_code}"
        if result.status_code is not None and 300 <= result.status_code < 400:
            reason += " (redirects are not followed)"
        if not retryable:
            return Outcome("dead", f"{reason}: not retried")
        return self._next(reason, attempt, elapsed, result.retry_after)

    def _next(self, reason: str, attempt: int, elapsed: float, retry_after: float | None) -> Outcome:
        """Retry later, or give up: after ``webhook_retries`` retries, or when the next attempt would fall
        outside the retry window (``webhook_retry_window_seconds`` from the first attempt)."""
        if attempt > self._settings.webhook_retries:
            return Outcome("dead", f"{reason}: gave up after {attempt} attempts")
        delay = self._backoff(attempt, retry_after)
        window = self._settings.webhook_retry_window_seconds
        if elapsed + delay > window:
            return Outcome("dead", f"{reason}: gave up after {attempt} attempts in {elapsed:.0f} s (window {window} s)")
        return Outcome("retry", reason, delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> int:
        """Exponential backoff with jitter (half fixed, half random), at least ``Retry-After``."""
        ceiling = min(
            self._settings.webhook_max_backoff_seconds,
            self._settings.webhook_backoff_seconds * 2 ** (attempt - 1),
        )
        delay = self._jitter(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._settings.webhook_max_backoff_seconds))
        return max(1, round(delay))

    def _record(self, record: RequestRecord, message: WebhookMessage, attempt: int, outcome: Outcome) -> None:
        """The delivery outcome, on the request's webhook bookkeeping (never the record itself: its status and result
        stay as they are, and the record's stream sees no change)."""
        state = {"delivered": "delivered", "retry": "retrying", "dead": "failed", "skipped": "skipped"}[outcome.kind]
        fields: dict[str, Any] = {
            "webhook_status": state,
            "webhook_attempts": attempt,
            "webhook_event": message.status,
            "webhook_delivery_id": message.delivery_id,
            "webhook_last_error": outcome.reason or None,
            "webhook_updated_at": iso(self._clock()),
        }
        try:
            self._store.set_webhook_state(record, {k: v for k, v in fields.items() if v is not None})
        except Exception:  # the delivery happened (or not) either way; the note is best effort
            logger.exception("could not record the webhook outcome of %s", record.request_id)


def _moved_on(record: RequestRecord | None, message: WebhookMessage) -> Outcome | None:
    """An event that no longer stands: its request moved on to another status (each status has its own event;
    a redriven failure is no failure any more), or the question it asked was answered. A request whose record
    is gone (retention passed) moved nowhere: its event is still delivered."""
    if record is None:
        return None
    if record.status.value != message.status:
        return Outcome("skipped", f"the request is now {record.status.value}")
    if record.status is Status.AWAITING_CLARIFICATION and event_time_of(record) != message.event_time:
        return Outcome("skipped", "that question was answered; the request waits on another one")
    return None


def dead_letter_body(message: WebhookMessage, outcome: Outcome, attempts: int) -> str:
    return json.dumps({**message.model_dump(), "reason": outcome.reason, "attempts": attempts})
