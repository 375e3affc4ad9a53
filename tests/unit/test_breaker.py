"""The model provider's circuit breaker on a fake store: it opens after failures in a row, lets one probe through
after its cool-down, closes on the probe's success, and refuses new requests only when told to."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from asyncagents.domain.breaker import BreakerState, ModelBreaker
from asyncagents.domain.errors import CircuitOpen, PermanentProviderError, TransientProviderError
from asyncagents.formation_llm import CircuitBreakerSettings


class FakeItem:
    def __init__(self) -> None:
        self.state = BreakerState()
        self.writes = 0

    def read(self) -> BreakerState:
        return self.state

    def add_failure(self, *, threshold: int, now: float) -> bool:
        self.writes += 1
        self.state = replace(self.state, failures=self.state.failures + 1)
        if self.state.failures < threshold:
            return False
        if self.state.opened_at is not None and self.state.probe_until is None:
            return False
        self.state = replace(self.state, opened_at=now, probe_until=None)
        return True

    def take_probe(self, *, now: float, lease_seconds: float) -> bool:
        if self.state.probe_until is not None and self.state.probe_until >= now:
            return False
        self.writes += 1
        self.state = replace(self.state, probe_until=now + lease_seconds)
        return True

    def release_probe(self, *, lease_until: float) -> None:
        if self.state.probe_until == lease_until:
            self.writes += 1
            self.state = replace(self.state, probe_until=None)

    def reset(self) -> bool:
        if not self.state.failures and self.state.opened_at is None:
            return False
        self.writes += 1
        was_open = self.state.opened_at is not None
        self.state = BreakerState()
        return was_open


class Telemetry:
    def __init__(self) -> None:
        self.names: list[str] = []

    def emit(self, measures, *, metadata=None) -> None:
        self.names += list(measures)


def breaker(**settings) -> tuple[ModelBreaker, FakeItem, list[float], Telemetry]:
    item, clock, telemetry = FakeItem(), [1_000.0], Telemetry()
    config = CircuitBreakerSettings(**{"failures": 3, "cool_down_seconds": 60, **settings})
    return ModelBreaker(item, config, telemetry=telemetry, now=lambda: clock[0]), item, clock, telemetry


def test_failures_in_a_row_open_it_and_a_success_in_between_resets_the_count():
    guard, item, _, telemetry = breaker()
    for _ in range(2):
        guard.check()
        guard.failed(TransientProviderError("503"))
    guard.check()
    guard.succeeded()  # the count starts again
    assert item.state == BreakerState()
    for _ in range(3):
        guard.check()
        guard.failed(TransientProviderError("throttled"))
    with pytest.raises(CircuitOpen) as refused:
        guard.check()
    assert refused.value.retry_after_seconds == 60 and telemetry.names == ["ModelCircuitOpened"]


def test_a_bad_request_says_nothing_about_the_provider():
    guard, item, _, _ = breaker(failures=1)
    guard.check()
    guard.failed(PermanentProviderError("400: bad request"))
    guard.check()  # still closed
    assert item.state.failures == 0


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes_it():
    guard, item, clock, telemetry = breaker(failures=1)
    guard.check()
    guard.failed(TransientProviderError("timeout"))
    clock[0] += 59
    with pytest.raises(CircuitOpen) as early:
        guard.check()
    assert early.value.retry_after_seconds == 1
    clock[0] += 1
    guard.check()  # the probe
    others: list[BaseException] = []

    def another_caller() -> None:
        try:
            guard.check()
        except CircuitOpen as refused:
            others.append(refused)

    meanwhile = threading.Thread(target=another_caller)
    meanwhile.start()
    meanwhile.join()
    assert len(others) == 1  # anyone else meanwhile waits
    guard.succeeded()
    assert item.state == BreakerState() and telemetry.names == ["ModelCircuitOpened", "ModelCircuitClosed"]
    guard.check()


def test_a_failed_probe_opens_it_again_for_a_whole_cool_down():
    guard, item, clock, telemetry = breaker(failures=1)
    guard.check()
    guard.failed(TransientProviderError("5xx"))
    clock[0] += 60
    guard.check()
    guard.failed(TransientProviderError("5xx again"))
    assert item.state.opened_at == clock[0] and telemetry.names == ["ModelCircuitOpened", "ModelCircuitOpened"]
    with pytest.raises(CircuitOpen):
        guard.check()


def test_calls_while_closed_and_healthy_write_nothing():
    guard, item, _, _ = breaker()
    for _ in range(10):
        guard.check()
        guard.succeeded()
    assert item.writes == 0


@pytest.mark.parametrize(("when_open", "refused"), [("hold", False), ("refuse", True)])
def test_new_requests_are_refused_only_when_the_formation_says_so(when_open, refused):
    guard, _, clock, _ = breaker(failures=1, when_open=when_open)
    guard.admit()
    guard.check()
    guard.failed(TransientProviderError("503"))
    clock[0] += 15
    if refused:
        with pytest.raises(CircuitOpen) as refusal:
            guard.admit()
        assert refusal.value.retry_after_seconds == 45
    else:
        guard.admit()


def test_a_refusal_is_a_503_with_retry_after():
    from asyncagents.api.errors import from_domain_error

    response = from_domain_error(CircuitOpen("the model provider is failing", retry_after_seconds=45))
    assert response.status_code == 503 and response.headers["Retry-After"] == "45"


def test_only_a_checked_call_reports_and_its_success_reads_the_count_as_it_is_now():
    guard, item, _, _ = breaker(failures=3)
    guard.check()  # a slow call checked while the count is 0...
    item.state = replace(item.state, failures=2)  # ...while two others fail
    guard.succeeded()
    assert item.state == BreakerState()  # its success breaks the streak: failures are no longer in a row
    guard.check()
    guard.failed(TransientProviderError("503"))
    guard.succeeded()  # a success nobody checked (a one-step answer makes no call) says nothing
    assert item.state.failures == 1


def test_a_probe_whose_call_is_not_made_is_given_back_at_once():
    guard, item, clock, _ = breaker(failures=1)
    guard.check()
    guard.failed(TransientProviderError("5xx"))
    clock[0] += 60
    guard.check()  # takes the probe... and its step turns out done already: no call
    guard.not_called()
    assert item.state.probe_until is None and item.state.opened_at is not None
    guard.check()  # the next caller probes now, not a cool-down later
    guard.succeeded()
    assert item.state == BreakerState()
