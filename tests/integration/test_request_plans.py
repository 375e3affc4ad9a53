"""A long plan kept on its own item beside its request record, on moto's DynamoDB: every read of the record has its
steps (a read, a query with the webhook bookkeeping, a write's answer, a refused write's record, a list), a short plan
stays in the record, and a planner whose write lost never replaces the plan that won."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from asyncagents.data.request_records import RequestRecords
from asyncagents.domain.errors import StaleWrite
from asyncagents.domain.statuses import Status
from tests.integration.requests_table import create_request, requests_table

pytestmark = pytest.mark.integration

TABLE = "request-plans"
TTL = 2_000_000_000


@pytest.fixture
def table() -> Iterator[tuple[Any, RequestRecords]]:
    with requests_table(TABLE) as made:
        yield made


def created(records: RequestRecords, request_id: str = "req_1") -> str:
    return create_request(records, request_id, execution_name="exec-1")


def plan_of(count: int, words: int) -> list[dict[str, Any]]:
    return [
        {"title": f"Step {i}", "instruction": " ".join(["look at the quarterly figures"] * words), "depends_on": []}
        for i in range(count)
    ]


def planned(records: RequestRecords, key: str, steps: list[dict[str, Any]], token: str) -> Any:
    return records.transition(
        key,
        to=Status.PROCESSING,
        allowed_from={Status.PENDING},
        set_fields={"steps": steps, "total_steps": len(steps), "planned_by": token},
        generation="exec-1",
        absent=("planned_by",),
        plan_ttl=TTL,
    )


def items(client: Any, key: str) -> dict[str, dict[str, Any]]:
    found = client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"REQ#{key}"}},
    )["Items"]
    return {item["sk"]["S"]: item for item in found}


def titles(record: Any) -> list[str]:
    return [step.title for step in record.steps]


def test_a_long_plan_is_kept_apart_and_every_read_has_its_steps(table):
    client, records = table
    key = created(records)
    steps = plan_of(6, 10)  # about 2 KB
    # When the plan is stored
    written = planned(records, key, steps, "tok_a")
    # Then the record does not carry it; its own item does, with a ttl
    stored = items(client, key)
    assert "steps" not in stored["REQUEST"] and stored["REQUEST"]["plan_apart"] == {"BOOL": True}
    assert len(stored["REQUEST#PLAN#tok_a"]["steps"]["L"]) == 6
    assert stored["REQUEST#PLAN#tok_a"]["ttl"] == {"N": str(TTL)}
    # And every read of the record has the steps, from this container and from a fresh one (nothing cached)
    expected = [f"Step {i}" for i in range(6)]
    assert titles(written) == expected
    fresh = RequestRecords(client, TABLE)
    for reader in (records, fresh):
        assert titles(reader.get(key)) == expected
        assert titles(reader.get(key, with_delivery=True)) == expected
    assert fresh.get(key).steps[3].instruction == steps[3]["instruction"]
    # A later write's answer, and the record a refused write carries
    assert titles(RequestRecords(client, TABLE).set_fields(key, {"status_message": "working"})) == expected
    with pytest.raises(StaleWrite) as refused:
        RequestRecords(client, TABLE).transition(key, to=Status.COMPLETED, allowed_from={Status.PENDING})
    assert titles(refused.value.details["current"]) == expected
    # And the list
    listed, _ = fresh.list_for_owner("key_1", "user", limit=5, cursor=None, status=None, now_epoch=0)
    assert [titles(r) for r in listed] == [expected]


def test_a_short_plan_stays_in_the_record(table):
    client, records = table
    key = created(records)
    written = planned(records, key, plan_of(2, 1), "tok_a")
    stored = items(client, key)
    assert set(stored) == {"REQUEST"} and len(stored["REQUEST"]["steps"]["L"]) == 2
    assert titles(written) == ["Step 0", "Step 1"]


def test_a_planner_whose_write_lost_never_replaces_the_plan_that_won(table):
    client, records = table
    key = created(records)
    # Given a plan stored by one attempt
    planned(records, key, plan_of(4, 10), "tok_won")
    # When another attempt, with a plan of its own, writes too late (the plan is stored once)
    with pytest.raises(StaleWrite) as refused:
        planned(RequestRecords(client, TABLE), key, plan_of(5, 12), "tok_lost")
    # Then the record still has the plan that won, read by anyone; the late one is an item no record names
    assert len(refused.value.details["current"].steps) == 4
    assert len(RequestRecords(client, TABLE).get(key).steps) == 4
    assert set(items(client, key)) == {"REQUEST", "REQUEST#PLAN#tok_won", "REQUEST#PLAN#tok_lost"}


def test_a_list_reads_the_plans_of_the_records_it_lists_only(table):
    client, records = table
    # Given three requests with long plans, one of them completed
    keys = [created(records, f"req_{n}") for n in range(3)]
    for n, key in enumerate(keys):
        planned(records, key, plan_of(n + 3, 10), f"tok_{n}")
    records.transition(keys[1], to=Status.COMPLETED, allowed_from={Status.PROCESSING})

    class Counting:
        plan_reads = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def batch_get_item(self, **arguments: Any) -> Any:
            asked = arguments["RequestItems"][TABLE]["Keys"]
            Counting.plan_reads += sum(k["sk"]["S"].startswith("REQUEST#PLAN#") for k in asked)
            return client.batch_get_item(**arguments)

    # When the completed ones are listed
    listed, _ = RequestRecords(Counting(), TABLE).list_for_owner(
        "key_1", "user", limit=10, cursor=None, status=Status.COMPLETED, now_epoch=0
    )
    # Then the one listed has its plan, and only its plan was read
    assert [(r.request_id, len(r.steps)) for r in listed] == [("req_1", 4)]
    assert Counting.plan_reads == 1


def test_the_container_that_stored_a_plan_never_reads_it_back(table):
    client, _ = table

    class Counting:
        plan_reads = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def get_item(self, **arguments: Any) -> Any:
            Counting.plan_reads += arguments["Key"]["sk"]["S"].startswith("REQUEST#PLAN#")
            return client.get_item(**arguments)

    records = RequestRecords(Counting(), TABLE)
    key = created(records)
    planned(records, key, plan_of(6, 10), "tok_a")
    records.set_fields(key, {"status_message": "working"})
    assert len(records.get(key).steps) == 6
    assert Counting.plan_reads == 0
    # (another container reads it once, then keeps it)
    other = RequestRecords(Counting(), TABLE)
    other.get(key)
    other.get(key)
    assert Counting.plan_reads == 1


def test_a_plan_apart_is_kept_longer_never_shorter_and_an_inline_one_gets_no_item(table):
    client, records = table
    key = created(records)
    planned(records, key, plan_of(6, 10), "tok_a")
    plan_key = {"pk": {"S": f"REQ#{key}"}, "sk": {"S": "REQUEST#PLAN#tok_a"}}

    def ttl() -> int:
        return int(client.get_item(TableName=TABLE, Key=plan_key)["Item"]["ttl"]["N"])

    # When it is kept later (a redrive), then earlier
    records.keep_run(key, planned_by="tok_a", lineage="exec-1", until=TTL + 500)
    assert ttl() == TTL + 500
    records.keep_run(key, planned_by="tok_a", lineage="exec-1", until=TTL)
    assert ttl() == TTL + 500
    # And a request whose plan is in its record gets no plan item from it
    short = created(records, "req_2")
    planned(records, short, plan_of(2, 1), "tok_b")
    records.keep_run(short, planned_by="tok_b", lineage="exec-1", until=TTL + 500)
    assert set(items(client, short)) == {"REQUEST"}


class PlanReads:
    """A DynamoDB client that counts the GetItems of plan items; with ``throttled``, refuses them as DynamoDB does
    when the partition is over its throughput."""

    def __init__(self, client: Any, *, throttled: bool = False) -> None:
        self._client = client
        self._throttled = throttled
        self.plan_gets = 0

    def get_item(self, **arguments: Any) -> Any:
        if arguments["Key"]["sk"]["S"].startswith("REQUEST#PLAN#"):
            self.plan_gets += 1
            if self._throttled:
                error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
                raise ClientError(error, "GetItem")
        return self._client.get_item(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_plan_that_is_gone_is_looked_for_once_and_a_plan_that_cannot_be_read_never_hides_a_refused_write(table):
    client, records = table
    key = created(records)
    planned(records, key, plan_of(6, 10), "tok_a")
    # Given a plan item that is gone (deleted past its ttl)
    client.delete_item(TableName=TABLE, Key={"pk": {"S": f"REQ#{key}"}, "sk": {"S": "REQUEST#PLAN#tok_a"}})
    # When the record is read with its webhook bookkeeping: the query that read it would have read its plan
    counting = PlanReads(client)
    assert RequestRecords(counting, TABLE).get(key, with_delivery=True).steps == []
    assert counting.plan_gets == 0
    # And read alone: its plan is looked for once
    assert RequestRecords(counting, TABLE).get(key).steps == []
    assert counting.plan_gets == 1
    # And a refused write whose plan cannot be read now (throttled) is still refused as stale, without the steps
    other = created(records, "req_2")
    planned(records, other, plan_of(6, 10), "tok_b")
    throttled = RequestRecords(PlanReads(client, throttled=True), TABLE)
    with pytest.raises(StaleWrite) as refused:
        throttled.transition(other, to=Status.COMPLETED, allowed_from={Status.PENDING})
    current = refused.value.details["current"]
    assert current.status is Status.PROCESSING and current.planned_by == "tok_b" and current.steps == []
