"""The ``spend`` section of the formation: daily and monthly caps on what the model costs, for the whole formation
and for each API key, and the price table that turns tokens into dollars (README, "Spend caps")."""

from __future__ import annotations

from pydantic import Field

from asyncagents.formation_base import StrictModel

__all__ = ["ModelPrice", "PeriodCaps", "ScopeCaps", "SpendSettings"]


class PeriodCaps(StrictModel):
    """What one period (a UTC day, a UTC month) may spend; unset: no cap on that measure."""

    model_calls: int | None = Field(None, ge=1, description="Model calls (plans, steps, answers, retries).")
    tokens: int | None = Field(None, ge=1, description="Input and output tokens, all calls together.")
    usd: float | None = Field(None, gt=0, le=1_000_000, description="Estimated cost, from spend.prices.")

    @property
    def capped(self) -> bool:
        return any(value is not None for value in (self.model_calls, self.tokens, self.usd))


class ScopeCaps(StrictModel):
    daily: PeriodCaps = Field(default_factory=PeriodCaps)
    monthly: PeriodCaps = Field(default_factory=PeriodCaps)

    @property
    def capped(self) -> bool:
        return self.daily.capped or self.monthly.capped


class ModelPrice(StrictModel):
    """Dollars per million tokens (the provider's list price, or what you pay)."""

    input_per_million: float = Field(ge=0, le=10_000)
    output_per_million: float = Field(ge=0, le=10_000)


class SpendSettings(StrictModel):
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Price per model id (llm.model); needed for a cap in usd."
    )
    reserve_input_tokens: int = Field(
        1000,
        ge=0,
        le=1_000_000,
        description="Input tokens held against the caps before a call is made for the provider's own instructions, "
        "on top of a token per three bytes of the text the call sends; its output holds llm.max_tokens. The call's "
        "real usage replaces the reservation when it returns.",
    )
    formation: ScopeCaps = Field(default_factory=ScopeCaps, description="Caps on all keys' requests together.")
    per_key: ScopeCaps = Field(
        default_factory=ScopeCaps, description="Caps on each API key's requests, every key its own."
    )

    @property
    def capped(self) -> bool:
        return self.formation.capped or self.per_key.capped

    def reservation(self, model: str, max_tokens: int) -> tuple[int, int, int]:
        """What the smallest call (no text of its own) holds against the caps: (calls, tokens, micro-dollars)."""
        tokens = self.reserve_input_tokens + max_tokens
        return 1, tokens, self.micro_usd(model, self.reserve_input_tokens, max_tokens)

    def micro_usd(self, model: str, input_tokens: int, output_tokens: int) -> int:
        """The estimated cost of a call in millionths of a dollar (prices are per million tokens): whole numbers
        add up exactly in the counters."""
        price = self.prices.get(model)
        if price is None:
            return 0
        return round(input_tokens * price.input_per_million + output_tokens * price.output_per_million)

    def problems(self, model: str, max_tokens: int) -> list[str]:
        """What makes the caps unusable with this model: a cap in usd without its price, a cap smaller than the
        reservation of one call (no call could ever be made)."""
        found = []
        _, tokens, micro_usd = self.reservation(model, max_tokens)
        for scope in ("formation", "per_key"):
            for period in ("daily", "monthly"):
                caps: PeriodCaps = getattr(getattr(self, scope), period)
                where = f"spend.{scope}.{period}"
                if caps.usd is not None and model not in self.prices:
                    found.append(f"{where}.usd: a cap in usd needs spend.prices.{model} (the price of llm.model)")
                elif caps.usd is not None and caps.usd * 1_000_000 < micro_usd:
                    found.append(
                        f"{where}.usd: {caps.usd:g} is less than one call's reservation "
                        f"(${micro_usd / 1_000_000:.6f}: spend.reserve_input_tokens and llm.max_tokens at its price)"
                    )
                if caps.tokens is not None and caps.tokens < tokens:
                    found.append(
                        f"{where}.tokens: {caps.tokens} is less than one call's reservation ({tokens} tokens: "
                        "spend.reserve_input_tokens + llm.max_tokens)"
                    )
        return found
