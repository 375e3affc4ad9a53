"""The model provider's circuit breaker with the real state machine on moto: failures in a row open it, no step
burns an attempt while it is open (the workflow waits in Step Functions), and a probe after the cool-down closes
it so that every waiting request completes."""

from __future__ import annotations

import time

import pytest

from asyncagents import runtime
from asyncagents.api.schemas import ChatRequest
from asyncagents.domain.statuses import Status
from tests.stack_fixture import TEST_FORMATION, new_principal, stack_fixture, wait_for

pytestmark = pytest.mark.integration

COOL_DOWN = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workflow = {
        **TEST_FORMATION["overlord"]["workflow"],
        "retry": {"max_attempts": 8, "initial_delay": 0.1, "max_delay": 0.1, "backoff_factor": 1.0},
    }
    # The seed's default: five failures in a row open it.
    llm = {**TEST_FORMATION.get("llm", {}), "circuit_breaker": {"cool_down_seconds": COOL_DOWN}}
    yield from stack_fixture(tmp_path_factory, {"overlord": {"workflow": workflow}, "llm": llm})


def test_failures_in_a_row_open_the_breaker_requests_wait_without_attempts_and_a_probe_closes_it(stack):
    principal = new_principal(stack)
    service = runtime.current().request_service

    def submit(message: str):
        return service.submit(principal, ChatRequest.model_validate({"message": message, "async": True}).to_domain())

    # Given a step whose first five attempts fail: five failures in a row open the breaker
    failing = submit("one step [demo fail_transient=5]").record
    wait_for(lambda: stack.metrics.emitted("ModelCircuitOpened"), timeout=20)
    opened = time.monotonic()
    # When another request arrives while it is open: accepted (when_open: hold), and it waits
    waiting = submit("another step").record
    time.sleep(1)
    assert time.monotonic() - opened < COOL_DOWN
    held = service.get(principal, waiting.request_id)
    assert held.model_calls == 0 and held.step_attempts == {}  # no call, no attempt while open
    assert service.get(principal, failing.request_id).step_attempts == {"0": 5}  # 3 of its 8 left: none burnt
    # Then after the cool-down a probe succeeds, the breaker closes, and both complete
    done = [
        wait_for(lambda r=r: (x := service.get(principal, r.request_id)).status.is_terminal and x, timeout=30)
        for r in (failing, waiting)
    ]
    assert [d.status for d in done] == [Status.COMPLETED, Status.COMPLETED]
    assert done[0].step_attempts == {"0": 6}  # five failures, then the probe or the attempt after it
    assert stack.metrics.emitted("ModelCircuitClosed")
    arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{waiting.execution_name}"
    events = stack.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    errors = {e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"}
    assert errors == {"CircuitOpen"}  # it waited in Step Functions' Retry, nothing else failed


def test_the_breakers_item_gives_a_probe_back_only_to_its_holder(stack):
    from asyncagents.data.model_breaker import ModelBreakerItem

    item = ModelBreakerItem(stack.client("dynamodb"), stack.table_name, "demo", "probe-test")
    assert item.add_failure(threshold=1, now=1000.0)  # open
    assert item.take_probe(now=2000.0, lease_seconds=60)
    assert not item.take_probe(now=2001.0, lease_seconds=60)  # held
    item.release_probe(lease_until=1.0)  # not this lease: nothing
    assert item.read().probe_until == 2060.0
    item.release_probe(lease_until=2060.0)
    assert item.read().probe_until is None and item.take_probe(now=2002.0, lease_seconds=60)
