"""``SpendCaps``: reserve before a model call, settle after it, refuse new requests past a cap (see the package)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from asyncagents.domain.errors import BudgetExceeded, TooManyRequests
from asyncagents.domain.provider_wrapper import ProviderWrapper, Result
from asyncagents.domain.spend.counters import (
    FORMATION,
    NOTHING,
    PERIODS,
    CapUsage,
    Counted,
    Counter,
    SpendCounters,
    Spent,
    amount_text,
    counter_for,
    public,
    usage_of,
)
from asyncagents.domain.telemetry import NO_TELEMETRY, Telemetry, spend_cap_reached
from asyncagents.domain.times import iso, utc_now

if TYPE_CHECKING:
    from asyncagents.domain.ports import AgentProvider
    from asyncagents.domain.records import Usage
    from asyncagents.formation_spend import PeriodCaps, SpendSettings

logger = logging.getLogger(__name__)

BYTES_PER_TOKEN = 3  # a call's text is estimated at a token per three bytes (English runs about four)
_FIRST_WAIT_SECONDS, _LONGEST_WAIT_SECONDS = 0.2, 5.0


@dataclass
class _Held:
    counters: list[Counter] = field(default_factory=list)
    amount: Spent = NOTHING


class SpendCaps:
    """Applies the formation's ``spend`` caps. The counters and the clocks are injected; ``wait_seconds`` is how
    long a call waits by default for calls in flight to settle (the workflow's ``task_timeout``)."""

    def __init__(
        self,
        settings: SpendSettings,
        counters: SpendCounters,
        *,
        model: str,
        max_tokens: int,
        wait_seconds: float = 300,
        clock: Callable[[], datetime] = utc_now,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._settings = settings
        self._counters = counters
        self._model = model
        self._max_tokens = max_tokens
        self._wait_seconds = wait_seconds
        self._clock = clock
        self._now = now
        self._sleep = sleep
        self._telemetry = telemetry
        self._held = threading.local()  # this thread's reservation, until its call settles it

    @property
    def capped(self) -> bool:
        return self._settings.capped

    def amount_for(self, input_bytes: int = 0) -> Spent:
        """What a call sending ``input_bytes`` of text holds before it is made."""
        input_tokens = self._settings.reserve_input_tokens + math.ceil(input_bytes / BYTES_PER_TOKEN)
        cost = self._settings.micro_usd(self._model, input_tokens, self._max_tokens)
        return Spent(model_calls=1, tokens=input_tokens + self._max_tokens, micro_usd=cost)

    def counters_for(self, key_id: str, *, now: datetime | None = None) -> list[Counter]:
        """The capped counters a call of ``key_id`` counts against now."""
        now = now or self._clock()
        found = []
        for scope, caps in ((FORMATION, self._settings.formation), (key_id, self._settings.per_key)):
            for period in PERIODS:
                period_caps: PeriodCaps = getattr(caps, period)
                if period_caps.capped:
                    found.append(counter_for(scope, period, period_caps, now))
        return found

    def reserve(self, key_id: str, *, input_bytes: int = 0, wait_until: float | None = None) -> None:
        """Before a model call of ``key_id``'s request: hold its reservation against every cap, or raise
        ``BudgetExceeded`` naming the cap that has no room (holding nothing). While only calls in flight fill a
        counter, wait for them until ``wait_until`` (epoch seconds; default ``wait_seconds`` from now)."""
        self.release()  # a reservation left on this thread by a call that was never made
        amount = self.amount_for(input_bytes)
        until = wait_until if wait_until is not None else self._now() + self._wait_seconds
        held: list[Counter] = []
        try:
            for counter in self.counters_for(key_id):
                lacking = self._hold(counter, amount, until)
                if lacking is not None:
                    self._telemetry.emit(spend_cap_reached(), metadata={"cap": counter.setting, "scope": counter.scope})
                    measure, counted = lacking
                    raise BudgetExceeded(
                        self._reached(counter, measure, counted, amount, "the request stops"),
                        details=self._details(counter, measure, counted),
                    )
                held.append(counter)
        except BaseException:
            self._give_back(held, amount)
            raise
        self._held.value = _Held(held, amount)

    def settle(self, usage: Usage | None) -> None:
        """The reserved call returned (``usage``) or failed (``None``: a call, tokens unknown). Best effort: a
        counter that cannot be written keeps the reservation (the safe side), and the call's outcome stands."""
        held: _Held | None = getattr(self._held, "value", None)
        self._held.value = None
        if held is None or not held.counters:
            return
        tokens = (usage.input_tokens + usage.output_tokens) if usage is not None else 0
        cost = self._settings.micro_usd(self._model, usage.input_tokens, usage.output_tokens) if usage else 0
        actual = Spent(model_calls=1, tokens=tokens, micro_usd=cost)
        for counter in held.counters:
            try:
                self._counters.add(counter, actual - held.amount, held=NOTHING - held.amount)
            except Exception:
                logger.warning("could not settle a call on %s %s", counter.setting, counter.scope, exc_info=True)

    def release(self) -> None:
        """The reserved call is not made after all: give its reservation back."""
        held: _Held | None = getattr(self._held, "value", None)
        self._held.value = None
        if held is not None:
            self._give_back(held.counters, held.amount)

    def admit(self, key_id: str) -> None:
        """Before a new request of ``key_id`` is accepted: ``TooManyRequests`` (429, with the seconds until the
        cap resets) when a cap's settled spending has no room for one call. Of several, the one that resets last."""
        counters = self.counters_for(key_id)
        if not counters:
            return
        counted = self._counters.read(counters)
        smallest = self.amount_for()
        full = []
        for counter in counters:
            found = counted.get((counter.period_id, counter.scope), Counted())
            measure = counter.lacking(smallest, found.settled)
            if measure is not None:
                full.append((counter, measure, found))
        if not full:
            return
        counter, measure, found = max(full, key=lambda entry: entry[0].resets_at)
        self._telemetry.emit(spend_cap_reached(), metadata={"cap": counter.setting, "scope": counter.scope})
        raise TooManyRequests(
            self._reached(counter, measure, found, smallest, "new requests are refused"),
            retry_after_seconds=max(1, math.ceil((counter.resets_at - self._clock()).total_seconds())),
            details=self._details(counter, measure, found),
        )

    def usage(self, key_id: str | None = None) -> list[CapUsage]:
        """Today's and this month's capped counters: the formation's, and ``key_id``'s or every key's counted."""
        now = self._clock()
        report = []
        for period in PERIODS:
            formation_caps: PeriodCaps = getattr(self._settings.formation, period)
            key_caps: PeriodCaps = getattr(self._settings.per_key, period)
            period_id = counter_for(FORMATION, period, formation_caps, now).period_id
            counted = self._counters.scopes(period_id)
            scopes = [FORMATION] * formation_caps.capped
            if key_caps.capped:
                scopes += [key_id] if key_id else sorted(s for s in counted if s != FORMATION)
            for scope in scopes:
                counter = counter_for(scope, period, formation_caps if scope == FORMATION else key_caps, now)
                report.append(usage_of(counter, counted.get(scope, Counted())))
        return report

    def _hold(self, counter: Counter, amount: Spent, until: float) -> tuple[str, Counted] | None:
        """Hold ``amount`` on ``counter``; None when held, else the measure without room and what is counted."""
        wait = _FIRST_WAIT_SECONDS
        while True:
            if self._counters.reserve(counter, amount, room=counter.room_for(amount)):
                return None
            counted = self._counters.read([counter]).get((counter.period_id, counter.scope), Counted())
            measure = counter.lacking(amount, counted.total)
            settled_short = counter.lacking(amount, counted.settled)
            if settled_short is not None:
                return settled_short, counted  # spent for good: no call in flight can give it back
            if self._now() + wait > until:
                return measure or next(iter(counter.limits())), counted
            if measure is not None:  # only calls in flight fill it: they settle (most give some back)
                self._sleep(wait)
                wait = min(wait * 2, _LONGEST_WAIT_SECONDS)

    def _give_back(self, counters: list[Counter], amount: Spent) -> None:
        for counter in counters:
            try:
                self._counters.add(counter, NOTHING - amount, held=NOTHING - amount)
            except Exception:
                logger.warning("could not give back a reservation on %s", counter.setting, exc_info=True)

    @staticmethod
    def _reached(counter: Counter, measure: str, counted: Counted, amount: Spent, consequence: str) -> str:
        whose = "the formation's" if counter.scope == FORMATION else f"API key {counter.scope}'s"
        cap = counter.limits()[measure]
        spent, held = getattr(counted.settled, measure), getattr(counted.held, measure)
        in_flight = f", {amount_text(measure, held)} held by calls in flight" if held else ""
        return (
            f"{whose} {counter.period} spend cap is reached ({counter.setting}.{public(measure, cap)[0]}: "
            f"{amount_text(measure, cap)}; {amount_text(measure, spent)} spent{in_flight}; a call needs "
            f"{amount_text(measure, getattr(amount, measure))}): {consequence} until it resets at "
            f"{iso(counter.resets_at)}"
        )

    @staticmethod
    def _details(counter: Counter, measure: str, counted: Counted) -> dict[str, object]:
        name, allowed = public(measure, counter.limits()[measure])
        return {
            "limit": f"{counter.setting}.{name}",
            "allowed": allowed,
            "spent": public(measure, getattr(counted.settled, measure))[1],
            "scope": counter.scope,
            "resets_at": iso(counter.resets_at),
        }


class SpendMeter(ProviderWrapper):
    """The agent provider, each call's usage settling its reservation (the workflow reserves before it counts a
    call: ``WorkflowContext.before_model_call``). The provider's outcome always stands."""

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
