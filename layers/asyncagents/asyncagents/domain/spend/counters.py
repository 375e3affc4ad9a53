"""What the spend caps count: amounts, the counters of a scope and period, and how admins see them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from asyncagents.domain.times import iso

if TYPE_CHECKING:
    from asyncagents.formation_spend import PeriodCaps

FORMATION = "formation"
PERIODS = ("daily", "monthly")
MEASURES = ("model_calls", "tokens", "micro_usd")
_KEEP_DAYS = {"daily": 40, "monthly": 400}  # how long a period's counters stay readable after it ends


@dataclass(frozen=True)
class Spent:
    """An amount: model calls, tokens, millionths of a dollar."""

    model_calls: int = 0
    tokens: int = 0
    micro_usd: int = 0

    def __add__(self, other: Spent) -> Spent:
        return Spent(*(getattr(self, m) + getattr(other, m) for m in MEASURES))

    def __sub__(self, other: Spent) -> Spent:
        return Spent(*(getattr(self, m) - getattr(other, m) for m in MEASURES))


NOTHING = Spent()


@dataclass(frozen=True)
class Counted:
    """A counter's content: its total, of which ``held`` is reserved by calls in flight (not settled yet)."""

    total: Spent = NOTHING
    held: Spent = NOTHING

    @property
    def settled(self) -> Spent:
        return self.total - self.held


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

    def room_for(self, amount: Spent) -> dict[str, int]:
        """The most each capped measure may have counted for ``amount`` to fit under its cap."""
        return {measure: cap - getattr(amount, measure) for measure, cap in self.limits().items()}

    def lacking(self, amount: Spent, counted: Spent) -> str | None:
        """The first capped measure where ``amount`` does not fit on top of ``counted``."""
        for measure, room in self.room_for(amount).items():
            if getattr(counted, measure) > room:
                return measure
        return None


def counter_for(scope: str, period: str, caps: PeriodCaps, now: datetime) -> Counter:
    """The counter of ``scope`` for the UTC day or month that holds ``now``."""
    now = now.astimezone(UTC)
    if period == "daily":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return Counter(scope, period, start.strftime("%Y-%m-%d"), caps, start + timedelta(days=1))
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return Counter(scope, period, start.strftime("%Y-%m"), caps, following)


class SpendCounters(Protocol):
    """The counters, one per scope and period."""

    def reserve(self, counter: Counter, amount: Spent, *, room: dict[str, int]) -> bool:
        """Add ``amount`` to the total and to what is held, unless a measure's total is past its ``room``
        already; False when refused."""
        ...

    def add(self, counter: Counter, amount: Spent, *, held: Spent = NOTHING) -> None:
        """Add ``amount`` to the total and ``held`` to what is held (negative to give back), unconditionally."""
        ...

    def read(self, counters: Iterable[Counter]) -> dict[tuple[str, str], Counted]:
        """What each counter holds, by (period id, scope); a counter never written is absent."""
        ...

    def scopes(self, period_id: str) -> dict[str, Counted]:
        """Every scope counted in a period, by scope."""
        ...


@dataclass(frozen=True)
class CapUsage:
    """A counter as admins see it: the caps, what was spent (settled), what calls in flight hold, what is left,
    when it resets."""

    scope: str
    period: str
    period_id: str
    resets_at: str
    caps: dict[str, float]
    spent: dict[str, float]
    held: dict[str, float]
    remaining: dict[str, float]


def public(measure: str, value: int) -> tuple[str, float]:
    """A measure as users name it: dollars, not the counters' millionths."""
    return ("usd", value / 1_000_000) if measure == "micro_usd" else (measure, value)


def amount_text(measure: str, value: int) -> str:
    if measure == "micro_usd":
        return f"${value / 1_000_000:,.2f}"
    unit = "token" if measure == "tokens" else "call"
    return f"{value:,} {unit}{'' if value == 1 else 's'}"


def usage_of(counter: Counter, counted: Counted) -> CapUsage:
    def shown(values: dict[str, int]) -> dict[str, float]:
        return dict(public(measure, value) for measure, value in values.items())

    limits = counter.limits()
    total = {measure: getattr(counted.total, measure) for measure in MEASURES}
    return CapUsage(
        scope=counter.scope,
        period=counter.period,
        period_id=counter.period_id,
        resets_at=iso(counter.resets_at),
        caps=shown(limits),
        spent=shown({measure: getattr(counted.settled, measure) for measure in MEASURES}),
        held=shown({measure: getattr(counted.held, measure) for measure in MEASURES}),
        remaining=shown({measure: max(0, cap - total[measure]) for measure, cap in limits.items()}),
    )
