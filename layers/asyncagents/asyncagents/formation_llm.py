"""The ``llm`` section of the formation: which model provider runs the steps (README, "Model providers")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from asyncagents.formation_base import StrictModel

__all__ = ["BedrockSettings", "DemoProviderSettings", "LLMSettings", "OpenAISettings"]


class DemoProviderSettings(StrictModel):
    """The offline demo provider: deterministic, no model. Its faults exist for tests and demos."""

    step_seconds: float = Field(0.5, ge=0, le=900, description="Simulated work per step.")
    fail_transient: int = Field(0, ge=0, le=100, description="Each step fails this many times, then succeeds.")
    fail_permanent: bool = False
    hang_seconds: float = Field(0, ge=0, le=3600, description="If > 0, each step sleeps this long (to test timeouts).")
    fail_step: int | None = Field(None, ge=0, description="Apply the faults above to this step (0-based) only.")
    output_kb: int = Field(0, ge=0, le=1024, description="Pad each step's output to this many KB (large state).")
    ask: str | None = Field(
        None,
        pattern=r"^(plan|[0-9]+)(\+(plan|[0-9]+))*$",
        description="Ask the user a question in planning and/or in these steps (0-based), e.g. plan+1+2.",
    )

    def asks_in(self, where: str) -> bool:
        return self.ask is not None and where in self.ask.split("+")


class BedrockSettings(StrictModel):
    """Amazon Bedrock (Converse API). The model is ``llm.model`` (a model or inference profile id)."""

    region: str | None = Field(None, description="Defaults to the stack's region.")


class OpenAISettings(StrictModel):
    """Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, ...)."""

    base_url: str = "https://api.openai.com/v1"
    api_key_secret_arn: str | None = Field(None, description="Secrets Manager secret holding the API key.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable read when no secret is set.")
    timeout_seconds: float = Field(120.0, gt=0, le=900)


class CircuitBreakerSettings(StrictModel):
    """Seed 002's circuit breaker: after ``failures`` provider failures in a row (throttling, 5xx, timeouts) no
    model call is made for ``cool_down_seconds``; then one call probes, and closes it again if it succeeds."""

    failures: int = Field(5, ge=1, le=1000)
    cool_down_seconds: int = Field(60, ge=1, le=3600)
    when_open: Literal["hold", "refuse"] = Field(
        "hold", description="New requests while open: accepted and held until it closes, or refused with 503."
    )


class LLMSettings(StrictModel):
    provider: Literal["demo", "bedrock", "openai"] = "demo"
    model: str = "demo-clauses-v1"
    max_tokens: int = Field(2048, ge=1, le=200_000)
    temperature: float = Field(0.2, ge=0, le=2)
    demo: DemoProviderSettings = Field(default_factory=DemoProviderSettings)
    bedrock: BedrockSettings = Field(default_factory=BedrockSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    circuit_breaker: CircuitBreakerSettings = Field(default_factory=CircuitBreakerSettings)
