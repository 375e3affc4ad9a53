"""Spend caps on fake counters with DynamoDB's conditional semantics: a call reserves before it is made and
settles after, a cap without room stops the call and names itself, concurrent reservations never overspend, and a
new request past a cap is refused until the period resets."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from asyncagents.config import parse_formation
from asyncagents.domain.errors import BudgetExceeded, ConfigError, TooManyRequests
from asyncagents.domain.records import Usage
from asyncagents.domain.spend import NOTHING, Counted, Counter, SpendCaps, SpendMeter, Spent
from asyncagents.formation_spend import SpendSettings
from tests.unit.fakes import ManualClock, RecordingTelemetry

MODEL = "demo-clauses-v1"
PRICES = {MODEL: {"input_per_million": 3.0, "output_per_million": 15.0}}


class MemoryCounters:
    """``SpendCounters`` over a dict; every write atomic under one lock, as DynamoDB's conditional update is.
    ``fail_writes_on`` makes writes to that scope raise (a throttled table)."""

    def __init__(self) -> None:
        self.counted: dict[tuple[str, str], Counted] = {}
        self.fail_writes_on: str | None = None
        self._lock = threading.Lock()

    def reserve(self, counter: Counter, amount: Spent, *, room: dict[str, int]) -> bool:
        self._maybe_fail(counter)
        with self._lock:
            now = self.counted.get((counter.period_id, counter.scope), Counted())
            if any(getattr(now.total, measure) > most for measure, most in room.items()):
                return False
            self.counted[(counter.period_id, counter.scope)] = Counted(now.total + amount, now.held + amount)
            return True

    def add(self, counter: Counter, amount: Spent, *, held: Spent = NOTHING) -> None:
        self._maybe_fail(counter)
        with self._lock:
            key = (counter.period_id, counter.scope)
            now = self.counted.get(key, Counted())
            self.counted[key] = Counted(now.total + amount, now.held + held)

    def read(self, counters):
        wanted = {(c.period_id, c.scope) for c in counters}
        return {key: counted for key, counted in self.counted.items() if key in wanted}

    def scopes(self, period_id: str) -> dict[str, Counted]:
        return {scope: counted for (period, scope), counted in self.counted.items() if period == period_id}

    def total(self, period_id: str, scope: str) -> Spent:
        return self.counted[(period_id, scope)].total

    def _maybe_fail(self, counter: Counter) -> None:
        if counter.scope == self.fail_writes_on:
            raise RuntimeError("ProvisionedThroughputExceededException")


def caps_of(spend: dict, *, clock=None, telemetry=None, **options) -> tuple[SpendCaps, MemoryCounters]:
    counters = MemoryCounters()
    settings = SpendSettings.model_validate({"reserve_input_tokens": 500, **spend})
    caps = SpendCaps(
        settings,
        counters,
        model=MODEL,
        max_tokens=1000,
        clock=clock or ManualClock(datetime(2026, 12, 1, 18, 0, tzinfo=UTC)),
        **({"telemetry": telemetry} if telemetry else {}),
        **options,
    )
    return caps, counters


def test_a_call_reserves_then_settles_at_its_real_usage_and_its_price():
    # Given a key's daily cap in tokens and usd, and a price table
    caps, counters = caps_of({"prices": PRICES, "per_key": {"daily": {"tokens": 10_000, "usd": 1}}})
    # When a call reserves: it holds its input reservation, llm.max_tokens, and their price
    caps.reserve("key_a")
    held = counters.total("2026-12-01", "key_a")
    assert held == Spent(model_calls=1, tokens=1500, micro_usd=500 * 3 + 1000 * 15)
    # Then the call's real usage replaces the reservation
    caps.settle(Usage(input_tokens=120, output_tokens=40))
    assert counters.total("2026-12-01", "key_a") == Spent(model_calls=1, tokens=160, micro_usd=120 * 3 + 40 * 15)
    # And a failed call counts as a call (its tokens unknown), a call not made gives everything back
    caps.reserve("key_a")
    caps.settle(None)
    caps.reserve("key_a")
    caps.release()
    assert counters.total("2026-12-01", "key_a") == Spent(model_calls=2, tokens=160, micro_usd=960)
    assert ("2026-12-01", "formation") not in counters.counted  # no formation cap: nothing counted for it


def test_a_cap_without_room_stops_the_call_names_itself_and_holds_nothing_elsewhere():
    telemetry = RecordingTelemetry()
    caps, counters = caps_of(
        {"formation": {"daily": {"model_calls": 100}}, "per_key": {"monthly": {"model_calls": 2}}},
        telemetry=telemetry,
    )
    for _ in range(2):
        caps.reserve("key_a")
        caps.settle(Usage(input_tokens=1, output_tokens=1))
    with pytest.raises(BudgetExceeded) as stopped:
        caps.reserve("key_a")
    message = str(stopped.value)
    assert "API key key_a's monthly spend cap is reached" in message
    assert "(spend.per_key.monthly.model_calls: 2 calls; 2 calls spent; a call needs 1 call)" in message
    assert "until it resets at 2027-01-01T00:00:00" in message
    assert stopped.value.details["limit"] == "spend.per_key.monthly.model_calls"
    # The formation's counter, reserved first, got its reservation back
    assert counters.total("2026-12-01", "formation").model_calls == 2
    assert telemetry.values("SpendCapReached") == [1]
    # Another key is not stopped by key_a's cap
    caps.reserve("key_b")


def test_concurrent_calls_never_overspend_together():
    caps, counters = caps_of({"formation": {"daily": {"tokens": 1500 * 5 + 1499}}})
    admitted, stopped = [], []
    start = threading.Barrier(20)

    def call() -> None:
        start.wait()
        try:
            caps.reserve(f"key_{threading.get_ident()}")
        except BudgetExceeded:
            stopped.append(1)
            return
        admitted.append(1)
        time.sleep(0.01)
        caps.settle(Usage(input_tokens=1000, output_tokens=500))  # exactly its reservation

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(admitted), len(stopped)) == (5, 15)
    assert counters.total("2026-12-01", "formation").tokens == 7500  # under the cap, never past it


def test_a_new_request_past_a_cap_is_refused_until_the_period_resets():
    clock = ManualClock(datetime(2026, 12, 1, 23, 0, tzinfo=UTC))
    caps, _ = caps_of({"prices": PRICES, "per_key": {"daily": {"usd": 0.05}}}, clock=clock)
    caps.admit("key_a")  # nothing spent yet
    caps.reserve("key_a")
    caps.settle(Usage(input_tokens=1000, output_tokens=2100))  # $0.0345: no room for another $0.0165 reservation
    with pytest.raises(TooManyRequests) as refused:
        caps.admit("key_a")
    assert refused.value.retry_after_seconds == 3600  # midnight UTC
    assert refused.value.details["limit"] == "spend.per_key.daily.usd"
    assert refused.value.details["allowed"] == 0.05 and refused.value.details["spent"] == 0.0345
    assert "new requests are refused until it resets at 2026-12-02T00:00:00" in str(refused.value)
    caps.admit("key_b")
    # The next day the counter is a new one
    clock.advance(3600)
    caps.admit("key_a")


def test_admins_see_spent_and_remaining_for_the_formation_and_each_key():
    caps, _ = caps_of({"formation": {"monthly": {"model_calls": 10}}, "per_key": {"daily": {"model_calls": 4}}})
    for key in ("key_a", "key_a", "key_b"):
        caps.reserve(key)
        caps.settle(Usage(input_tokens=5, output_tokens=5))
    report = {(u.scope, u.period): u for u in caps.usage()}
    assert set(report) == {("key_a", "daily"), ("key_b", "daily"), ("formation", "monthly")}  # the capped ones
    assert report[("key_a", "daily")].remaining == {"model_calls": 2}
    assert report[("key_a", "daily")].spent["model_calls"] == 2 and report[("key_a", "daily")].held["tokens"] == 0
    assert report[("formation", "monthly")].spent["model_calls"] == 3
    assert report[("formation", "monthly")].resets_at.startswith("2027-01-01T00:00:00")
    assert {u.scope for u in caps.usage("key_b")} == {"formation", "key_b"}


def test_a_meter_settles_each_provider_call():
    caps, counters = caps_of({"per_key": {"daily": {"tokens": 100_000}}})

    class Provider:
        name = "fake"

        def plan(self, message, **options):
            from asyncagents.domain.agents import Plan

            return Plan(steps=[], usage=Usage(input_tokens=7, output_tokens=3))

        def finish(self, message, outputs, clarifications=None):
            raise RuntimeError("the provider failed")

    metered = SpendMeter(Provider(), caps)
    caps.reserve("key_a")
    metered.plan("hello")
    caps.reserve("key_a")
    with pytest.raises(RuntimeError):
        metered.finish("hello", [])
    assert counters.total("2026-12-01", "key_a") == Spent(model_calls=2, tokens=10)


@pytest.mark.parametrize(
    ("spend", "expected"),
    [
        ({"per_key": {"daily": {"usd": 2}}}, "spend.per_key.daily.usd: a cap in usd needs spend.prices.demo-clauses"),
        ({"formation": {"monthly": {"tokens": 100}}}, "spend.formation.monthly.tokens: 100 is less than one call's"),
        (
            {
                "prices": {MODEL: {"input_per_million": 1, "output_per_million": 1}},
                "formation": {"daily": {"usd": 1e-3}},
            },
            "spend.formation.daily.usd: 0.001 is less than one call's reservation",
        ),
        ({"per_key": {"daily": {"model_calls": 0}}}, "spend.per_key.daily.model_calls: Input should be greater"),
    ],
)
def test_caps_no_call_could_ever_meet_are_refused_with_their_path(spend, expected):
    with pytest.raises(ConfigError) as refused:
        parse_formation({"spend": spend})
    assert expected in str(refused.value)


def test_a_reservation_left_by_a_call_never_made_is_given_back_by_the_next():
    caps, counters = caps_of({"per_key": {"daily": {"model_calls": 2}}})
    caps.reserve("key_a")  # and the call is never made nor reported (an error between the two)
    caps.reserve("key_a")
    caps.settle(Usage(input_tokens=1, output_tokens=1))
    assert counters.total("2026-12-01", "key_a").model_calls == 1


def test_calls_in_flight_make_a_call_wait_for_their_settling_not_fail():
    # Given a cap with room for two reservations, both held by calls in flight (their threads)
    caps, counters = caps_of({"per_key": {"daily": {"tokens": 3000}}})
    settle_now, settled = threading.Event(), threading.Barrier(3)

    def in_flight() -> None:
        caps.reserve("key_a")
        settle_now.wait()
        caps.settle(Usage(input_tokens=80, output_tokens=20))  # far less than they held
        settled.wait()

    threads = [threading.Thread(target=in_flight) for _ in range(2)]
    for thread in threads:
        thread.start()
    wait_for_counted = time.monotonic() + 5
    while counters.total("2026-12-01", "key_a").model_calls < 2 and time.monotonic() < wait_for_counted:
        time.sleep(0.01)
    waits = []

    def sleep(seconds: float) -> None:  # the first wait lets the calls in flight settle
        waits.append(seconds)
        if not settle_now.is_set():
            settle_now.set()
            settled.wait()

    caps._sleep = sleep
    # When a third call reserves: refused by the holds alone, it waits, and then gets in
    caps.reserve("key_a")
    for thread in threads:
        thread.join()
    assert waits and counters.total("2026-12-01", "key_a") == Spent(model_calls=3, tokens=1700)


def test_a_wait_for_calls_in_flight_ends_at_its_deadline_and_names_them():
    clock = {"now": 1000.0}
    caps, _ = caps_of(
        {"per_key": {"daily": {"tokens": 3000}}},
        now=lambda: clock["now"],
        sleep=lambda seconds: clock.update(now=clock["now"] + seconds),
    )
    for _ in range(2):  # two calls in flight on threads of their own, never settled (their runs died)
        holder = threading.Thread(target=lambda: caps.reserve("key_a"))
        holder.start()
        holder.join()
    with pytest.raises(BudgetExceeded) as stopped:
        caps.reserve("key_a", wait_until=1030.0)
    assert clock["now"] >= 1025.0  # it waited, then gave up before its deadline
    assert "held by calls in flight" in str(stopped.value)


def test_the_reservation_grows_with_the_text_a_call_sends():
    caps, counters = caps_of({"per_key": {"daily": {"tokens": 100_000}}})
    assert caps.amount_for(0).tokens == 500 + 1000
    assert caps.amount_for(30_000).tokens == 500 + 10_000 + 1000  # a token per three bytes
    caps.reserve("key_a", input_bytes=30_000)
    assert counters.total("2026-12-01", "key_a").tokens == 11_500


def test_a_counter_that_cannot_be_written_holds_nothing_anywhere():
    caps, counters = caps_of({"formation": {"daily": {"model_calls": 10}}, "per_key": {"daily": {"model_calls": 10}}})
    counters.fail_writes_on = "key_a"
    with pytest.raises(RuntimeError):
        caps.reserve("key_a")
    assert counters.counted[("2026-12-01", "formation")] == Counted()  # the formation's hold given back


def test_a_settle_that_cannot_be_written_keeps_the_calls_result():
    caps, counters = caps_of({"per_key": {"daily": {"tokens": 100_000}}})

    class Provider:
        name = "fake"

        def plan(self, message, **options):
            from asyncagents.domain.agents import Plan

            return Plan(steps=[], usage=Usage(input_tokens=7, output_tokens=3))

    caps.reserve("key_a")
    counters.fail_writes_on = "key_a"
    assert SpendMeter(Provider(), caps).plan("hello").usage.output_tokens == 3  # the paid call is kept
    assert counters.counted[("2026-12-01", "key_a")].held.tokens == 1500  # the reservation stays (safe side)


def test_a_new_request_is_told_the_latest_reset_of_the_caps_it_is_past():
    clock = ManualClock(datetime(2026, 12, 1, 23, 0, tzinfo=UTC))
    caps, _ = caps_of(
        {"formation": {"daily": {"model_calls": 1}}, "per_key": {"monthly": {"model_calls": 1}}}, clock=clock
    )
    caps.reserve("key_a")
    caps.settle(Usage(input_tokens=1, output_tokens=1))
    with pytest.raises(TooManyRequests) as refused:
        caps.admit("key_a")
    assert refused.value.details["limit"] == "spend.per_key.monthly.model_calls"  # midnight would be too early
    assert refused.value.retry_after_seconds == 3600 + 30 * 86_400
