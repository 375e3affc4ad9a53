"""The client-facing side of the request lifecycle: submit, read, list, cancel, answer and redrive.

``RequestService`` is the one entry the API uses; each use case lives in its own module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from asyncagents.config import MAX_RESULT_RETENTION_SECONDS, FormationConfig
from asyncagents.domain.auth import Principal
from asyncagents.domain.breaker import ModelBreaker
from asyncagents.domain.destinations import Resolver, system_resolver
from asyncagents.domain.estimator import Estimator
from asyncagents.domain.lifecycle import Endings, checkpoint_ttl
from asyncagents.domain.limits import RequestLimits
from asyncagents.domain.ports import ArtifactSink, RequestStore, WorkflowEngine
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.requests.answers import Answers
from asyncagents.domain.requests.follow import EventPage, Follow
from asyncagents.domain.requests.operations import Lookup, Operations
from asyncagents.domain.requests.submit import NewRequest, Submission, Submissions
from asyncagents.domain.statuses import Status
from asyncagents.domain.telemetry import NO_TELEMETRY, Telemetry
from asyncagents.domain.times import parse_iso, utc_now

if TYPE_CHECKING:  # only for annotations: the caps' code loads when a formation has caps
    from asyncagents.domain.spend import SpendCaps

__all__ = ["EventPage", "NewRequest", "RequestService", "Submission"]


class RequestService:
    """Accepts, reads, lists, cancels, answers and redrives requests. Storage, the workflow engine, the
    estimator, clocks and DNS are injected."""

    def __init__(
        self,
        store: RequestStore,
        engine: WorkflowEngine,
        formation: FormationConfig,
        *,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        resolver: Resolver = system_resolver,
        estimator: Estimator | None = None,
        limits: RequestLimits | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
        breaker: ModelBreaker | None = None,
        spend: SpendCaps | None = None,
        artifacts: ArtifactSink | None = None,
    ) -> None:
        self._breaker = breaker
        endings = Endings(store, retention_seconds=formation.async_.result_retention_seconds, clock=clock)
        self._lookup = Lookup(store, clock)
        self._monotonic = monotonic
        self._submissions = Submissions(
            store,
            engine,
            formation,
            endings,
            estimator or Estimator(None),
            clock=clock,
            sleep=sleep,
            monotonic=monotonic,
            resolver=resolver,
            limits=limits,
            telemetry=telemetry,
            spend=spend if spend is not None and spend.capped else None,
            artifacts=artifacts,
        )
        timeouts = formation.overlord.workflow.timeouts
        self._operations = Operations(
            store,
            engine,
            self._lookup,
            endings,
            clock,
            # As the plan's own ttl: past the longest retention its record may get (a little storage).
            kept_until=lambda now: checkpoint_ttl(
                now, workflow_timeout=timeouts.workflow_timeout, retention_seconds=MAX_RESULT_RETENTION_SECONDS
            ),
            # The bucket forgets a request's message and long outputs bucket_days after they were stored (its
            # creation at the soonest): a new run must end before.
            redrivable_until=lambda record: (
                parse_iso(record.created_at) + timedelta(days=formation.bucket_days, seconds=-timeouts.workflow_timeout)
            ),
        )
        self._answers = Answers(store, engine, self._lookup, clock)
        self._follow = Follow(self._lookup, sleep=sleep, monotonic=monotonic)

    def submit(
        self, principal: Principal, new: NewRequest, *, idempotency_key: str | None = None, limited: bool = True
    ) -> Submission:
        if self._breaker is not None and limited:  # a schedule's slot waits in its workflow instead
            self._breaker.admit()
        return self._submissions.submit(principal, new, idempotency_key=idempotency_key, limited=limited)

    def check_webhook_url(self, url: str) -> None:
        """``BadRequest`` naming the reason when webhooks may not go to ``url``."""
        self._submissions.check_webhook_url(url)

    def get(self, principal: Principal, request_id: str) -> RequestRecord:
        return self._lookup.get(principal, request_id)

    def list(
        self, principal: Principal, *, limit: int, cursor: str | None, status: Status | None
    ) -> tuple[list[RequestRecord], str | None]:
        return self._lookup.list(principal, limit=limit, cursor=cursor, status=status)

    def cancel(self, principal: Principal, request_id: str) -> tuple[RequestRecord, bool]:
        return self._operations.cancel(principal, request_id)

    def answer(
        self, principal: Principal, request_id: str, answer: str, *, clarification_id: str | None = None
    ) -> RequestRecord:
        return self._answers.answer(principal, request_id, answer, clarification_id=clarification_id)

    def redrive(self, principal: Principal, request_id: str) -> RequestRecord:
        return self._operations.redrive(principal, request_id)

    def events(self, principal: Principal, request_id: str, *, after: int, wait_seconds: float = 0) -> EventPage:
        """The request's events after ``after``; with ``wait_seconds``, a long poll for the next ones."""
        if wait_seconds > 0:
            return self._follow.wait(principal, request_id, after=after, seconds=wait_seconds)
        return self._follow.page(principal, request_id, after=after)

    def follow(
        self,
        principal: Principal,
        request_id: str,
        *,
        after: int,
        deadline: float | None = None,
        heartbeat_seconds: float | None = None,
        first: EventPage | None = None,
    ) -> Iterator[EventPage]:
        """The request's events as they come, page by page, until it ends or ``deadline`` (``Follow.follow``)."""
        return self._follow.follow(
            principal, request_id, after=after, deadline=deadline, heartbeat_seconds=heartbeat_seconds, first=first
        )

    def monotonic(self) -> float:
        """The clock deadlines given to ``follow`` are read on."""
        return self._monotonic()
