"""Request records in the requests table: create, read, list, and every conditional status write.

Every status write is conditional on the current status; a lost condition raises ``StaleWrite`` carrying the
record as it is now, read by the same call. A step's start and its counting as done are writes to the request
record too (its output lives in ``StepCheckpoints``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import conditional_write, error_code, from_item, serialize, to_item, update_arguments
from asyncagents.data.request_items import record_of
from asyncagents.data.table_keys import (
    REQUEST_SK,
    REQUESTER,
    open_shard,
    owner_of,
    remembered_key,
    request_item_key,
    request_pk,
)
from asyncagents.domain.errors import RequestExpired, StaleWrite, StoreContention
from asyncagents.domain.progress import MAX_PROGRESS_ENTRIES, EventType, entry, transition_entry
from asyncagents.domain.records import RequestRecord, Usage, usage_increments
from asyncagents.domain.statuses import WORKING, Status
from asyncagents.domain.times import iso, utc_now
from asyncagents.logs import about_request

_WORKING_VALUES = {f":working{i}": serialize(status.value) for i, status in enumerate(sorted(WORKING))}
_WORKING_CONDITION = f"#status IN ({', '.join(_WORKING_VALUES)}) AND execution_name = :generation"


def named(record: RequestRecord) -> RequestRecord:
    about_request(record.request_id)  # the function's log lines from here on name the request it works on
    return record


# The entry a record written before events were recorded starts its list with (``progress_events``).
_FIRST_ENTRY_OF_OLDER_RECORDS = serialize([{"type": EventType.ACCEPTED.value}])


class RequestRecords:
    """Access to request records. ``client`` is a boto3 DynamoDB client; ``clock`` dates the events that
    writes append (``domain.progress``)."""

    def __init__(self, client: Any, table_name: str, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def create(
        self, fields: dict[str, Any], *, now_epoch: float, remembered_until: float | None = None
    ) -> RequestRecord | None:
        """Write a new request unless a live one has the same key.

        Returns ``None`` when written, or the existing record (read by the same call) when the key is
        taken. A record past its retention may be replaced: its result is no longer readable anyway, unless
        the request was named by its client and ``remembered_until`` (written with it, in one transaction) has
        not passed: then the name is taken (``RequestExpired``), so a late retry never runs the work again.
        """
        item = {
            **{name: value for name, value in fields.items() if name != "request_key"},
            "pk": request_pk(fields["request_key"]),
            "sk": REQUEST_SK,
            REQUESTER: owner_of(fields["key_id"], fields["user_id"]),
            "open_shard": open_shard(fields["request_key"]),  # in the Unfinished index until it ends
            "events": [
                entry(
                    EventType.ACCEPTED,
                    fields["created_at"],
                    status=Status(fields["status"]),
                    message=fields.get("status_message"),
                )
            ],
        }
        put = {
            "TableName": self._table,
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
            "ExpressionAttributeValues": {":now": serialize(now_epoch)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if remembered_until is not None:
            return self._create_remembered(put, fields, now_epoch=now_epoch, until=remembered_until)
        try:
            with conditional_write("the request id is taken", record_of):
                self._client.put_item(**put)
        except StaleWrite as taken:
            existing: RequestRecord | None = taken.details.get("current")
            if existing is None:
                raise
            return existing
        return None

    def _create_remembered(
        self, put: dict[str, Any], fields: dict[str, Any], *, now_epoch: float, until: float
    ) -> RequestRecord | None:
        key = remembered_key(fields["request_key"])
        remembered = {
            **key,
            "request_id": serialize(fields["request_id"]),
            "created_at": serialize(fields["created_at"]),
            "remembered_until": serialize(until),
            "ttl": serialize(int(until) + 1),
        }
        remember = {
            "TableName": self._table,
            "Item": remembered,
            "ConditionExpression": "attribute_not_exists(pk) OR remembered_until <= :now",
            "ExpressionAttributeValues": {":now": serialize(now_epoch)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            self._client.transact_write_items(TransactItems=[{"Put": put}, {"Put": remember}])
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            reasons: list[dict[str, Any]] = list(error.response.get("CancellationReasons") or [{}, {}])  # type: ignore[arg-type]
            record_reason, remembered_reason = reasons
            if record_reason.get("Code") == "ConditionalCheckFailed" and record_reason.get("Item"):
                return record_of(record_reason["Item"])
            if remembered_reason.get("Code") == "ConditionalCheckFailed":
                taken_until = from_item(remembered_reason.get("Item") or {}).get("remembered_until", until)
                raise RequestExpired.of(
                    fields["request_id"], iso(datetime.fromtimestamp(float(taken_until), UTC))
                ) from None
            raise StoreContention("the request was being written by another call; try again") from None
        return None

    def get(self, request_key: str) -> RequestRecord | None:
        response = self._client.get_item(TableName=self._table, Key=request_item_key(request_key), ConsistentRead=True)
        item = response.get("Item")
        return named(record_of(item)) if item else None

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
    ) -> RequestRecord:
        """Move a request to ``to`` if its current status is one of ``allowed_from`` (and, for workflow
        writers, if it is still the ``generation`` they work for, and its ``expected`` attributes still
        have those values, a missing one counting as 0); ``increments`` are added atomically, and the
        write's event (``event``, by default the terminal status's or ``status``) is appended. Returns the
        new record."""
        allowed = set(allowed_from)
        sources = sorted(status.value for status in allowed)
        values: dict[str, Any] = {f":from{i}": serialize(value) for i, value in enumerate(sources)}
        condition = f"#status IN ({', '.join(values)})"
        if generation is not None:
            condition += " AND execution_name = :generation"
            values[":generation"] = serialize(generation)
        names: dict[str, str] = {}
        for i, (name, value) in enumerate((expected or {}).items()):
            names[f"#e{i}"] = name
            values[f":e{i}"] = serialize(value)
            if value == 0 and not isinstance(value, bool):
                # A counter that was never written is 0 (items older than the counter lack it).
                condition += f" AND (attribute_not_exists(#e{i}) OR #e{i} = :e{i})"
            else:
                condition += f" AND #e{i} = :e{i}"
        fields = {**(set_fields or {}), "status": to.value}
        removals = list(remove_fields)
        # The sparse Unfinished index holds exactly the requests that are not terminal.
        if to.is_terminal:
            removals.append("open_shard")
        elif any(status.is_terminal for status in allowed):
            fields["open_shard"] = open_shard(request_key)
        return self._update(
            request_key,
            set_fields=fields,
            remove_fields=removals,
            condition=condition,
            names=names,
            values=values,
            increments=increments,
            event=transition_entry(to, self._clock(), fields, event),
            # Status changes are always recorded (there are few of them): only step progress is capped.
            capped=False,
        )

    def set_fields(self, request_key: str, fields: dict[str, Any], *, only_in: Iterable[Status] = ()) -> RequestRecord:
        """Update descriptive attributes of a request (never its status), optionally only in statuses ``only_in``."""
        statuses = sorted(status.value for status in only_in)
        values: dict[str, Any] = {f":in{i}": serialize(value) for i, value in enumerate(statuses)}
        condition = f"#status IN ({', '.join(values)})" if values else "attribute_exists(pk)"
        return self._update(request_key, set_fields=fields, condition=condition, values=values)

    def start_step(
        self, request_key: str, index: int, *, generation: str, title: str, message: str, derived: bool = False
    ) -> RequestRecord:
        """Mark step ``index`` running, count the attempt and the model call it is about to make (one write), while
        the request works for ``generation`` and the step is not done; else ``StaleWrite`` (with the record).
        ``derived``: the message is the one the event replay makes from the step, and its entry leaves it out."""
        return self._update(
            request_key,
            set_fields={"current_step": title, "status_message": message},
            increments={"model_calls": 1},
            extra_adds=["#attempts.#step :one"],
            condition=f"{_WORKING_CONDITION} AND NOT contains(#done, :index)",
            names={"#attempts": "step_attempts", "#step": str(index), "#done": "done_steps"},
            values={
                **_WORKING_VALUES,
                ":one": serialize(1),
                ":index": serialize(index),
                ":generation": serialize(generation),
            },
            stale_message="the step cannot start",
            event=entry(
                EventType.STEP_STARTED, self._clock(), message=None if derived else message, step=index, title=title
            ),
        )

    def count_step_done(
        self, request_key: str, index: int, *, generation: str, message: str, usage: Usage, derived: bool = False
    ) -> None:
        """Count step ``index`` done (and its tokens) while the request works for ``generation``, the step is not
        counted yet, and it has no open question (a step that asked is done only when it runs again with the answer:
        an earlier attempt of it that outlived its timeout cannot finish it meanwhile). ``derived``: as start_step."""
        self._update(
            request_key,
            set_fields={"status_message": message},
            increments={"completed_steps": 1, **usage_increments(usage)},
            extra_adds=["#done :index_set"],
            condition=(
                f"{_WORKING_CONDITION} AND NOT contains(#done, :index) AND attribute_not_exists(#questions.#step)"
            ),
            names={"#done": "done_steps", "#questions": "questions", "#step": str(index)},
            values={
                **_WORKING_VALUES,
                ":index_set": {"NS": [str(index)]},
                ":index": serialize(index),
                ":generation": serialize(generation),
            },
            stale_message="the step's result was not counted: the request moved on",
            event=entry(EventType.STEP_COMPLETED, self._clock(), message=None if derived else message, step=index),
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
        stale_message: str = "the request changed before this write",
        event: dict[str, Any] | None = None,
        capped: bool = True,
    ) -> RequestRecord:
        """One conditional UpdateItem; ``event`` is appended to the record's events in the same write (past
        ``MAX_PROGRESS_ENTRIES`` entries a ``capped`` event is left out and the write made without it)."""
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
                names=names,
                values=values,
            )
            with conditional_write(stale_message, record_of):
                response = self._client.update_item(
                    TableName=self._table,
                    Key=request_item_key(request_key),
                    ConditionExpression=condition,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **arguments,
                )
            return named(record_of(response["Attributes"]))

        if event is None:
            return write(condition, names, values)
        append = ["#events = list_append(if_not_exists(#events, :first_events), :event)"]
        event_names = {**names, "#events": "events"}
        event_values = {**values, ":event": serialize([event]), ":first_events": _FIRST_ENTRY_OF_OLDER_RECORDS}
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
        # The list is full: the write still happens (or fails on its own conditions), without its event.
        return write(condition, names, values)

    def unfinished(self, *, created_before: str) -> Iterator[str]:
        """The keys of requests that are not terminal and were created before ``created_before`` (ISO)."""
        from asyncagents.data import request_index  # the sweeper's and the list route's: off other cold paths

        return request_index.unfinished(self._client, self._table, created_before=created_before)

    def list_for_owner(
        self, key_id: str, user_id: str, *, limit: int, cursor: str | None, status: Status | None, now_epoch: float
    ) -> tuple[list[RequestRecord], str | None]:
        """The owner's live requests, newest first (``status`` only, when given), and the next page's cursor."""
        from asyncagents.data.request_index import owner_page

        return owner_page(
            self._client, self._table, key_id, user_id, limit=limit, cursor=cursor, status=status, now_epoch=now_epoch
        )
