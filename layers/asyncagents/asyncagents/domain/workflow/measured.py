"""The agent provider, measured: each call's latency and tokens, and whether the model throttled or failed it
(``domain.telemetry.model_call``). The workflow sees the provider unchanged."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from asyncagents.domain.telemetry import Telemetry, model_call

if TYPE_CHECKING:
    from asyncagents.domain.agents import Answer, Plan, StepContext, StepOutput
    from asyncagents.domain.plans import PlannedStep
    from asyncagents.domain.ports import AgentProvider

Result = TypeVar("Result")


class MeasuredProvider:
    def __init__(
        self, provider: AgentProvider, telemetry: Telemetry, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._provider = provider
        self._telemetry = telemetry
        self._monotonic = monotonic
        self.name = provider.name

    def plan(self, message: str, **options: Any) -> Plan:
        return self._measured(lambda: self._provider.plan(message, **options))

    def run_step(self, step: PlannedStep, context: StepContext) -> StepOutput:
        return self._measured(lambda: self._provider.run_step(step, context))

    def finish(self, message: str, outputs: list[StepOutput], clarifications: Any = None) -> Answer:
        return self._measured(lambda: self._provider.finish(message, outputs, clarifications))

    def __getattr__(self, name: str) -> Any:  # anything else a provider offers, unmeasured
        return getattr(self._provider, name)

    def _measured(self, call: Callable[[], Result]) -> Result:
        started = self._monotonic()
        try:
            result = call()
        except Exception as error:
            self._telemetry.emit(model_call(self._monotonic() - started, error=error))
            raise
        usage = getattr(result, "usage", None)
        tokens = (usage.input_tokens + usage.output_tokens) if usage is not None else 0
        self._telemetry.emit(model_call(self._monotonic() - started, tokens=tokens))
        return result
