"""Request records in the requests table: create, read, list, and every conditional status write.

Every status write is conditional on the current status; a lost condition raises ``StaleWrite`` carrying the
record as it is now, read by the same call. The updates themselves, and a step's start and its counting as done,
are ``RequestUpdates`` (a step's output lives in ``StepCheckpoints``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import conditional_write, error_code, from_item, serialize, to_item
from asyncagents.data.event_entries import stored
from asyncagents.data.request_items import record_of, with_webhook_state
from asyncagents.data.request_plans import PLAN_APART, kept_apart, plan_item
from asyncagents.data.request_updates import RequestUpdates, named
from asyncagents.data.table_keys import (
    LISTED_FOR,
    REQUEST_SK,
    WEBHOOK_STATE_SK,
    open_shard,
    owner_of,
    remembered_key,
    request_item_key,
    request_pk,
    webhook_state_key,
)
from asyncagents.domain.errors import RequestExpired, StaleWrite, StoreContention
from asyncagents.domain.progress import EventType, entry, transition_entry
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.statuses import Status
from asyncagents.domain.times import iso, utc_now


class RequestRecords(RequestUpdates):
    """Access to request records. ``client`` is a boto3 DynamoDB client; ``clock`` dates the events that
    writes append (``domain.progress``)."""

    def __init__(self, client: Any, table_name: str, *, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__(client, table_name, clock=clock)

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
            LISTED_FOR: owner_of(fields["key_id"], fields["user_id"]),  # in the list index (keys only)
            "open_shard": open_shard(fields["request_key"]),  # in the Unfinished index until it ends
            "events": [
                stored(
                    entry(
                        EventType.ACCEPTED,
                        fields["created_at"],
                        status=Status(fields["status"]),
                        message=fields.get("status_message"),
                    )
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
            with conditional_write("the request id is taken", self._refused):
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
                return self._record(record_reason["Item"])
            if remembered_reason.get("Code") == "ConditionalCheckFailed":
                taken_until = from_item(remembered_reason.get("Item") or {}).get("remembered_until", until)
                raise RequestExpired.of(
                    fields["request_id"], iso(datetime.fromtimestamp(float(taken_until), UTC))
                ) from None
            raise StoreContention("the request was being written by another call; try again") from None
        return None

    def get(self, request_key: str, *, with_delivery: bool = False) -> RequestRecord | None:
        """The record; ``with_delivery``: with its webhook bookkeeping too (both items of the partition whose sort
        key starts with ``REQUEST``, in one consistent query: the step checkpoints sort after them)."""
        if not with_delivery:
            response = self._client.get_item(
                TableName=self._table, Key=request_item_key(request_key), ConsistentRead=True
            )
            found = response.get("Item")
            return named(self._record(found)) if found else None
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :record)",
            ExpressionAttributeValues={":pk": serialize(request_pk(request_key)), ":record": serialize(REQUEST_SK)},
            ConsistentRead=True,
        )
        items = {item["sk"]["S"]: item for item in response.get("Items", [])}
        record = items.get(REQUEST_SK)
        if record is None:
            return None
        record = self._plans.with_plan(record, items.get)  # a plan kept apart came with the query
        return named(record_of(with_webhook_state(record, items.get(WEBHOOK_STATE_SK))))

    def set_webhook_state(self, record: RequestRecord, fields: dict[str, Any]) -> None:
        """Record a webhook delivery's outcome (``webhook_*`` fields) on the request's own bookkeeping item: the
        record is not rewritten. Forgotten with the record (its ``ttl``, once it has one). An item left by an
        earlier request under the same key (expired, not swept yet) is replaced whole, never merged into."""
        state = {**fields, "of_created_at": record.created_at}
        ttl = math.ceil(record.expires_at) if record.expires_at is not None else None
        names = {f"#f{i}": name for i, name in enumerate(state)}
        values = {f":f{i}": serialize(value) for i, value in enumerate(state.values())}
        expression = "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(state)))
        if ttl is None:
            expression += " REMOVE #ttl"
        else:
            expression += ", #ttl = :ttl"
            values[":ttl"] = serialize(ttl)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=webhook_state_key(record.request_key),
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(pk) OR #created = :created",
                ExpressionAttributeNames={**names, "#ttl": "ttl", "#created": "of_created_at"},
                ExpressionAttributeValues={**values, ":created": serialize(record.created_at)},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            item = {**webhook_state_key(record.request_key), **to_item(state)}
            if ttl is not None:
                item["ttl"] = serialize(ttl)
            self._client.put_item(TableName=self._table, Item=item)

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
    ) -> RequestRecord:
        """Move a request to ``to`` if its current status is one of ``allowed_from`` (and, for workflow
        writers, if it is still the ``generation`` they work for, and its ``expected`` attributes still
        have those values, a missing one counting as 0); ``increments`` are added atomically, and the
        write's event (``event``, by default the terminal status's or ``status``) is appended, then
        ``then_events`` (``domain.progress`` entries of what else the write does); ``absent``: attributes the
        record must not have yet. A long plan (``steps``, set with its ``planned_by``) is written first on its
        own item, forgotten at ``plan_ttl`` (``data.request_plans``). Returns the new record."""
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
        for i, name in enumerate(absent):
            names[f"#n{i}"] = name
            condition += f" AND attribute_not_exists(#n{i})"
        fields = {**(set_fields or {}), "status": to.value}
        if plan_ttl is not None and fields.get("planned_by") and kept_apart(fields.get("steps") or []):
            # The plan first: a record that names it always has it. A write that then loses leaves an item no
            # record names (its token is its own), forgotten at its ttl.
            item = plan_item(request_key, str(fields["planned_by"]), fields.pop("steps"), ttl=plan_ttl)
            self._client.put_item(TableName=self._table, Item=item)
            self._plans.written(item)
            fields[PLAN_APART] = True
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
            events=[transition_entry(to, self._clock(), fields, event), *then_events],
            # Status changes are always recorded (there are few of them): only step progress is capped.
            capped=False,
        )

    def keep_run(self, request_key: str, *, planned_by: str | None, lineage: str, until: int) -> None:
        """Keep what a new run of the request works from until ``until`` at least (epoch seconds; never shortened):
        the plan stored by the write ``planned_by`` if it has an item of its own, and the outputs of the steps of
        ``lineage`` finished already (one write each)."""
        from asyncagents.data.step_checkpoints import StepCheckpoints  # a redrive's: off the other paths

        if planned_by:
            self._plans.keep(request_key, planned_by, until=until)
        StepCheckpoints(self._client, self._table).keep(request_key, lineage, until=until)

    def set_fields(self, request_key: str, fields: dict[str, Any], *, only_in: Iterable[Status] = ()) -> RequestRecord:
        """Update descriptive attributes of a request (never its status), optionally only in statuses ``only_in``."""
        statuses = sorted(status.value for status in only_in)
        values: dict[str, Any] = {f":in{i}": serialize(value) for i, value in enumerate(statuses)}
        condition = f"#status IN ({', '.join(values)})" if values else "attribute_exists(pk)"
        return self._update(request_key, set_fields=fields, condition=condition, values=values)

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
