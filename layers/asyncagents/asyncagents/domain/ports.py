"""Everything the domain needs from the outside, in one place: the agent provider, storage, the workflow
engine, the bucket, the webhook queue and transport. Implemented in ``asyncagents.data``; faked in unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

# Types only: a port costs nothing at import (cold starts import it everywhere).
if TYPE_CHECKING:
    from asyncagents.domain.agents import Answer, Plan, QuestionAndAnswer, StepContext, StepOutput
    from asyncagents.domain.destinations import Destination
    from asyncagents.domain.plans import PlannedStep
    from asyncagents.domain.progress import EventType
    from asyncagents.domain.records import RequestRecord, Usage
    from asyncagents.domain.statuses import Status


class AgentProvider(Protocol):
    """A model behind the workflow: plans a request, runs a step, composes the answer (``asyncagents.providers``)."""

    name: str

    def plan(
        self,
        message: str,
        *,
        max_steps: int,
        clarifications: list[QuestionAndAnswer] | None = None,
        may_ask: bool = False,
    ) -> Plan: ...

    def run_step(self, step: PlannedStep, context: StepContext) -> StepOutput: ...

    def finish(
        self, message: str, outputs: list[StepOutput], clarifications: list[QuestionAndAnswer] | None = None
    ) -> Answer: ...


class RequestStore(Protocol):
    """Request records; every status write is conditional (``StaleWrite`` carries the current record)."""

    def create(
        self, fields: dict[str, Any], *, now_epoch: float, remembered_until: float | None = None
    ) -> RequestRecord | None:
        """Write a new request unless a live one has its key (then that one is returned). With
        ``remembered_until``, the key stays taken until then even after the record expired (``RequestExpired``)."""
        ...

    def get(self, request_key: str, *, with_delivery: bool = False) -> RequestRecord | None:
        """The record; ``with_delivery``: with its webhook's delivery outcome (``set_webhook_state``) too."""
        ...

    def transition(
        self,
        request_key: str,
        *,
        to: Status,
        allowed_from: Iterable[Status],
        set_fields: dict[str, Any] | None = None,
        remove_fields: Iterable[str] = (),
        generation: str | None = None,
        expected: dict[str, Any] | None = None,
        increments: dict[str, int] | None = None,
        event: EventType | None = None,
        then_events: Sequence[dict[str, Any]] = (),
        absent: Iterable[str] = (),
        plan_ttl: int | None = None,
    ) -> RequestRecord: ...

    def keep_run(self, request_key: str, *, planned_by: str | None, lineage: str, until: int) -> None:
        """Keep a new run's plan and finished steps' outputs until ``until`` at least (epoch seconds)."""

    def set_fields(
        self, request_key: str, fields: dict[str, Any], *, only_in: Iterable[Status] = ()
    ) -> RequestRecord: ...

    def set_webhook_state(self, record: RequestRecord, fields: dict[str, Any]) -> None:
        """Record a webhook delivery's outcome (``webhook_*`` fields) apart from the record; ``get`` shows it."""
        ...

    def unfinished(self, *, created_before: str) -> Iterable[str]: ...

    def list_for_owner(
        self, key_id: str, user_id: str, *, limit: int, cursor: str | None, status: Status | None, now_epoch: float
    ) -> tuple[list[RequestRecord], str | None]: ...

    def start_step(
        self, request_key: str, index: int, *, generation: str, title: str, message: str, derived: bool = False
    ) -> RequestRecord:
        """Mark the step running; count its attempt and the model call the attempt is about to make."""
        ...

    def start_steps(
        self, request_key: str, steps: Sequence[tuple[int, str]], *, generation: str, message: str
    ) -> RequestRecord:
        """``start_step`` for several steps (``(index, title)``) in one write: all of them start, or none (their
        entries leave the message out: the replay makes each step's)."""
        ...

    def count_step_done(
        self,
        request_key: str,
        index: int,
        *,
        generation: str,
        message: str,
        usage: Usage,
        derived: bool = False,
        then_start: Sequence[tuple[int, str]] = (),
        start_message: str = "",
        count_answer: str | None = None,
    ) -> RequestRecord:
        """Count the step done; ``derived``: its message is the one the event replay makes (the entry omits it);
        ``then_start``: steps started by the same write (all or nothing); ``count_answer``: the answer's model call
        too, for that Run invocation (its token: the last step's). Returns the record written."""
        ...

    def uncount_answer(self, request_key: str, run_token: str) -> None:
        """Give back the answer's call ``count_answer`` counted for ``run_token`` (once; else ``StaleWrite``)."""
        ...

    def unstart_step(self, request_key: str, index: int) -> None:
        """Give back an unused start: its attempt and its model call are uncounted."""
        ...

    def forget_done(self, request_key: str, indexes: Sequence[int], *, generation: str) -> RequestRecord:
        """Count done steps not done (their outputs are gone: they run again), or ``StaleWrite``."""

    def add_usage(self, request_key: str, *, calls: int, usage: Usage | None = None) -> None: ...


class StepStore(Protocol):
    """The stored outputs of finished steps, per lineage of a request."""

    def put_output(self, request_key: str, lineage: str, index: int, output: dict[str, Any], *, ttl: int) -> None: ...

    def outputs(self, request_key: str, lineage: str) -> list[dict[str, Any]]: ...

    def stored_indexes(self, request_key: str, lineage: str) -> set[int]: ...


class KeyStore(Protocol):
    def put_key(
        self,
        *,
        secret_hash: str,
        key_id: str,
        kind: str,
        label: str,
        created_at: str,
        user_id: str | None = None,
        expires_at: str | None = None,
        webhook_secret: str | None = None,
        limits: dict[str, int] | None = None,
    ) -> None: ...

    def get_key(self, secret_hash: str) -> dict[str, Any] | None: ...

    def get_key_by_id(self, key_id: str) -> dict[str, Any] | None: ...

    def revoke_key(self, key_id: str, *, revoked_at: str) -> bool: ...

    def touch_key(self, key_id: str, *, used_at: str, stale_before: str) -> None:
        """Record a use of the key unless one after ``stale_before`` is recorded already."""
        ...

    def list_keys(self, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """The keys, newest first (never their secrets' digests), and the next page's cursor."""
        ...


class AuditStore(Protocol):
    def append(self, entry: dict[str, Any], *, forget_at: int) -> None: ...

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Records, newest first, and the next page's cursor."""
        ...


class RateWindows(Protocol):
    """Counts a key's calls in fixed windows of time (one counter per key and window)."""

    def hit(self, key_id: str, window: int, *, limit: int, forget_after: int) -> bool:
        """Count one call in ``window`` unless ``limit`` calls are counted there already (then False)."""
        ...


class SlotPools(Protocol):
    """Pools of named slots with a size limit; claiming and releasing a slot are idempotent."""

    def claim(self, pool: str, member: str, *, most: int) -> bool:
        """Hold ``member`` in ``pool`` unless the pool holds ``most`` others (then False)."""
        ...

    def release(self, pool: str, member: str) -> None: ...

    def members(self, pool: str) -> set[str]: ...

    def start_check(self, pool: str, *, now: int, every: int) -> bool:
        """True for one caller at most every ``every`` seconds: that caller may look for leaked slots."""
        ...


class TriggerSecretSource(Protocol):
    """The secrets a trigger's deliveries are signed with (more than one during a rotation)."""

    def secrets_for(self, trigger: str, secret_arn: str | None) -> list[str]:
        """``secret_arn``'s value, or the trigger's entry in the stack's own secret when it is ``None``;
        ``Unavailable`` when none is set."""
        ...


class JobStore(Protocol):
    """Scheduled jobs created over HTTP, and the runs of every job (formation ones included)."""

    def create_job(self, job: dict[str, Any]) -> None:
        """Conditional: ``Conflict`` when the id exists."""

    def get_job(self, job_id: str) -> dict[str, Any] | None: ...

    def list_jobs(self) -> list[dict[str, Any]]: ...

    def replace_job(self, job: dict[str, Any], *, expected_version: int) -> None:
        """Conditional on the stored version: ``StaleWrite`` when another write came first."""
        ...

    def delete_job(self, job_id: str) -> bool: ...

    def record_run(self, job_id: str, run: dict[str, Any], *, ttl: int) -> bool:
        """Conditional on the slot: ``False`` when this slot's run is already recorded."""

    def runs(self, job_id: str, *, limit: int) -> list[dict[str, Any]]:
        """The newest first."""

    def get_run(self, job_id: str, scheduled_time: str) -> dict[str, Any] | None: ...


class ScheduleEngine(Protocol):
    """EventBridge Scheduler: one schedule per job, in the stack's group, aimed at the schedule function."""

    def put(
        self,
        name: str,
        *,
        expression: str,
        timezone: str,
        payload: dict[str, Any],
        enabled: bool,
        flexible_window_minutes: int,
        create: bool,
    ) -> None:
        """Create (idempotent for the same name: a retried create succeeds) or update the schedule."""
        ...

    def delete(self, name: str) -> None:
        """Idempotent: a schedule already gone is fine."""


class HistoryStore(Protocol):
    """The estimator's per-kind duration history."""

    def get_history(self, formation_id: str, kind: str) -> dict[str, Any] | None: ...

    def add_history(self, formation_id: str, kind: str, log_ratio: float) -> None: ...

    def learned(self, formation_id: str) -> list[dict[str, Any]]: ...

    def forget(self, formation_id: str) -> int: ...


@dataclass(frozen=True)
class ExecutionState:
    """Where an execution is: ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT`` or ``ABORTED``."""

    status: str
    error: str = ""
    cause: str = ""


class WorkflowEngine(Protocol):
    def start(self, execution_name: str, payload: dict[str, Any]) -> None: ...

    def describe(self, execution_name: str) -> ExecutionState | None: ...

    def stop(self, execution_name: str, *, cause: str) -> None: ...

    def resume(self, task_token: str, output: dict[str, Any]) -> bool: ...

    def fail_task(self, task_token: str, *, error: str, cause: str) -> bool: ...


class ArtifactSink(Protocol):
    """The bucket for produced files and for texts too large for the table."""

    def put(self, key: str, content: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...


@dataclass(frozen=True)
class HttpResult:
    """What a webhook transport saw: a status code, or an error before any answer."""

    status_code: int | None = None
    retry_after: float | None = None
    error: str | None = None


class WebhookTransport(Protocol):
    def post(self, destination: Destination, body: bytes, headers: dict[str, str], timeout: float) -> HttpResult: ...


class NoticeTopic(Protocol):
    """Where e-mailed notices are published (SNS: the topic's subscribers get each one)."""

    def publish(self, subject: str, message: str) -> None: ...


class SentNotices(Protocol):
    """Which notices were sent: a person reading Slack or mail cannot drop a repeat as a webhook receiver can.
    ``claim`` takes the sending (``None``), or says why not (``"sent"``, or ``"sending"`` by another delivery);
    ``release`` gives it back when it could not be sent now."""

    def claim(self, delivery_id: str) -> str | None: ...

    def mark_sent(self, delivery_id: str) -> None: ...

    def release(self, delivery_id: str) -> None: ...


class WebhookQueue(Protocol):
    """The webhook queue and its dead-letter queue."""

    def send(self, messages: Iterable[Any]) -> None: ...

    def delay(self, receipt_handle: str, seconds: int) -> None: ...

    def dead_letter(self, body: str, *, reason: str) -> None: ...

    def list_dead_letters(self, limit: int = 10) -> list[dict[str, Any]]: ...

    def count_dead_letters(self) -> int: ...

    def redrive(self) -> dict[str, Any]: ...


# The signing secrets to sign with now: the current one first, then a previous one during its grace period.
SigningSecretSource = Callable[[], Sequence[str]]
