"""Daily and monthly spend caps (seed 002: "Budget caps per agent ... Hard limits"), for the whole formation and
for each API key: model calls, tokens and an estimated cost from the formation's price table.

Before a model call is made it **reserves** what it may cost against every cap that applies (one call, its input
reservation plus ``llm.max_tokens``, their price): a conditional counter write that succeeds only while the
counter has room for the reservation, so concurrent calls, each holding its own, can never overspend together.
When the call returns, its real usage **settles** the reservation (the counter moves by the difference); a call
that is not made after all gives its reservation back. A call that fails still counts as a call (its tokens are
unknown: none). A run that dies between the two leaves its reservation counted, which errs on the safe side
until the period ends.

Periods are UTC days and months. A request whose next call finds no room fails with ``budget_exceeded`` naming
the cap (its finished steps kept); a new request that would find none is refused with a 429 that names the cap
and when it resets. Nothing is counted, and nothing read, when the formation has no caps.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from asyncagents.domain.errors import BudgetExceeded, TooManyRequests
from asyncagents.domain.provider_wrapper import ProviderWrapper, Result
from asyncagents.domain.telemetry import NO_TELEMETRY, Telemetry, spend_cap_reached
from asyncagents.domain.times import iso, utc_now

if TYPE_CHECKING:
    from asyncagents.domain.ports import AgentProvider
    from asyncagents.domain.records import Usage
    from asyncagents.formation_spend import PeriodCaps, SpendSettings

FORMATION = "formation"
PERIODS = ("daily", "monthly")
MEASURES = ("model_calls", "tokens", "micro_usd")
_KEEP_DAYS = {"daily": 40, "monthly": 400}  # how long a period's counters stay readable after it ends


@dataclass(frozen=True)
class Spent:
    """What was spent (or is held) in a period: model calls, tokens, millionths of a dollar."""

    model_calls: int = 0
    tokens: int = 0
    micro_usd: int = 0

    def __add__(self, other: Spent) -> Spent:
        return Spent(*(getattr(self, m) + getattr(other, m) for m in MEASURES))

    def __sub__(self, other: Spent) -> Spent:
        return Spent(*(getattr(self, m) - getattr(other, m) for m in MEASURES))

    @property
    def usd(self) -> float:
        return self.micro_usd / 1_000_000


@dataclass(frozen=True)
class Counter:
    """One capped scope in one period: the formation's or a key's, today's or this month's."""

    scope: str  # FORMATION, or a key id
    period: str  # "daily" or "monthly"
    period_id: str  # 2026-12-01, 2026-12
    caps: PeriodCaps
    resets_at: datetime

    @property
    def setting(self) -> str:
        return f"spend.{'formation' if self.scope == FORMATION else 'per_key'}.{self.period}"

    @property
    def forget_at(self) -> int:
        return int((self.resets_at + timedelta(days=_KEEP_DAYS[self.period])).timestamp())

    def limits(self) -> dict[str, int]:
        """The capped measures and their caps, in the counters' units."""
        found = {"model_calls": self.caps.model_calls, "tokens": self.caps.tokens}
        found["micro_usd"] = round(self.caps.usd * 1_000_000) if self.caps.usd is not None else None
        return {measure: cap for measure, cap in found.items() if cap is not None}

    def room_for(self, held: Spent) -> dict[str, int]:
        """The most each capped measure may have counted for ``held`` to fit under its cap."""
        return {measure: cap - getattr(held, measure) for measure, cap in self.limits().items()}


class SpendCounters(Protocol):
    """The counters, one per scope and period."""

    def reserve(self, counter: Counter, amount: Spent, *, room: dict[str, int]) -> bool:
        """Add ``amount`` unless a measure counted more than its ``room`` already; False when refused."""
        ...

    def add(self, counter: Counter, amount: Spent) -> None:
        """Add ``amount`` (negative to give back), unconditionally."""
        ...

    def read(self, counters: Iterable[Counter]) -> dict[tuple[str, str], Spent]:
        """What each counter holds, by (period id, scope); a counter never written is absent."""
        ...

    def scopes(self, period_id: str) -> dict[str, Spent]:
        """Every scope counted in a period, by scope."""
        ...


@dataclass(frozen=True)
class CapUsage:
    """A counter as admins see it: the caps, what is spent, what is left, when it resets."""

    scope: str
    period: str
    period_id: str
    resets_at: str
    caps: dict[str, float]
    spent: dict[str, float]
    remaining: dict[str, float]


@dataclass
class _Held:
    counters: list[Counter] = field(default_factory=list)
    amount: Spent = Spent()


class SpendCaps:
    """Applies the formation's ``spend`` caps. The counters and the clock are injected."""

    def __init__(
        self,
        settings: SpendSettings,
        counters: SpendCounters,
        *,
        model: str,
        max_tokens: int,
        clock: Callable[[], datetime] = utc_now,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._settings = settings
        self._counters = counters
        self._model = model
        self._clock = clock
        self._telemetry = telemetry
        self._reservation = Spent(*settings.reservation(model, max_tokens))
        self._held = threading.local()  # this thread's reservation, until its call settles it

    @property
    def capped(self) -> bool:
        return self._settings.capped

    def counters_for(self, key_id: str, *, now: datetime | None = None) -> list[Counter]:
        """The capped counters a call of ``key_id`` counts against now."""
        now = now or self._clock()
        found = []
        for scope, caps in ((FORMATION, self._settings.formation), (key_id, self._settings.per_key)):
            for period in PERIODS:
                period_caps: PeriodCaps = getattr(caps, period)
                if period_caps.capped:
                    found.append(_counter(scope, period, period_caps, now))
        return found

    def reserve(self, key_id: str) -> None:
        """Before a model call of ``key_id``'s request: hold its reservation against every cap, or raise
        ``BudgetExceeded`` naming the cap that has no room (holding nothing)."""
        self.release()  # a reservation left by a call that never reported on this thread
        held = _Held(amount=self._reservation)
        for counter in self.counters_for(key_id):
            lacking = self._hold(counter)
            if lacking is not None:
                for earlier in held.counters:
                    self._counters.add(earlier, Spent() - self._reservation)
                self._telemetry.emit(spend_cap_reached(), metadata={"cap": counter.setting, "scope": counter.scope})
                measure, spent = lacking
                raise BudgetExceeded(
                    self._reached(counter, measure, spent, "the request stops"),
                    details=self._details(counter, measure, spent),
                )
            held.counters.append(counter)
        self._held.value = held

    def settle(self, usage: Usage | None) -> None:
        """The reserved call returned (``usage``) or failed (``None``: a call, tokens unknown)."""
        held: _Held | None = getattr(self._held, "value", None)
        self._held.value = None
        if held is None or not held.counters:
            return
        tokens = (usage.input_tokens + usage.output_tokens) if usage is not None else 0
        cost = self._settings.micro_usd(self._model, usage.input_tokens, usage.output_tokens) if usage else 0
        actual = Spent(model_calls=1, tokens=tokens, micro_usd=cost)
        for counter in held.counters:
            self._counters.add(counter, actual - held.amount)

    def release(self) -> None:
        """The reserved call is not made after all: give its reservation back."""
        held: _Held | None = getattr(self._held, "value", None)
        self._held.value = None
        if held is None:
            return
        for counter in held.counters:
            self._counters.add(counter, Spent() - held.amount)

    def admit(self, key_id: str) -> None:
        """Before a new request of ``key_id`` is accepted: ``TooManyRequests`` (429, with the seconds until the
        cap resets) when a cap has no room for one call."""
        counters = self.counters_for(key_id)
        if not counters:
            return
        spent = self._counters.read(counters)
        for counter in counters:
            counted = spent.get((counter.period_id, counter.scope), Spent())
            measure = self._measure_without_room(counter, counted)
            if measure is not None:
                wait = max(1, math.ceil((counter.resets_at - self._clock()).total_seconds()))
                raise TooManyRequests(
                    self._reached(counter, measure, counted, "new requests are refused"),
                    retry_after_seconds=wait,
                    details=self._details(counter, measure, counted),
                )

    def usage(self, key_id: str | None = None) -> list[CapUsage]:
        """Today's and this month's counters: the formation's and ``key_id``'s, or every key's counted so far."""
        now = self._clock()
        report = []
        for period in PERIODS:
            formation_caps: PeriodCaps = getattr(self._settings.formation, period)
            key_caps: PeriodCaps = getattr(self._settings.per_key, period)
            period_id = _counter(FORMATION, period, formation_caps, now).period_id
            counted = self._counters.scopes(period_id)
            scopes = [FORMATION] + ([key_id] if key_id else sorted(s for s in counted if s != FORMATION))
            for scope in scopes:
                counter = _counter(scope, period, formation_caps if scope == FORMATION else key_caps, now)
                report.append(_usage_of(counter, counted.get(scope, Spent())))
        return report

    def _hold(self, counter: Counter) -> tuple[str, Spent] | None:
        """Hold the reservation on ``counter``; None when held, else the measure without room and the spent."""
        spent = Spent()
        # A refusal may be a moment's crowd of reservations: read, and try again while the counter has room.
        for _ in range(3):
            if self._counters.reserve(counter, self._reservation, room=counter.room_for(self._reservation)):
                return None
            spent = self._counters.read([counter]).get((counter.period_id, counter.scope), Spent())
            measure = self._measure_without_room(counter, spent)
            if measure is not None:
                return measure, spent
        return next(iter(counter.limits())), spent

    def _measure_without_room(self, counter: Counter, spent: Spent) -> str | None:
        for measure, room in counter.room_for(self._reservation).items():
            if getattr(spent, measure) > room:
                return measure
        return None

    def _reached(self, counter: Counter, measure: str, spent: Spent, consequence: str) -> str:
        whose = "the formation's" if counter.scope == FORMATION else f"API key {counter.scope}'s"
        cap, used, held = counter.limits()[measure], getattr(spent, measure), getattr(self._reservation, measure)
        name = _public(measure, cap)[0]
        return (
            f"{whose} {counter.period} spend cap is reached ({counter.setting}.{name}: {_amount(measure, cap)}, "
            f"{_amount(measure, used)} spent, a model call holds {_amount(measure, held)}): {consequence} until it "
            f"resets at {iso(counter.resets_at)}"
        )

    @staticmethod
    def _details(counter: Counter, measure: str, spent: Spent) -> dict[str, object]:
        name, allowed = _public(measure, counter.limits()[measure])
        return {
            "limit": f"{counter.setting}.{name}",
            "allowed": allowed,
            "spent": _public(measure, getattr(spent, measure))[1],
            "scope": counter.scope,
            "resets_at": iso(counter.resets_at),
        }


class SpendMeter(ProviderWrapper):
    """The agent provider, each call's usage settling its reservation. (The workflow reserves itself, before it
    counts a call: ``WorkflowContext.before_model_call``.)"""

    def __init__(self, provider: AgentProvider, caps: SpendCaps) -> None:
        super().__init__(provider)
        self._caps = caps

    def _around(self, call: Callable[[], Result]) -> Result:
        try:
            result = call()
        except BaseException:
            self._caps.settle(None)
            raise
        self._caps.settle(getattr(result, "usage", None))
        return result


def _counter(scope: str, period: str, caps: PeriodCaps, now: datetime) -> Counter:
    now = now.astimezone(UTC)
    if period == "daily":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return Counter(scope, period, start.strftime("%Y-%m-%d"), caps, start + timedelta(days=1))
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return Counter(scope, period, start.strftime("%Y-%m"), caps, following)


def _public(measure: str, value: int) -> tuple[str, float]:
    """A measure as users name it: dollars, not the counters' millionths."""
    return ("usd", value / 1_000_000) if measure == "micro_usd" else (measure, value)


def _amount(measure: str, value: int) -> str:
    return f"${value / 1_000_000:,.2f}" if measure == "micro_usd" else f"{value:,} {measure.replace('_', ' ')}"


def _usage_of(counter: Counter, spent: Spent) -> CapUsage:
    def public(values: dict[str, int]) -> dict[str, float]:
        return dict(_public(measure, value) for measure, value in values.items())

    limits = counter.limits()
    used = {measure: getattr(spent, measure) for measure in MEASURES}
    return CapUsage(
        scope=counter.scope,
        period=counter.period,
        period_id=counter.period_id,
        resets_at=iso(counter.resets_at),
        caps=public(limits),
        spent=public(used),
        remaining=public({measure: max(0, cap - used[measure]) for measure, cap in limits.items()}),
    )
