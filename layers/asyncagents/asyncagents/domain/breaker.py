"""The circuit breaker on the model provider (seed 002: "if an agent fails 5 times in a row, stop sending it
work"), its state shared by every function through the table.

Closed: calls go through, and the provider's failures in a row are counted (a success resets the count).
``failures`` in a row open it: for ``cool_down_seconds`` no call is made (``CircuitOpen``: the workflow waits in
Step Functions, spending neither Lambda time nor a step's retries). Then it is half open: one caller takes the
probe (a lease, written conditionally) and calls; a success closes the breaker, a failure opens it again. Only
transient failures count (throttling, 5xx, timeouts): a bad request says nothing about the provider. In the
steady state it costs one read per model call and no write.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from asyncagents.domain.errors import CircuitOpen, TransientProviderError
from asyncagents.domain.provider_wrapper import ProviderWrapper, Result
from asyncagents.domain.telemetry import NO_TELEMETRY, Telemetry, breaker_change

if TYPE_CHECKING:
    from asyncagents.domain.ports import AgentProvider
    from asyncagents.formation_llm import CircuitBreakerSettings


@dataclass(frozen=True)
class BreakerState:
    failures: int = 0  # provider failures in a row
    opened_at: float | None = None  # epoch seconds; None: closed
    probe_until: float | None = None  # a half-open probe's lease


class BreakerStore(Protocol):
    """The breaker's one shared item."""

    def read(self) -> BreakerState: ...

    def add_failure(self, *, threshold: int, now: float) -> bool:
        """Count a failure; open the breaker (or open it again after a failed probe) when ``threshold`` failures
        are in a row. True when this call opened it."""
        ...

    def take_probe(self, *, now: float, lease_seconds: float) -> bool:
        """Take the half-open probe unless another caller holds it."""
        ...

    def reset(self) -> bool:
        """Close the breaker and clear the count. True when it was open."""
        ...

    def release_probe(self, *, lease_until: float) -> None:
        """Give back the probe taken with this lease (unless another caller holds one by now)."""
        ...


class ModelBreaker:
    def __init__(
        self,
        store: BreakerStore,
        settings: CircuitBreakerSettings,
        *,
        telemetry: Telemetry = NO_TELEMETRY,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._telemetry = telemetry
        self._now = now
        self._checked = threading.local()  # set by this thread's check, consumed by the outcome of the call after it

    def admit(self) -> None:
        """Before a new request is accepted: with ``when_open: refuse``, ``CircuitOpen`` (a 503 with Retry-After)
        while the breaker is open. With ``hold`` (the default) it reads nothing: the request waits in its workflow."""
        if self._settings.when_open != "refuse":
            return
        state = self._store.read()
        left = 0.0 if state.opened_at is None else state.opened_at + self._settings.cool_down_seconds - self._now()
        if left > 0:
            raise CircuitOpen(
                "the model provider is failing: new requests are refused until it recovers",
                retry_after_seconds=max(1, math.ceil(left)),
            )

    def is_closed(self) -> bool:
        """Whether calls go through now (a read; no probe is taken): steps are started together only then, so that
        an open breaker never makes a run write starts it must give back."""
        return self._store.read().opened_at is None

    def check(self) -> None:
        """Before a model call is counted and made: raises ``CircuitOpen`` (with the seconds until it may be tried)
        while the breaker is open; in the half-open state lets one caller through as the probe."""
        self._checked.pending = False
        self._checked.probe = None
        state = self._store.read()
        if state.opened_at is None:
            self._checked.pending = True
            return
        now = self._now()
        ends = state.opened_at + self._settings.cool_down_seconds
        if now < ends:
            raise CircuitOpen(
                f"the model provider failed {state.failures} times in a row; calls resume after a cool-down",
                retry_after_seconds=max(1, math.ceil(ends - now)),
            )
        lease = now + self._settings.cool_down_seconds
        if not self._store.take_probe(now=now, lease_seconds=self._settings.cool_down_seconds):
            raise CircuitOpen(
                "the model provider is being probed after failures in a row",
                retry_after_seconds=self._settings.cool_down_seconds,
            )
        self._checked.pending = True
        self._checked.probe = lease

    def not_called(self) -> None:
        """The checked call is not made after all (its step was done, ended, or waits for an answer): forget the
        check, and give back the probe it took, so that another caller probes now rather than a cool-down later."""
        probe = getattr(self._checked, "probe", None)
        self._consume()
        if probe is not None:
            self._store.release_probe(lease_until=probe)

    def succeeded(self) -> None:
        """A checked call succeeded: failures are no longer in a row (read again, consistently: calls that failed
        since its check count too), and a probe closes the breaker. Nothing for a call that was not checked."""
        if not self._consume():
            return
        state = self._store.read()
        if (state.failures or state.opened_at is not None) and self._store.reset():
            self._telemetry.emit(breaker_change(opened=False))

    def failed(self, error: Exception) -> None:
        if not self._consume() or not isinstance(error, TransientProviderError):
            return
        if self._store.add_failure(threshold=self._settings.failures, now=self._now()):
            self._telemetry.emit(breaker_change(opened=True))

    def _consume(self) -> bool:
        pending = bool(getattr(self._checked, "pending", False))
        self._checked.pending = False
        self._checked.probe = None
        return pending


class GuardedProvider(ProviderWrapper):
    """The agent provider, each call's outcome told to the breaker. (The workflow checks the breaker itself,
    before it counts a call: ``WorkflowContext.before_model_call``.)"""

    def __init__(self, provider: AgentProvider, breaker: ModelBreaker) -> None:
        super().__init__(provider)
        self._breaker = breaker

    def _around(self, call: Callable[[], Result]) -> Result:
        try:
            result = call()
        except Exception as error:
            self._breaker.failed(error)
            raise
        self._breaker.succeeded()
        return result
