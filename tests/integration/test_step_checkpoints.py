"""The outputs of finished steps on moto's DynamoDB, as a redrive keeps them and a run checks them: kept longer, never
shorter, never written back once swept; and a step whose output is gone counted not done, only by the run that owns
the request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from asyncagents.data.request_records import RequestRecords
from asyncagents.data.step_checkpoints import StepCheckpoints
from asyncagents.domain.errors import StaleWrite
from asyncagents.domain.records import Usage
from asyncagents.domain.statuses import Status
from tests.integration.requests_table import create_request, requests_table

pytestmark = pytest.mark.integration

TABLE = "step-checkpoints"
TTL = 2_000_000_000
LINEAGE = "exec-1"


@pytest.fixture
def table() -> Iterator[tuple[Any, RequestRecords]]:
    with requests_table(TABLE) as made:
        yield made


def stored(checkpoints: StepCheckpoints, key: str, *indexes: int) -> None:
    for index in indexes:
        output = {"index": index, "title": f"Step {index}", "text": "done", "attempts": 1}
        checkpoints.put_output(key, LINEAGE, index, output, ttl=TTL + index)


def ttls(client: Any, key: str) -> dict[str, int]:
    found = client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :step)",
        ExpressionAttributeValues={":pk": {"S": f"REQ#{key}"}, ":step": {"S": "STEP#"}},
    )["Items"]
    return {item["sk"]["S"]: int(item["ttl"]["N"]) for item in found}


class Writes:
    """A DynamoDB client that counts its UpdateItems (each is billed, refused or not); with ``sweep``, the first finds
    its item deleted just before (DynamoDB's TTL swept it after the query); with ``kept_longer_by_another``, kept
    until then by another redrive just before."""

    def __init__(self, client: Any, *, sweep: bool = False, kept_longer_by_another: int | None = None) -> None:
        self._client = client
        self.swept = not sweep
        self._longer = kept_longer_by_another
        self.updates = 0

    def update_item(self, **arguments: Any) -> Any:
        self.updates += 1
        if not self.swept:
            self.swept = True
            self._client.delete_item(TableName=arguments["TableName"], Key=arguments["Key"])
        if self._longer is not None:
            longer, self._longer = self._longer, None
            self._client.update_item(
                TableName=arguments["TableName"],
                Key=arguments["Key"],
                UpdateExpression="SET #ttl = :longer",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":longer": {"N": str(longer)}},
            )
        return self._client.update_item(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_redrive_keeps_the_outputs_longer_never_shorter_and_never_writes_back_one_swept(table):
    client, records = table
    key = create_request(records, "req_1")
    checkpoints = StepCheckpoints(client, TABLE)
    stored(checkpoints, key, 0, 1, 2)
    assert checkpoints.stored_indexes(key, LINEAGE) == {0, 1, 2}
    # When they are kept until a moment between their ttls: only those that ended sooner are written
    counted = Writes(client)
    assert StepCheckpoints(counted, TABLE).keep(key, LINEAGE, until=TTL + 1) == 1
    assert counted.updates == 1
    assert sorted(ttls(client, key).values()) == [TTL + 1, TTL + 1, TTL + 2]
    # And kept later, while one is swept between the read and its write: the others are kept, the swept one stays gone
    racing = Writes(client, sweep=True)
    assert StepCheckpoints(racing, TABLE).keep(key, LINEAGE, until=TTL + 500) == 2
    assert racing.swept and checkpoints.stored_indexes(key, LINEAGE) == {1, 2}
    assert sorted(ttls(client, key).values()) == [TTL + 500, TTL + 500]
    # And while another redrive keeps one longer between the read and the write, that one is not shortened
    later = Writes(client, kept_longer_by_another=TTL + 700)
    assert StepCheckpoints(later, TABLE).keep(key, LINEAGE, until=TTL + 600) == 1
    assert sorted(ttls(client, key).values()) == [TTL + 600, TTL + 700]
    # And through the records (a redrive's one call): the plan kept in the record needs no write of its own
    records.keep_run(key, planned_by="tok", lineage=LINEAGE, until=TTL + 900)
    assert sorted(ttls(client, key).values()) == [TTL + 900, TTL + 900]


def test_steps_whose_outputs_are_gone_are_counted_not_done_only_by_the_run_that_owns_the_request(table):
    _, records = table
    key = create_request(records, "req_1", execution_name=LINEAGE)
    steps = [{"title": f"Step {i}", "instruction": "do it"} for i in range(3)]
    records.transition(
        key, to=Status.PROCESSING, allowed_from={Status.PENDING}, set_fields={"steps": steps}, generation=LINEAGE
    )
    for index in (0, 1):
        records.count_step_done(key, index, generation=LINEAGE, message="done", usage=Usage())
    # Another execution (an old one, after a redrive) cannot, nor can a step that is not done be forgotten
    with pytest.raises(StaleWrite):
        records.forget_done(key, [0], generation="exec-old")
    with pytest.raises(StaleWrite):
        records.forget_done(key, [0, 2], generation=LINEAGE)
    assert records.get(key).done_steps == {0, 1}
    # The run that owns it counts them not done, once
    forgotten = records.forget_done(key, [0, 1], generation=LINEAGE)
    assert forgotten.done_steps == set() and forgotten.completed_steps == 0
    with pytest.raises(StaleWrite):
        records.forget_done(key, [1], generation=LINEAGE)
    # And they can be counted done again when they ran again
    again = records.count_step_done(key, 1, generation=LINEAGE, message="done", usage=Usage())
    assert again.done_steps == {1} and again.completed_steps == 1
