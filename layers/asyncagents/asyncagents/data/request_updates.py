"""The conditional updates of a request record, and the ones a step makes: its start (several steps' in one
write), its counting as done (with the start of the steps that follow it, in the same write), and giving an
unused start back. ``RequestRecords`` (creation, reads, status transitions) builds on them.

A request record is billed by its whole size on every write (about 1-3 KB: a write unit per KB), so the step
path writes as little as it can: a wave of steps that become ready together is started by one write, and a step
counted done starts the steps now ready after it in that same write, where each would otherwise write its own
start."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import conditional_write, serialize, update_arguments
from asyncagents.data.event_entries import stored
from asyncagents.data.request_items import record_of
from asyncagents.data.request_plans import PlanReader
from asyncagents.data.table_keys import request_item_key
from asyncagents.domain.errors import StaleWrite
from asyncagents.domain.progress import MAX_PROGRESS_ENTRIES, EventType, entry
from asyncagents.domain.records import RequestRecord, Usage, usage_increments
from asyncagents.domain.statuses import WORKING
from asyncagents.logs import about_request

logger = logging.getLogger(__name__)

_WORKING_VALUES = {f":working{i}": serialize(status.value) for i, status in enumerate(sorted(WORKING))}
_WORKING_CONDITION = f"#status IN ({', '.join(_WORKING_VALUES)}) AND execution_name = :generation"
# The entry a record written before events were recorded starts its list with (``progress_events``).
_FIRST_ENTRY_OF_OLDER_RECORDS = serialize([{"type": EventType.ACCEPTED.value}])


def named(record: RequestRecord) -> RequestRecord:
    about_request(record.request_id)  # the function's log lines from here on name the request it works on
    return record


class RequestUpdates:
    """Conditional UpdateItems of request records. ``client`` is a boto3 DynamoDB client; ``clock`` dates the
    events that writes append (``domain.progress``)."""

    def __init__(self, client: Any, table_name: str, *, clock: Callable[[], datetime]) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._plans = PlanReader(client, table_name)

    def _record(self, item: dict[str, Any]) -> RequestRecord:
        """A record from its item, with its plan when that is kept apart (``data.request_plans``)."""
        return record_of(self._plans.with_plan(item))

    def _refused(self, item: dict[str, Any]) -> RequestRecord:
        """The record a refused write returns (``StaleWrite``'s ``current``): with its plan, unless reading the plan
        fails now (throttled, say), when it comes without its steps: a refused write stays a ``StaleWrite``."""
        try:
            return self._record(item)
        except ClientError:
            logger.warning("the plan of a request whose write was refused could not be read", exc_info=True)
            return record_of(item)

    def start_step(
        self, request_key: str, index: int, *, generation: str, title: str, message: str, derived: bool = False
    ) -> RequestRecord:
        """Mark step ``index`` running, count the attempt and the model call it is about to make (one write), while
        the request works for ``generation`` and the step is not done; else ``StaleWrite`` (with the record).
        ``derived``: the message is the one the event replay makes from the step, and its entry leaves it out."""
        return self._start(request_key, [(index, title)], generation, message, None if derived else message)

    def start_steps(
        self, request_key: str, steps: Sequence[tuple[int, str]], *, generation: str, message: str
    ) -> RequestRecord:
        """``start_step`` for several steps (``(index, title)``) in one write: all of them start, or none. Their
        entries leave the message out (the event replay makes each step's); ``message`` is the record's."""
        return self._start(request_key, steps, generation, message, None)

    def _start(
        self, request_key: str, steps: Sequence[tuple[int, str]], generation: str, message: str, shown: str | None
    ) -> RequestRecord:
        names, values, condition, adds = self._starts(steps, generation)
        return self._update(
            request_key,
            set_fields={"current_step": steps[-1][1], "status_message": message},
            increments={"model_calls": len(steps)},
            extra_adds=adds,
            condition=f"{_WORKING_CONDITION}{condition}",
            names=names,
            values={**_WORKING_VALUES, **values, ":generation": serialize(generation)},
            stale_message="the step cannot start",
            events=self._start_events(steps, message=shown),
        )

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
        """Count step ``index`` done (and its tokens) while the request works for ``generation``, the step is not
        counted yet, and it has no open question (a step that asked is done only when it runs again with the answer:
        an earlier attempt of it that outlived its timeout cannot finish it meanwhile). ``derived``: as start_step.
        ``then_start``: steps (``(index, title)``) started by the same write, as ``start_steps`` would (all or
        nothing: the whole write is refused if one cannot start; ``start_message`` is then the record's message).
        ``count_answer``: the token of the Run invocation whose last step this is and which composes the answer
        next: its model call is counted by this write too (``answer_counted``; ``uncount_answer`` gives it back).
        Returns the record written."""
        names, values, condition, adds = self._starts(then_start, generation)
        set_fields: dict[str, Any] = {"status_message": start_message if then_start else message}
        if then_start:
            set_fields["current_step"] = then_start[-1][1]
        if count_answer:
            set_fields["answer_counted"] = count_answer
        calls = len(then_start) + bool(count_answer)
        done = entry(EventType.STEP_COMPLETED, self._clock(), message=None if derived else message, step=index)
        return self._update(
            request_key,
            set_fields=set_fields,
            increments={
                "completed_steps": 1,
                **usage_increments(usage),
                **({"model_calls": calls} if calls else {}),
            },
            extra_adds=["#done :index_set", *adds],
            condition=(
                f"{_WORKING_CONDITION} AND NOT contains(#done, :index) AND attribute_not_exists(#questions.#step)"
                f"{condition}"
            ),
            names={**names, "#done": "done_steps", "#questions": "questions", "#step": str(index)},
            values={
                **_WORKING_VALUES,
                **values,
                ":index_set": {"NS": [str(index)]},
                ":index": serialize(index),
                ":generation": serialize(generation),
            },
            stale_message="the step's result was not counted: the request moved on",
            events=[done, *self._start_events(then_start, message=None)],
        )

    def unstart_step(self, request_key: str, index: int) -> None:
        """Give back a start that was never used (its attempt and its model call are uncounted): a step started
        by another write that did not run after all. Its started event stays (the step starts again later)."""
        self._update(
            request_key,
            set_fields={},
            increments={"model_calls": -1},
            extra_adds=["#attempts.#step :minus_one"],
            condition="attribute_exists(pk)",
            names={"#attempts": "step_attempts", "#step": str(index)},
            values={":minus_one": serialize(-1)},
            stale_message="the request no longer exists",
        )

    def forget_done(self, request_key: str, indexes: Sequence[int], *, generation: str) -> RequestRecord:
        """Count steps ``indexes`` as not done, while the request works for ``generation`` and each of them is done:
        their stored outputs are gone (past their ttl), so they run again. No event: their new start is one."""
        held = {f":forgotten{i}": serialize(index) for i, index in enumerate(indexes)}
        return self._update(
            request_key,
            set_fields={},
            increments={"completed_steps": -len(indexes)},
            extra_deletes=["#done :forgotten"],
            condition=" AND ".join([_WORKING_CONDITION, *(f"contains(#done, {name})" for name in held)]),
            names={"#done": "done_steps"},
            values={
                **_WORKING_VALUES,
                **held,
                ":forgotten": {"NS": [str(index) for index in indexes]},
                ":generation": serialize(generation),
            },
            stale_message="the steps were not forgotten: the request moved on",
        )

    def uncount_answer(self, request_key: str, run_token: str) -> None:
        """Give back the answer's call a done write counted for the Run invocation ``run_token`` when that
        invocation does not make it after all; once (``StaleWrite`` when not counted for it, or given back already)."""
        self._update(
            request_key,
            set_fields={},
            remove_fields=["answer_counted"],
            increments={"model_calls": -1},
            condition="answer_counted = :token",
            values={":token": serialize(run_token)},
            stale_message="the answer's call was not counted for this execution",
        )

    def add_usage(self, request_key: str, *, calls: int, usage: Usage | None = None) -> None:
        """Count ``calls`` model calls about to be made, or the tokens of calls whose results are not kept (an
        abandoned attempt's, a cancelled step's): whatever the request's status or execution, a call is paid."""
        self._update(
            request_key,
            set_fields={},
            increments={"model_calls": calls, **(usage_increments(usage) if usage else {})},
            condition="attribute_exists(pk)",
            values={},
            stale_message="the request no longer exists",
        )

    @staticmethod
    def _starts(
        steps: Sequence[tuple[int, str]], generation: str
    ) -> tuple[dict[str, str], dict[str, Any], str, list[str]]:
        """Names, values, the condition (no step started is done) and the ADDs (an attempt each) of starting
        ``steps``."""
        names: dict[str, str] = {"#attempts": "step_attempts", "#done": "done_steps"} if steps else {}
        values: dict[str, Any] = {":one": serialize(1)} if steps else {}
        condition = ""
        adds = []
        for n, (index, _) in enumerate(steps):
            names[f"#start{n}"] = str(index)
            values[f":start{n}"] = serialize(index)
            condition += f" AND NOT contains(#done, :start{n})"
            adds.append(f"#attempts.#start{n} :one")
        return names, values, condition, adds

    def _start_events(self, steps: Sequence[tuple[int, str]], *, message: str | None) -> list[dict[str, Any]]:
        now = self._clock()
        # No title: the replay takes it from the plan (every write of the record pays for the entries' size).
        return [entry(EventType.STEP_STARTED, now, message=message, step=index) for index, _ in steps]

    def _update(
        self,
        request_key: str,
        *,
        set_fields: dict[str, Any],
        condition: str,
        values: dict[str, Any],
        remove_fields: Iterable[str] = (),
        names: dict[str, str] | None = None,
        increments: dict[str, int] | None = None,
        extra_adds: Sequence[str] = (),
        extra_deletes: Sequence[str] = (),
        stale_message: str = "the request changed before this write",
        events: Sequence[dict[str, Any]] = (),
        capped: bool = True,
    ) -> RequestRecord:
        """One conditional UpdateItem; ``events`` are appended to the record's events in the same write (past
        ``MAX_PROGRESS_ENTRIES`` entries ``capped`` events are left out and the write made without them)."""
        names = {**(names or {}), **({"#status": "status"} if "#status" in condition else {})}

        def write(
            condition: str, names: dict[str, str], values: dict[str, Any], appends: Sequence[str] = ()
        ) -> RequestRecord:
            arguments = update_arguments(
                set_fields=set_fields,
                remove_fields=remove_fields,
                increments=increments,
                extra_adds=extra_adds,
                extra_sets=appends,
                extra_deletes=extra_deletes,
                names=names,
                values=values,
            )
            with conditional_write(stale_message, self._refused):
                response = self._client.update_item(
                    TableName=self._table,
                    Key=request_item_key(request_key),
                    ConditionExpression=condition,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **arguments,
                )
            return named(self._record(response["Attributes"]))

        if not events:
            return write(condition, names, values)
        append = ["#events = list_append(if_not_exists(#events, :first_events), :event)"]
        event_names = {**names, "#events": "events"}
        appended = serialize([stored(event) for event in events])
        event_values = {**values, ":event": appended, ":first_events": _FIRST_ENTRY_OF_OLDER_RECORDS}
        if not capped:
            return write(condition, event_names, event_values, append)
        try:
            return write(
                f"({condition}) AND (attribute_not_exists(#events) OR size(#events) < :most_events)",
                event_names,
                {**event_values, ":most_events": serialize(MAX_PROGRESS_ENTRIES)},
                append,
            )
        except StaleWrite as stale:
            current = stale.details.get("current")
            if current is None or len(current.events) < MAX_PROGRESS_ENTRIES:
                raise
        # The list is full: the write still happens (or fails on its own conditions), without its events.
        return write(condition, names, values)
