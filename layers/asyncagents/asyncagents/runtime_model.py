"""The runtime's model parts (a mixin of ``runtime.Runtime``): the provider as the workflow calls it, with the
circuit breaker and the spend caps that guard it."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from asyncagents.runtime_parts import RuntimeParts

if TYPE_CHECKING:
    from asyncagents.domain.breaker import ModelBreaker
    from asyncagents.domain.ports import AgentProvider
    from asyncagents.domain.spend import SpendCaps
    from asyncagents.domain.telemetry import Telemetry


class Guarding(RuntimeParts):
    if TYPE_CHECKING:

        @property
        def telemetry(self) -> Telemetry: ...  # Observing's

        def _model_client(self, service: str, region_name: str | None = None) -> Any: ...

    @cached_property
    def model_provider(self) -> AgentProvider:
        """The formation's provider, measured, its outcomes told to the breaker, its usage settling the spend
        caps' reservations (when the formation has caps)."""
        from asyncagents.domain.breaker import GuardedProvider
        from asyncagents.domain.workflow.measured import MeasuredProvider
        from asyncagents.providers import build_provider

        provider = build_provider(self.formation.llm, aws_client=self._model_client)
        guarded: AgentProvider = GuardedProvider(MeasuredProvider(provider, self.telemetry), self.model_breaker)
        if not self.formation.spend.capped:
            return guarded
        from asyncagents.domain.spend import SpendMeter

        return SpendMeter(guarded, self.spend_caps)

    def cost_of(self) -> Callable[[int, int], float | None] | None:
        """Input and output tokens → their estimated dollars at ``spend.prices`` (``None`` without a price for
        ``llm.model``)."""
        spend, model = self.formation.spend, self.formation.llm.model
        if model not in spend.prices:
            return None
        return lambda input_tokens, output_tokens: spend.micro_usd(model, input_tokens, output_tokens) / 1_000_000

    @cached_property
    def model_breaker(self) -> ModelBreaker:
        from asyncagents.data.model_breaker import ModelBreakerItem
        from asyncagents.domain.breaker import ModelBreaker

        llm = self.formation.llm
        item = ModelBreakerItem(self.dynamodb, self.settings.table_name, llm.provider, llm.model)
        return ModelBreaker(item, llm.circuit_breaker, telemetry=self.telemetry)

    @cached_property
    def spend_caps(self) -> SpendCaps:
        from asyncagents.data.spend_counters import SpendCounterItems
        from asyncagents.domain.spend import SpendCaps

        llm = self.formation.llm
        counters = SpendCounterItems(self.dynamodb, self.settings.table_name)
        # A call waits at most half an attempt for calls in flight to settle: the call itself needs the rest.
        wait = self.formation.overlord.workflow.timeouts.task_timeout / 2
        return SpendCaps(
            self.formation.spend,
            counters,
            model=llm.model,
            max_tokens=llm.max_tokens,
            wait_seconds=wait,
            telemetry=self.telemetry,
        )
