"""In-memory stand-ins for the data layer with the same conditional-write semantics."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from typing import Any

from asyncagents.domain.errors import RequestExpired, StaleWrite
from asyncagents.domain.ports import ExecutionState
from asyncagents.domain.progress import MAX_PROGRESS_ENTRIES, EventType, entry, transition_entry
from asyncagents.domain.records import RequestRecord, usage_increments
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import utc_now

_WORKING = {Status.PROCESSING.value, Status.AWAITING_CLARIFICATION.value}


class InMemoryStore:
    """Implements ``RequestStore``, ``StepStore``, ``HistoryStore`` and ``KeyStore`` over dicts, with the same
    conditions as the DynamoDB classes; every write is atomic under one lock."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.steps: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        self.keys: dict[str, dict[str, Any]] = {}
        self.history: dict[tuple[str, str], dict[str, Any]] = {}
        self.remembered: dict[str, float] = {}  # request key -> until when its id stays taken
        self.calls: list[str] = []
        self.webhook_states: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _record(self, pk: str) -> RequestRecord:
        return RequestRecord.model_validate(copy.deepcopy(self.items[pk]))

    def create(
        self, fields: dict[str, Any], *, now_epoch: float, remembered_until: float | None = None
    ) -> RequestRecord | None:
        self.calls.append("create")
        with self._lock:
            key = fields["request_key"]
            existing = self.items.get(key)
            if existing and not (existing.get("expires_at") is not None and existing["expires_at"] <= now_epoch):
                return self._record(key)
            if self.remembered.get(key, 0) > now_epoch:
                raise RequestExpired.of(fields["request_id"], str(self.remembered[key]))
            if remembered_until is not None:
                self.remembered[key] = remembered_until
            self.items[key] = copy.deepcopy(fields)
            self.items[key]["events"] = [
                entry(
                    EventType.ACCEPTED,
                    fields["created_at"],
                    status=Status(fields["status"]),
                    message=fields.get("status_message"),
                )
            ]
            return None

    def keep_run(self, pk: str, *, planned_by: str | None, lineage: str, until: int) -> None:
        self.calls.append(f"keep_run:{planned_by}")
        with self._lock:
            for output in self.steps.get((pk, lineage), {}).values():
                output["ttl"] = max(output.get("ttl", 0), until)

    def get(self, pk: str, *, with_delivery: bool = False) -> RequestRecord | None:
        self.calls.append("get")
        with self._lock:
            if pk not in self.items:
                return None
            record = self._record(pk)
            if not with_delivery:
                return record
            state = self.webhook_states.get(pk, {})
            if state.get("of_created_at") != record.created_at:
                return record
            return record.model_copy(update={k: v for k, v in state.items() if k.startswith("webhook_")})

    def set_webhook_state(self, record: RequestRecord, fields: dict[str, Any]) -> None:
        with self._lock:
            self.webhook_states[record.request_key] = {**fields, "of_created_at": record.created_at}

    def transition(
        self,
        pk: str,
        *,
        to: Status,
        allowed_from: Iterable[Status],
        set_fields: dict[str, Any] | None = None,
        remove_fields: Iterable[str] = (),
        generation: str | None = None,
        expected: dict[str, Any] | None = None,
        increments: dict[str, int] | None = None,
        event: EventType | None = None,
        then_events: Any = (),
        absent: Iterable[str] = (),
        plan_ttl: int | None = None,  # where a plan is kept is the table's business: here it stays in the record
    ) -> RequestRecord:
        started = [str(e["step"]) for e in then_events if e.get("type") == EventType.STEP_STARTED.value]
        self.calls.append(f"transition:{to.value}" + (f"+start:{','.join(started)}" if started else ""))
        with self._lock:
            item = self.items.get(pk)
            stale_generation = item is not None and generation is not None and item["execution_name"] != generation
            unexpected = item is not None and any(
                item.get(k, 0 if v == 0 else None) != v for k, v in (expected or {}).items()
            )
            present = item is not None and any(item.get(name) is not None for name in absent)
            if (
                item is None
                or Status(item["status"]) not in set(allowed_from)
                or stale_generation
                or unexpected
                or present
            ):
                raise StaleWrite("stale", details={"current": self._record(pk) if item else None})
            item.update(copy.deepcopy(set_fields or {}))
            for name, amount in (increments or {}).items():
                item[name] = item.get(name, 0) + amount
            item["status"] = to.value
            for name in remove_fields:
                item.pop(name, None)
            self._append(item, transition_entry(to, utc_now(), set_fields or {}, event), capped=False)
            for then in then_events:
                self._append(item, then, capped=False)
            return self._record(pk)

    @staticmethod
    def _append(item: dict[str, Any], event: dict[str, Any], *, capped: bool = True) -> None:
        events = item.setdefault("events", [{"type": EventType.ACCEPTED.value}])
        if not capped or len(events) < MAX_PROGRESS_ENTRIES:
            events.append(event)

    def set_fields(self, pk: str, fields: dict[str, Any], *, only_in: Iterable[Status] = ()) -> RequestRecord:
        with self._lock:
            item = self.items[pk]
            allowed = set(only_in)
            if allowed and Status(item["status"]) not in allowed:
                raise StaleWrite("stale", details={"current": self._record(pk)})
            item.update(fields)
            return self._record(pk)

    def unfinished(self, *, created_before: str) -> list[str]:
        with self._lock:
            return [
                key
                for key, item in self.items.items()
                if item["status"] not in {"completed", "failed", "cancelled"} and item["created_at"] < created_before
            ]

    def list_for_owner(
        self, key_id: str, user_id: str, *, limit: int, cursor: str | None, status: Status | None, now_epoch: float
    ) -> tuple[list[RequestRecord], str | None]:
        with self._lock:
            mine = [
                self._record(pk)
                for pk, item in self.items.items()
                if (item["key_id"], item["user_id"]) == (key_id, user_id)
                and (status is None or item["status"] == status.value)
                and not (item.get("expires_at") is not None and item["expires_at"] <= now_epoch)
            ]
        mine.sort(key=lambda r: r.created_at, reverse=True)
        start = int(cursor) if cursor else 0
        page = mine[start : start + limit]
        more = start + limit < len(mine)
        return page, str(start + limit) if more else None

    def start_step(
        self, pk: str, index: int, *, generation: str, title: str, message: str, derived: bool = False
    ) -> RequestRecord:
        return self._start_steps(pk, [(index, title)], generation, message, derived)

    def start_steps(self, pk: str, steps: Any, *, generation: str, message: str) -> RequestRecord:
        return self._start_steps(pk, steps, generation, message, derived=True)

    def _start_steps(self, pk: str, steps: Any, generation: str, message: str, derived: bool) -> RequestRecord:
        with self._lock:
            self.calls.append("start:" + ",".join(str(index) for index, _ in steps))
            item = self.items[pk]
            self._refuse_unless_startable(pk, item, generation, [index for index, _ in steps])
            self._start(item, steps, message, derived)
            return self._record(pk)

    def _refuse_unless_startable(self, pk: str, item: dict[str, Any], generation: str, indexes: list[int]) -> None:
        done = set(item.get("done_steps", set()))
        if item["status"] not in _WORKING or item["execution_name"] != generation or done & set(indexes):
            raise StaleWrite("stale", details={"current": self._record(pk)})

    def _start(self, item: dict[str, Any], steps: Any, message: str, derived: bool) -> None:
        for index, title in steps:
            item["current_step"] = title
            item["status_message"] = message
            attempts = item.setdefault("step_attempts", {})
            attempts[str(index)] = attempts.get(str(index), 0) + 1
            item["model_calls"] = item.get("model_calls", 0) + 1
            shown = None if derived else message
            self._append(item, entry(EventType.STEP_STARTED, utc_now(), message=shown, step=index, title=title))

    def count_step_done(
        self,
        pk: str,
        index: int,
        *,
        generation: str,
        message: str,
        usage: Any,
        derived: bool = False,
        then_start: Any = (),
        start_message: str = "",
        count_answer: str | None = None,
    ) -> RequestRecord:
        with self._lock:
            self.calls.append(
                f"done:{index}" + "".join(f"+start:{i}" for i, _ in then_start) + ("+answer" if count_answer else "")
            )
            item = self.items[pk]
            asked = str(index) in (item.get("questions") or {})
            self._refuse_unless_startable(pk, item, generation, [index, *(i for i, _ in then_start)])
            if asked:
                raise StaleWrite("stale", details={"current": self._record(pk)})
            item["done_steps"] = set(item.get("done_steps", set())) | {index}
            item["completed_steps"] = item.get("completed_steps", 0) + 1
            self._add_tokens(item, usage)
            item["status_message"] = message
            shown = None if derived else message
            self._append(item, entry(EventType.STEP_COMPLETED, utc_now(), message=shown, step=index))
            self._start(item, then_start, start_message, derived=True)
            if count_answer:
                item["model_calls"] = item.get("model_calls", 0) + 1
                item["answer_counted"] = count_answer
            return self._record(pk)

    def uncount_answer(self, pk: str, run_token: str) -> None:
        with self._lock:
            self.calls.append("uncount:answer")
            item = self.items.get(pk)
            if item is None or item.get("answer_counted") != run_token:
                raise StaleWrite("not counted", details={"current": self._record(pk) if item else None})
            item["model_calls"] = item.get("model_calls", 0) - 1
            item.pop("answer_counted")

    def unstart_step(self, pk: str, index: int) -> None:
        with self._lock:
            self.calls.append(f"unstart:{index}")
            item = self.items.get(pk)
            if item is None:
                raise StaleWrite("gone", details={"current": None})
            attempts = item.setdefault("step_attempts", {})
            attempts[str(index)] = attempts.get(str(index), 0) - 1
            item["model_calls"] = item.get("model_calls", 0) - 1

    def forget_done(self, pk: str, indexes: Any, *, generation: str) -> RequestRecord:
        with self._lock:
            self.calls.append("forget:" + ",".join(map(str, indexes)))
            item = self.items[pk]
            done = set(item.get("done_steps", set()))
            if item["status"] not in _WORKING or item.get("execution_name") != generation or not done >= set(indexes):
                raise StaleWrite("stale", details={"current": self._record(pk)})
            item["done_steps"] = done - set(indexes)
            item["completed_steps"] = item.get("completed_steps", 0) - len(indexes)
            return self._record(pk)

    def add_usage(self, pk: str, *, calls: int, usage: Any = None) -> None:
        with self._lock:
            item = self.items.get(pk)
            if item is None:
                raise StaleWrite("gone", details={"current": None})
            item["model_calls"] = item.get("model_calls", 0) + calls
            if usage is not None:
                self._add_tokens(item, usage)

    @staticmethod
    def _add_tokens(item: dict[str, Any], usage: Any) -> None:
        for name, amount in usage_increments(usage).items():
            item[name] = item.get(name, 0) + amount

    # StepStore
    def put_output(self, pk: str, lineage: str, index: int, output: dict[str, Any], *, ttl: int) -> None:
        with self._lock:
            outputs = self.steps.setdefault((pk, lineage), {})
            if index not in outputs or outputs[index].get("attempts", 1) < output.get("attempts", 1):
                outputs[index] = {**copy.deepcopy(output), "ttl": ttl}

    def outputs(self, pk: str, lineage: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(v) for _, v in sorted(self.steps.get((pk, lineage), {}).items())]

    def stored_indexes(self, pk: str, lineage: str) -> set[int]:
        with self._lock:
            return set(self.steps.get((pk, lineage), {}))

    # HistoryStore
    def get_history(self, formation_id: str, kind: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.history.get((formation_id, kind)))

    def add_history(self, formation_id: str, kind: str, log_ratio: float) -> None:
        with self._lock:
            item = self.history.setdefault((formation_id, kind), {"samples": 0, "sum_log_ratio": 0.0})
            item["samples"] += 1
            item["sum_log_ratio"] += log_ratio

    def learned(self, formation_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**copy.deepcopy(v), "kind": kind} for (fid, kind), v in self.history.items() if fid == formation_id
            ]

    def forget(self, formation_id: str) -> int:
        with self._lock:
            mine = [key for key in self.history if key[0] == formation_id]
            for key in mine:
                del self.history[key]
            return len(mine)

    # KeyStore
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
    ) -> None:
        item = {"key_id": key_id, "kind": kind, "label": label, "created_at": created_at, **(limits or {})}
        optional = {"user_id": user_id, "expires_at": expires_at, "webhook_secret": webhook_secret}
        self.keys[secret_hash] = {**item, **{name: value for name, value in optional.items() if value is not None}}

    def get_key(self, secret_hash: str) -> dict[str, Any] | None:
        self.calls.append("get_key")
        return copy.deepcopy(self.keys.get(secret_hash))

    def revoke_key(self, key_id: str, *, revoked_at: str) -> bool:
        for item in self.keys.values():
            if item["key_id"] == key_id:
                item["revoked_at"] = revoked_at
                return True
        return False

    def get_key_by_id(self, key_id: str) -> dict[str, Any] | None:
        self.calls.append("get_key_by_id")
        return next((copy.deepcopy(item) for item in self.keys.values() if item["key_id"] == key_id), None)

    def touch_key(self, key_id: str, *, used_at: str, stale_before: str) -> None:
        self.calls.append("touch_key")
        for item in self.keys.values():
            if item["key_id"] == key_id and item.get("last_used_at", "") < stale_before:
                item["last_used_at"] = used_at

    def list_keys(self, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        ordered = sorted(self.keys.values(), key=lambda item: item["created_at"], reverse=True)
        start = int(cursor or 0)
        listed = [
            {**{k: v for k, v in item.items() if k != "webhook_secret"}, "signs_webhooks": "webhook_secret" in item}
            for item in ordered[start : start + limit]
        ]
        return listed, (str(start + limit) if start + limit < len(ordered) else None)


class RecordingEngine:
    """Implements ``WorkflowEngine``: records starts and stops; can be told to fail."""

    def __init__(self, *, fail_start: bool = False) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.stopped: list[str] = []
        self.resumed: list[tuple[str, dict[str, Any]]] = []
        self.failed_tasks: list[tuple[str, str]] = []
        self.closed_tokens: set[str] = set()  # waits that already ended (timed out): resume answers False
        self.fail_start = fail_start
        self.executions: dict[str, ExecutionState] = {}  # what describe answers (absent: no such execution)

    def start(self, execution_name: str, payload: dict[str, Any]) -> None:
        if self.fail_start:
            raise RuntimeError("StartExecution failed")
        self.started.append((execution_name, payload))

    def stop(self, execution_name: str, *, cause: str) -> None:
        self.stopped.append(execution_name)

    def describe(self, execution_name: str) -> ExecutionState | None:
        return self.executions.get(execution_name)

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        if task_token in self.closed_tokens:
            return False
        self.resumed.append((task_token, output))
        return True

    def fail_task(self, task_token: str, *, error: str, cause: str) -> bool:
        self.failed_tasks.append((task_token, error))
        return True


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: Any) -> None:
        self.now = start

    def __call__(self) -> Any:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(seconds=seconds)


class FakeTimer:
    """A monotonic clock that only moves when something sleeps: waits take no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


class MemoryArtifacts:
    """Implements the artifact sink and URL maker over a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, content: bytes, content_type: str) -> None:
        self.objects[key] = (content, content_type)

    def get(self, key: str) -> bytes:
        return self.objects[key][0]

    def url(self, key: str) -> str:
        return f"https://artifacts.example/{key}?X-Amz-Expires=3600"


class MemoryWindows:
    """Implements ``RateWindows`` over a dict."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, int], int] = {}

    def hit(self, key_id: str, window: int, *, limit: int, forget_after: int) -> bool:
        counted = self.calls.get((key_id, window), 0)
        if counted >= limit:
            return False
        self.calls[(key_id, window)] = counted + 1
        return True


class MemorySlots:
    """Implements ``SlotPools`` over sets."""

    def __init__(self) -> None:
        self.pools: dict[str, set[str]] = {}
        self.checked_at: dict[str, int] = {}

    def claim(self, pool: str, member: str, *, most: int) -> bool:
        held = self.pools.setdefault(pool, set())
        if member not in held and len(held) >= most:
            return False
        held.add(member)
        return True

    def release(self, pool: str, member: str) -> None:
        self.pools.get(pool, set()).discard(member)

    def members(self, pool: str) -> set[str]:
        return set(self.pools.get(pool, set()))

    def start_check(self, pool: str, *, now: int, every: int) -> bool:
        if pool in self.checked_at and self.checked_at[pool] > now - every:
            return False
        self.checked_at[pool] = now
        return True


class RecordingTelemetry:
    """What was measured: each emit's measures and metadata, in order."""

    def __init__(self) -> None:
        self.emitted: list[tuple[dict[str, tuple[float, str]], dict[str, Any]]] = []

    def emit(self, measures: Any, *, metadata: Any = None) -> None:
        self.emitted.append((dict(measures), dict(metadata or {})))

    def values(self, name: str) -> list[float]:
        return [measures[name][0] for measures, _ in self.emitted if name in measures]
