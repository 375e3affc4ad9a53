"""The client-facing side of the request lifecycle: accept, read, list and cancel requests."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncagents.api.schemas import REQUEST_ID_PATTERN, ChatRequest
from asyncagents.config import AsyncMode, FormationConfig
from asyncagents.domain.destinations import DestinationPolicy, Resolver, check_destination, system_resolver
from asyncagents.domain.errors import Conflict, NotFound, StaleWrite, Unavailable
from asyncagents.domain.estimator import Estimate, Estimator
from asyncagents.domain.lifecycle import terminal_fields
from asyncagents.domain.ports import RequestStore, WorkflowEngine
from asyncagents.domain.questions import closing_fields
from asyncagents.domain.records import (
    Clarification,
    Question,
    RequestRecord,
    Status,
    fingerprint_of,
    iso,
    owner_of,
    record_key,
    sources_of,
    utc_now,
)

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_ANSWER_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key (by id, never the secret) and the end user it acts for."""

    key_id: str
    user_id: str
    kind: str = "client"


@dataclass(frozen=True)
class Submission:
    """The outcome of ``POST /v1/chat``: the record, and whether the answer is the finished request."""

    record: RequestRecord
    finished: bool


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def idempotency_request_id(idempotency_key: str) -> str:
    """The request id an idempotency key stands for: stable, and not the key itself."""
    return "req_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def decide_mode(chat: ChatRequest, formation: FormationConfig, estimate: Estimate) -> tuple[str, str]:
    """Sync or async, and why: ``forced`` (the request's ``async``), ``formation`` (mode sync/async),
    ``webhook`` (a webhook URL in auto mode) or ``estimate`` (auto mode: estimate against the threshold)."""
    if chat.async_ is not None:
        return ("async" if chat.async_ else "sync"), "forced"
    settings = formation.async_
    if settings.mode is AsyncMode.SYNC:
        return "sync", "formation"
    if settings.mode is AsyncMode.ASYNC:
        return "async", "formation"
    if chat.webhook_url or settings.webhook_url:
        return "async", "webhook"
    threshold = chat.threshold_seconds or settings.threshold_seconds
    return ("async" if estimate.seconds >= threshold else "sync"), "estimate"


def accepted_body(record: RequestRecord, webhook_url: str | None) -> dict[str, Any]:
    """The 202 answer of seeds/000: polling delivery with a poll URL, or webhook delivery with the
    estimated time; ``estimated_seconds`` always."""
    status = record.status.value if record.status.is_terminal else Status.PROCESSING.value
    body: dict[str, Any] = {"request_id": record.request_id, "status": status}
    body["delivery"] = "webhook" if webhook_url else "polling"
    body["poll_url"] = poll_url(record.request_id)
    if record.estimate:
        estimate = Estimate.model_validate(record.estimate)
        if webhook_url:
            body["estimated_time"] = estimate.range_text()
        body["estimated_seconds"] = estimate.seconds
    return body


def poll_url(request_id: str) -> str:
    return f"/v1/requests/{request_id}"


class _NoHistory:
    """History for an estimator that has none (unit tests, tools)."""

    def get_history(self, formation_id: str, kind: str) -> dict[str, Any] | None:
        return None

    def add_history(self, formation_id: str, kind: str, log_ratio: float) -> None:
        return None


class RequestService:
    """Accepts, reads, lists and cancels requests. Storage and the workflow engine are injected."""

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
    ) -> None:
        self._estimator = estimator or Estimator(_NoHistory())
        self._destination_policy = DestinationPolicy(**formation.async_.webhook_security.model_dump())
        self._resolver = resolver
        self._store = store
        self._engine = engine
        self._formation = formation
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic

    def submit(self, principal: Principal, chat: ChatRequest, *, idempotency_key: str | None = None) -> Submission:
        """Record the request (conditional put), start its workflow, and for sync requests wait a while.

        A ``request_id`` the same user already used returns that request when the body is the same
        (re-starting its workflow if the first accept never got that far) and is a conflict otherwise.
        Without a ``request_id``, an idempotency key (``X-Muxi-Idempotency-Key``) names the request the
        same way, so a client retrying a POST gets the request it already made.
        """
        if chat.webhook_url:
            check_destination(chat.webhook_url, self._destination_policy, resolver=self._resolver)
        request_id = chat.request_id or (
            idempotency_request_id(idempotency_key) if idempotency_key else new_request_id()
        )
        pk = record_key(principal.key_id, principal.user_id, request_id)
        estimate = self._estimator.estimate(self._formation.formation_id, chat.message)
        mode, reason = decide_mode(chat, self._formation, estimate)
        fingerprint = fingerprint_of(
            {
                "message": chat.message,
                "session_id": chat.session_id,
                "webhook_url": chat.webhook_url,
                "async": chat.async_,
                "threshold_seconds": chat.threshold_seconds,
            }
        )
        now = self._clock()
        execution_name = f"{pk.removeprefix('REQ#')}-{int(now.timestamp() * 1000)}"
        fields = {
            "pk": pk,
            "request_id": request_id,
            "key_id": principal.key_id,
            "user_id": principal.user_id,
            "owner": owner_of(principal.key_id, principal.user_id),
            "status": Status.PENDING.value,
            "prompt": chat.message,
            "fingerprint": fingerprint,
            "session_id": chat.session_id,
            "webhook_url": chat.webhook_url or self._formation.async_.webhook_url,
            "formation_id": self._formation.formation_id,
            "processing_mode": mode,
            "mode_reason": reason,
            "estimate": estimate.model_dump(),
            # Derived from the record key and its creation: a retried accept reuses the stored name.
            "execution_name": execution_name,
            "lineage": execution_name,
            "created_at": iso(now),
            "total_steps": 0,
            "completed_steps": 0,
            "status_message": "Request accepted",
            "questions": {},
            "questions_version": 0,
        }
        existing = self._store.create(fields, now_epoch=now.timestamp())
        if existing is not None:
            return self._resubmitted(existing, fingerprint)
        record = RequestRecord.model_validate(fields)
        self._start(record)
        if mode == "sync":
            return self._wait(record)
        return Submission(record=record, finished=False)

    def get(self, principal: Principal, request_id: str) -> RequestRecord:
        """The caller's request; unknown, expired and other users' requests are all ``NotFound``."""
        record = self._store.get(self._key(principal, request_id))
        if record is None or record.is_expired(self._clock()):
            raise NotFound(f"request {request_id} not found")
        return record

    def list(
        self, principal: Principal, *, limit: int, cursor: str | None, status: Status | None
    ) -> tuple[list[RequestRecord], str | None]:
        owner = owner_of(principal.key_id, principal.user_id)
        return self._store.list_for_owner(
            owner, limit=limit, cursor=cursor, status=status, now_epoch=self._clock().timestamp()
        )

    def cancel(self, principal: Principal, request_id: str) -> tuple[RequestRecord, bool]:
        """Mark the request cancelled and stop its execution. Returns the record and whether it was
        already cancelled. A completed or failed request is a ``Conflict`` naming its status."""
        pk = self._key(principal, request_id)
        now = self._clock()
        try:
            current = self._store.get(pk)
            if current is None or current.is_expired(now):
                raise NotFound(f"request {request_id} not found")
            record = self._store.transition(
                pk,
                to=Status.CANCELLED,
                allowed_from=sources_of(Status.CANCELLED),
                set_fields={
                    **terminal_fields(
                        current, now=now, retention_seconds=self._formation.async_.result_retention_seconds
                    ),
                    "status_message": "Request cancelled by user",
                },
                remove_fields=("current_step",),
            )
        except StaleWrite as stale:
            latest: RequestRecord | None = stale.details.get("current")
            if latest is None or latest.is_expired(now):
                raise NotFound(f"request {request_id} not found") from None
            if latest.status is Status.CANCELLED:
                return latest, True
            raise Conflict(
                f"request {request_id} is already {latest.status.value} and cannot be cancelled",
                details={"request_id": request_id, "status": latest.status.value},
            ) from None
        try:
            self._engine.stop(record.execution_name, cause="Request cancelled by user")
        except Exception:  # the workers' checkpoints stop the work anyway; the cancel itself stands
            logger.exception("could not stop execution %s", record.execution_name)
        # StopExecution ends waits on task tokens on AWS; ending them explicitly as well costs little and
        # covers engines that do not (moto), so a cancelled request never leaves a wait behind.
        for question in record.questions.values():
            if question.token:
                try:
                    self._engine.fail_task(question.token, error="RequestCancelled", cause="Request cancelled by user")
                except Exception:
                    logger.exception("could not end the wait for question %s", question.id)
        return record, False

    def answer(
        self, principal: Principal, request_id: str, answer: str, *, clarification_id: str | None = None
    ) -> RequestRecord:
        """Answer a question the request waits on and resume the workflow.

        ``clarification_id`` names the question; it may be left out while only one question is open.
        The answer is stored first (a conditional write on the questions' version), then the wait is
        ended with the task token kept on the record. Repeating the call with the same id and answer is
        safe: it stores nothing new and ends the wait again (that is the way to finish an answer whose
        resume failed, a 503). An answer stored after its wait timed out still counts: the timeout path
        finds it and the step runs with it.
        """
        record = self.get(principal, request_id)
        if clarification_id is not None:
            repeated = self._already_answered(record, clarification_id, answer)
            if repeated is not None:
                self._resume(repeated.token, repeated.id)
                return record
        if record.status is not Status.AWAITING_CLARIFICATION:
            raise Conflict(
                f"request {request_id} is {record.status.value}, not awaiting_clarification",
                details={"request_id": request_id, "status": record.status.value},
            )
        question = self._open_question(record, clarification_id)
        for _ in range(_ANSWER_WRITE_ATTEMPTS):
            status, fields, removals = closing_fields(record, question.key, answer=answer, now=self._clock())
            try:
                updated = self._store.transition(
                    record.pk,
                    to=status,
                    allowed_from={Status.AWAITING_CLARIFICATION},
                    set_fields=fields,
                    remove_fields=removals,
                    generation=record.execution_name,
                    expected={"questions_version": record.questions_version},
                )
            except StaleWrite:
                # Another answer, question, timeout or cancel changed the record: the same question still?
                record = self.get(principal, request_id)
                repeated = self._already_answered(record, question.id, answer)
                if repeated is not None:  # this very answer was stored (a lost response, or a twin POST)
                    self._resume(repeated.token, repeated.id)
                    return record
                still_open = next((q for q in record.questions.values() if q.id == question.id and q.token), None)
                if still_open is None or record.status is not Status.AWAITING_CLARIFICATION:
                    raise Conflict(
                        f"clarification_request_id {question.id} is no longer open (request {record.status.value})",
                        details={"request_id": request_id, "status": record.status.value},
                    ) from None
                question = still_open
                continue
            self._resume(question.token, question.id)
            return updated
        raise Unavailable(
            f"request {request_id} changed while the answer was being stored; send it again",
            details={"request_id": request_id},
        )

    @staticmethod
    def _already_answered(record: RequestRecord, clarification_id: str, answer: str) -> Clarification | None:
        closed = next((c for c in record.clarifications if c.id == clarification_id), None)
        if closed is None:
            return None
        if closed.outcome != "answered" or closed.answer != answer:
            raise Conflict(
                f"clarification_request_id {clarification_id} was already closed ({closed.outcome})"
                + (" with another answer" if closed.outcome == "answered" else ""),
                details={"field": "clarification_request_id", "request_id": record.request_id},
            )
        return closed

    def _resume(self, token: str | None, question_id: str) -> None:
        """End the workflow's wait. A wait that is already over is fine (the timeout path or an earlier
        call used the answer); a failure to reach Step Functions is a 503 the client may repeat."""
        if not token:
            return
        try:
            resumed = self._engine.resume(token, {"answered": True, "clarification_request_id": question_id})
        except Exception:
            logger.exception("could not resume the wait for question %s", question_id)
            raise Unavailable(
                "the answer is stored but the workflow could not be resumed; send the same request again "
                "with clarification_request_id to resume it",
                details={"clarification_request_id": question_id},
            ) from None
        if not resumed:
            logger.info("question %s: the wait had already ended; the stored answer is used", question_id)

    @staticmethod
    def _open_question(record: RequestRecord, clarification_id: str | None) -> Question:
        waiting = [q for q in record.questions.values() if q.token]
        if clarification_id is None:
            if len(waiting) > 1:
                raise Conflict(
                    f"{len(waiting)} questions are open: name the one you answer with clarification_request_id",
                    details={"field": "clarification_request_id", "open": sorted(q.id for q in waiting)},
                )
            question = waiting[0] if waiting else None
        else:
            question = next((q for q in waiting if q.id == clarification_id), None)
        if question is None:
            raise Conflict(
                f"clarification_request_id {clarification_id} is not an open question of this request",
                details={"field": "clarification_request_id", "request_id": record.request_id},
            )
        return question

    def redrive(self, principal: Principal, request_id: str) -> RequestRecord:
        """Resume a failed request in a new execution of the same lineage: finished steps are skipped
        (their checkpoints are kept), the failed step and those after it run again.

        The one way a terminal status is ever left, and only by an operator: ``failed`` goes back to
        ``processing``, the error is kept as ``redriven_error``, ``redrive_count`` grows.
        """
        record = self.get(principal, request_id)
        if record.status is not Status.FAILED:
            raise Conflict(
                f"request {request_id} is {record.status.value}; only failed requests can be redriven",
                details={"request_id": request_id, "status": record.status.value},
            )
        now = self._clock()
        # Never the name of an earlier execution (StartExecution would answer with that one).
        attempt = record.redrive_count + 1
        execution_name = f"{record.pk.removeprefix('REQ#')}-{int(now.timestamp() * 1000)}-r{attempt}"
        resumed = self._store.transition(
            record.pk,
            to=Status.PROCESSING,
            allowed_from={Status.FAILED},
            set_fields={
                "execution_name": execution_name,
                "lineage": record.lineage or record.execution_name,
                "redrive_count": attempt,
                "redriven_error": record.error.model_dump() if record.error else None,
                "status_message": f"Redriven: resuming after {record.completed_steps} finished step(s)",
                # Questions left open by the failed execution are asked again by the new one.
                "questions": {},
                "questions_version": record.questions_version + 1,
            },
            remove_fields=(
                "error",
                "ended_at",
                "duration_ms",
                "expires_at",
                "ttl",
                "current_step",
                "awaiting_since",
            ),
            generation=record.execution_name,
        )
        self._engine.start(execution_name, {"request_key": record.pk})
        return resumed

    # -- helpers ---------------------------------------------------------------------------------

    def _key(self, principal: Principal, request_id: str) -> str:
        if not _REQUEST_ID.match(request_id):
            raise NotFound(f"request {request_id} not found")
        return record_key(principal.key_id, principal.user_id, request_id)

    def _start(self, record: RequestRecord) -> None:
        try:
            self._engine.start(record.execution_name, {"request_key": record.pk})
        except Exception:
            # Never leave an accepted request pending with nothing behind it. (If the call failed after
            # all but the execution started, its Plan wins the race below and the request goes on.)
            logger.exception("could not start the workflow of %s", record.request_id)
            failed_fields = terminal_fields(
                record, now=self._clock(), retention_seconds=self._formation.async_.result_retention_seconds
            )
            error = {
                "type": "internal_error",
                "message": "the workflow could not be started; submit again with a new request_id",
                "retryable": True,
            }
            try:
                self._store.transition(
                    record.pk,
                    to=Status.FAILED,
                    allowed_from={Status.PENDING},
                    set_fields={**failed_fields, "error": error, "status_message": "Failed to start"},
                )
            except StaleWrite:
                return  # the execution did start and picked the request up
            raise

    def _resubmitted(self, existing: RequestRecord, fingerprint: str) -> Submission:
        if existing.fingerprint != fingerprint:
            raise Conflict(
                f"request_id {existing.request_id} was already used with a different body",
                details={"field": "request_id", "request_id": existing.request_id},
            )
        if existing.status is Status.PENDING:
            self._engine.start(existing.execution_name, {"request_key": existing.pk})
        return Submission(record=existing, finished=existing.status.is_terminal)

    def _wait(self, record: RequestRecord) -> Submission:
        """Poll the record until it is terminal or the sync wait ends; then fall back to the 202 answer."""
        deadline = self._monotonic() + self._formation.async_.sync_wait_seconds
        interval = 0.05
        latest = record
        while self._monotonic() < deadline:
            self._sleep(min(interval, max(0.0, deadline - self._monotonic())))
            interval = min(interval * 1.5, 1.0)
            found = self._store.get(record.pk)
            if found is not None:
                latest = found
            if latest.status.is_terminal:
                return Submission(record=latest, finished=True)
        try:
            fallen_back = self._store.set_fields(
                record.pk,
                {"processing_mode": "async", "mode_reason": "fallback"},
                only_in=sources_of(Status.COMPLETED) | {Status.PENDING},
            )
        except StaleWrite as stale:  # it finished just now: answer with the result after all
            current = stale.details.get("current")
            return Submission(record=current or latest, finished=current is not None)
        return Submission(record=fallen_back, finished=False)
