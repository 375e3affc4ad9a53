"""Accepting a request: decide sync or async, record it (a conditional put), start its workflow, and for a
sync request wait a while for its answer."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from asyncagents.config import AsyncMode, FormationConfig
from asyncagents.domain.auth import Principal
from asyncagents.domain.destinations import DestinationPolicy, Resolver, check_destination
from asyncagents.domain.errors import Conflict, StaleWrite, TooManyRequests, Unavailable
from asyncagents.domain.estimator import Estimate, Estimator
from asyncagents.domain.lifecycle import Endings
from asyncagents.domain.limits import RequestLimits
from asyncagents.domain.messages import in_bucket, message_fields
from asyncagents.domain.ports import ArtifactSink, RequestStore, WorkflowEngine
from asyncagents.domain.records import RequestRecord, execution_name_for, fingerprint_of, request_key, same_request
from asyncagents.domain.statuses import Status, sources_of
from asyncagents.domain.telemetry import COUNT, NO_TELEMETRY, REQUESTS_THROTTLED, Telemetry, request_accepted
from asyncagents.domain.times import iso

if TYPE_CHECKING:  # only for annotations: the caps' code loads when a formation has caps
    from asyncagents.domain.spend import SpendCaps

logger = logging.getLogger(__name__)

# Bytes, not characters: the record holds the message, its plan and its answer within DynamoDB's 400 KB.
MAX_MESSAGE_BYTES = 32 * 1024
# How long a trigger's delivery (or idempotency key) stays taken, at least: the longest a provider retries one.
TRIGGER_NAMES_KEPT_SECONDS = 3 * 86_400


@dataclass(frozen=True)
class NewRequest:
    """What a client asks for (``POST /v1/chat``, already validated at the edge). ``async_`` forces the
    mode when set; ``request_id`` is the client's own id for the request."""

    message: str
    async_: bool | None = None
    threshold_seconds: float | None = None
    webhook_url: str | None = None
    request_id: str | None = None
    session_id: str | None = None
    trigger: str | None = None  # the trigger that fired it, if one did
    schedule: str | None = None  # the scheduled job that made it, if one did
    forced_by: str = "forced"  # why ``async_`` is set: the caller ("forced"), a trigger's default, a schedule


@dataclass(frozen=True)
class Submission:
    """The outcome of a submission: the record, and whether the answer is the finished request."""

    record: RequestRecord
    finished: bool


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def idempotency_request_id(idempotency_key: str) -> str:
    """The request id an idempotency key stands for: stable, and not the key itself."""
    return "req_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def decide_mode(new: NewRequest, formation: FormationConfig, estimate: Estimate) -> tuple[str, str]:
    """Sync or async, and why: ``forced`` (the request's ``async``), ``trigger`` (a trigger's default),
    ``formation`` (mode sync/async),
    ``webhook`` (a webhook URL in auto mode) or ``estimate`` (auto mode: estimate against the threshold)."""
    if new.async_ is not None:
        return ("async" if new.async_ else "sync"), new.forced_by
    settings = formation.async_
    if settings.mode is AsyncMode.SYNC:
        return "sync", "formation"
    if settings.mode is AsyncMode.ASYNC:
        return "async", "formation"
    if new.webhook_url or settings.webhook_url:
        return "async", "webhook"
    threshold = new.threshold_seconds or settings.threshold_seconds
    return ("async" if estimate.seconds >= threshold else "sync"), "estimate"


class Submissions:
    """Accepts requests. Storage, the engine, the estimator, clocks and DNS are injected."""

    def __init__(
        self,
        store: RequestStore,
        engine: WorkflowEngine,
        formation: FormationConfig,
        endings: Endings,
        estimator: Estimator,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        monotonic: Callable[[], float],
        resolver: Resolver,
        limits: RequestLimits | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
        spend: SpendCaps | None = None,
        artifacts: ArtifactSink | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._spend = spend
        self._limits = limits
        self._telemetry = telemetry
        self._engine = engine
        self._formation = formation
        self._endings = endings
        self._estimator = estimator
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._resolver = resolver
        self._destination_policy = DestinationPolicy(**formation.async_.webhook_security.model_dump())

    def check_webhook_url(self, url: str) -> None:
        """``BadRequest`` when webhooks may not go to ``url`` (the formation's ``webhook_security``)."""
        check_destination(url, self._destination_policy, resolver=self._resolver)

    def submit(
        self, principal: Principal, new: NewRequest, *, idempotency_key: str | None = None, limited: bool = True
    ) -> Submission:
        """Record the request (conditional put), start its workflow, and for sync requests wait a while.

        A ``limited`` submission counts against its key's limits (``domain.limits``; past one it is refused with
        ``TooManyRequests``, and nothing is recorded); scheduled runs are not limited.

        A ``request_id`` the same user already used returns that request when the body is the same
        (re-starting its workflow if the first accept never got that far) and is a conflict otherwise.
        Without a ``request_id``, an idempotency key (``X-Muxi-Idempotency-Key``) names the request the
        same way, so a client retrying a POST gets the request it already made.
        """
        if new.webhook_url:
            self.check_webhook_url(new.webhook_url)
        limits = self._limits if limited else None
        if limits is not None:
            with self._counting_refusals():
                limits.count_request(principal.key_id, principal.limits)
        request_id = new.request_id or (
            idempotency_request_id(idempotency_key) if idempotency_key else new_request_id()
        )
        key = request_key(principal.key_id, principal.user_id, request_id)
        estimate = self._estimator.estimate(self._formation.formation_id, new.message)
        mode, reason = decide_mode(new, self._formation, estimate)
        fingerprint = fingerprint_of(
            {
                "message": new.message,
                "session_id": new.session_id,
                "webhook_url": new.webhook_url,
                "async": new.async_,
                "threshold_seconds": new.threshold_seconds,
            }
        )
        now = self._clock()
        # Derived from the record key and its creation: a retried accept reuses the stored name.
        execution_name = execution_name_for(key, now)
        fields = {
            "request_key": key,
            "request_id": request_id,
            "key_id": principal.key_id,
            "user_id": principal.user_id,
            "status": Status.PENDING.value,
            "fingerprint": fingerprint,
            "session_id": new.session_id,
            "trigger": new.trigger,
            "schedule": new.schedule,
            "webhook_url": new.webhook_url or self._formation.async_.webhook_url,
            "formation_id": self._formation.formation_id,
            "processing_mode": mode,
            "mode_reason": reason,
            # Every write of the record pays for its size: what the defaults say is not stored.
            "estimate": estimate.model_dump(exclude_defaults=True),
            "execution_name": execution_name,
            "created_at": iso(now),
            "total_steps": 0,
            "completed_steps": 0,
            "status_message": "Request accepted",
            "questions": {},
            "questions_version": 0,
        }
        if self._spend is not None and limited:  # a schedule's slot runs, and its first call meets the cap
            try:
                with self._counting_refusals():
                    self._spend.admit(principal.key_id)
            except TooManyRequests:
                # A repeat of a request it already accepted (named by its id or idempotency key) is its own.
                earlier = self._store.get(key) if new.request_id or idempotency_key else None
                if earlier is None or earlier.is_expired(now):
                    raise
                return self._resubmitted(earlier, fingerprint)
        if limits is not None:
            # A repeat of an active request holds its slot already.
            with self._counting_refusals():
                limits.claim_active(principal.key_id, key, principal.limits)
        try:
            # A request its client named (its id, an idempotency key) keeps the name for the idempotency window.
            named = bool(new.request_id or idempotency_key)
            remembered_until = now.timestamp() + self._name_kept_seconds(new) if named else None
            # A repeat of a named request that is still kept is that request (or a conflict): its message is not
            # stored again (a retry must not fail on the bucket, nor a conflicting body leave an object behind).
            existing = self._store.get(key) if named and in_bucket(self._artifacts, new.message) else None
            if existing is None or existing.is_expired(now):
                fields.update(message_fields(self._artifacts, key, fingerprint, new.message))  # before the record
                existing = self._store.create(fields, now_epoch=now.timestamp(), remembered_until=remembered_until)
        except BaseException:
            if limits is not None:
                limits.release_active(principal.key_id, key)
            raise
        if existing is not None:
            if limits is not None and existing.status.is_terminal:
                limits.release_active(principal.key_id, key)  # its slot was released when it ended
            return self._resubmitted(existing, fingerprint)
        record = RequestRecord.model_validate(fields)
        self._telemetry.emit(request_accepted(), metadata={"request_id": request_id})
        self._start(record, named=named)
        if mode != "sync":
            return Submission(record=record, finished=False)
        if self._limits is None:
            return self._wait(record)
        with self._limits.sync_wait(key, self._formation.async_.sync_wait_seconds) as may_wait:
            if may_wait:
                return self._wait(record)
        return self._go_async(record, reason="busy")

    def _name_kept_seconds(self, new: NewRequest) -> int:
        """How long a named request's name stays taken: the idempotency window, and for a trigger's at least as long
        as a provider retries a delivery (Stripe: 3 days), so that one is never run twice."""
        kept = self._formation.async_.idempotency_seconds
        return max(kept, TRIGGER_NAMES_KEPT_SECONDS) if new.trigger else kept

    @contextmanager
    def _counting_refusals(self) -> Iterator[None]:
        """A request a key's limits refused (429) is counted."""
        try:
            yield
        except TooManyRequests:
            self._telemetry.emit({REQUESTS_THROTTLED: (1, COUNT)})
            raise

    def _start(self, record: RequestRecord, *, named: bool) -> None:
        try:
            self._engine.start(record.execution_name, {"request_key": record.request_key})
        except Exception as error:
            logger.exception("could not start the workflow of %s", record.request_id)
            if named:
                # Its client sends it again under the same name (a provider's retry of a delivery, a schedule's slot,
                # a client's request_id: none can pick another), which starts it (``_resubmitted``); the sweeper does
                # otherwise, after its grace period. Failed, it would never run.
                raise Unavailable(
                    f"request {record.request_id} is accepted but its workflow could not be started yet; send it again "
                    "as it was, or it starts within minutes"
                ) from error
            # Never leave an accepted request pending with nothing behind it: its client was told to send it again
            # under a new id. (If the call failed after all but the execution started, its Plan wins the race below
            # and the request goes on.)
            failure = {
                "type": "internal_error",
                "message": "the workflow could not be started; submit again with a new request_id",
                "retryable": True,
            }
            try:
                self._endings.end(
                    record,
                    Status.FAILED,
                    {"error": failure, "status_message": "Failed to start"},
                    allowed_from={Status.PENDING},
                )
            except StaleWrite:
                return  # the execution did start and picked the request up
            raise

    def _resubmitted(self, existing: RequestRecord, fingerprint: str) -> Submission:
        if not same_request(existing.fingerprint, fingerprint):
            raise Conflict(
                f"request_id {existing.request_id} was already used with a different body",
                details={"field": "request_id", "request_id": existing.request_id},
            )
        if existing.status is Status.PENDING:
            try:
                self._engine.start(existing.execution_name, {"request_key": existing.request_key})
            except Exception as error:
                logger.exception("could not start the workflow of %s", existing.request_id)
                raise Unavailable(
                    f"request {existing.request_id} is accepted but its workflow could not be started yet; send it "
                    "again as it was, or it starts within minutes"
                ) from error
        return Submission(record=existing, finished=existing.status.is_terminal)

    def _wait(self, record: RequestRecord) -> Submission:
        """Poll the record until it is terminal or the sync wait ends; then fall back to the 202 answer."""
        deadline = self._monotonic() + self._formation.async_.sync_wait_seconds
        interval = 0.05
        latest = record
        while self._monotonic() < deadline:
            self._sleep(min(interval, max(0.0, deadline - self._monotonic())))
            interval = min(interval * 1.5, 1.0)
            latest = self._store.get(record.request_key) or latest
            if latest.status.is_terminal:
                return Submission(record=latest, finished=True)
        return self._go_async(latest, reason="fallback")

    def _go_async(self, latest: RequestRecord, *, reason: str) -> Submission:
        """A sync request that answers 202 after all: ``fallback`` when its wait ended, ``busy`` when no wait was
        free (``limits.max_sync_waits``)."""
        try:
            gone_async = self._store.set_fields(
                latest.request_key,
                {"processing_mode": "async", "mode_reason": reason},
                only_in=sources_of(Status.COMPLETED) | {Status.PENDING},
            )
        except StaleWrite as stale:  # it finished just now: answer with the result after all
            current = stale.details.get("current")
            return Submission(record=current or latest, finished=current is not None)
        return Submission(record=gone_async, finished=False)
