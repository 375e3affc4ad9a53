"""A wrapper around the agent provider that runs each of its three calls through ``_around`` (measured, guarded
by the breaker, ...); the workflow sees the provider unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from asyncagents.domain.agents import Answer, Plan, StepContext, StepOutput
    from asyncagents.domain.plans import PlannedStep
    from asyncagents.domain.ports import AgentProvider

Result = TypeVar("Result")


class ProviderWrapper:
    def __init__(self, provider: AgentProvider) -> None:
        self._provider = provider
        self.name = provider.name

    def plan(self, message: str, **options: Any) -> Plan:
        return self._around(lambda: self._provider.plan(message, **options))

    def run_step(self, step: PlannedStep, context: StepContext) -> StepOutput:
        return self._around(lambda: self._provider.run_step(step, context))

    def finish(self, message: str, outputs: list[StepOutput], clarifications: Any = None) -> Answer:
        return self._around(lambda: self._provider.finish(message, outputs, clarifications))

    def __getattr__(self, name: str) -> Any:  # anything else a provider offers, as it is
        return getattr(self._provider, name)

    def _around(self, call: Callable[[], Result]) -> Result:
        raise NotImplementedError
