"""The counters behind a key's limits, on moto's DynamoDB: the conditions are DynamoDB's, not a fake's."""

from __future__ import annotations

import pytest

from asyncagents.data.limit_counters import RateWindows, SlotPools
from tests.stack_fixture import stack_fixture

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


def table_items(stack, prefix: str) -> list[dict]:
    items = stack.client("dynamodb").scan(TableName=stack.table_name)["Items"]
    return [item for item in items if item["pk"]["S"].startswith(prefix)]


def test_a_window_counts_up_to_its_limit_and_is_forgotten_by_ttl(stack):
    windows = RateWindows(stack.client("dynamodb"), stack.table_name)
    assert [windows.hit("key_w", 100, limit=3, forget_after=160) for _ in range(4)] == [True, True, True, False]
    assert windows.hit("key_w", 101, limit=3, forget_after=161)
    assert windows.hit("key_other", 100, limit=3, forget_after=160)
    counted = {item["sk"]["S"]: item for item in table_items(stack, "RATE#key_w")}
    assert counted["100"]["calls"] == {"N": "3"} and counted["100"]["ttl"] == {"N": "160"}


def test_a_pool_holds_at_most_its_size_and_claims_and_releases_are_idempotent(stack):
    slots = SlotPools(stack.client("dynamodb"), stack.table_name)
    assert slots.claim("p1", "a", most=2) and slots.claim("p1", "b", most=2)
    assert not slots.claim("p1", "c", most=2)
    assert slots.claim("p1", "a", most=2)  # a member already held is not refused
    slots.release("p1", "a")
    slots.release("p1", "a")
    assert slots.members("p1") == {"b"}
    assert slots.claim("p1", "c", most=2)
    slots.release("p1", "b")
    slots.release("p1", "c")
    assert slots.members("p1") == set() and slots.claim("p1", "d", most=1)


def test_a_release_in_a_pool_never_claimed_from_writes_nothing(stack):
    slots = SlotPools(stack.client("dynamodb"), stack.table_name)
    slots.release("never", "x")
    assert table_items(stack, "SLOTS#never") == []
    assert not slots.start_check("never", now=1000, every=10)


def test_one_look_for_leaked_slots_per_interval(stack):
    slots = SlotPools(stack.client("dynamodb"), stack.table_name)
    slots.claim("p2", "a", most=1)
    assert slots.start_check("p2", now=1000, every=10)
    assert not slots.start_check("p2", now=1009, every=10)
    assert slots.start_check("p2", now=1010, every=10)


def test_spend_counters_refuse_a_reservation_without_room_and_list_a_periods_scopes(stack):
    from datetime import UTC, datetime

    from asyncagents.data.spend_counters import SpendCounterItems
    from asyncagents.domain.spend import FORMATION, Counted, Counter, Spent
    from asyncagents.formation_spend import PeriodCaps

    counters = SpendCounterItems(stack.client("dynamodb"), stack.table_name)
    caps = PeriodCaps(model_calls=2, tokens=1000)
    day = Counter("key_s", "daily", "2030-01-02", caps, datetime(2030, 1, 3, tzinfo=UTC))
    held = Spent(model_calls=1, tokens=400, micro_usd=7)
    room = day.room_for(held)  # model_calls <= 1 and tokens <= 600 before adding
    assert counters.reserve(day, held, room=room)
    assert counters.reserve(day, held, room=room)
    assert not counters.reserve(day, held, room=room)  # both measures full now
    assert counters.read([day])[("2030-01-02", "key_s")] == Counted(Spent(2, 800, 14), held=Spent(2, 800, 14))
    # One call settles below its reservation (100 tokens, no cost), the other gives its reservation back
    counters.add(day, Spent(model_calls=0, tokens=-300, micro_usd=-7), held=Spent(-1, -400, -7))
    counters.add(day, Spent(-1, -400, -7), held=Spent(-1, -400, -7))
    assert counters.read([day]) == {("2030-01-02", "key_s"): Counted(Spent(model_calls=1, tokens=100))}
    assert counters.reserve(day, held, room=room)
    assert not counters.reserve(day, held, room=room)  # tokens have room, calls do not
    formation = Counter(FORMATION, "daily", "2030-01-02", PeriodCaps(tokens=10_000), day.resets_at)
    assert counters.reserve(formation, held, room=formation.room_for(held))
    scopes = counters.scopes("2030-01-02")
    assert scopes["key_s"].total == Spent(2, 500, 7) and scopes[FORMATION] == Counted(held, held)
    item = next(i for i in table_items(stack, "SPEND#2030-01-02") if i["sk"]["S"] == "KEY#key_s")
    assert int(item["ttl"]["N"]) == day.forget_at > day.resets_at.timestamp()
