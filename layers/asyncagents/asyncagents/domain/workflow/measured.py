"""The agent provider, measured: each call's latency and tokens, and whether the model throttled or failed it
(``domain.telemetry.model_call``). The workflow sees the provider unchanged."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from asyncagents.domain.provider_wrapper import ProviderWrapper, Result
from asyncagents.domain.telemetry import Telemetry, model_call

if TYPE_CHECKING:
    from asyncagents.domain.ports import AgentProvider


class MeasuredProvider(ProviderWrapper):
    def __init__(
        self, provider: AgentProvider, telemetry: Telemetry, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(provider)
        self._telemetry = telemetry
        self._monotonic = monotonic

    def _around(self, call: Callable[[], Result]) -> Result:
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
