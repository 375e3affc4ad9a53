"""Agent providers behind one interface, chosen by ``llm.provider`` in the formation."""

from __future__ import annotations

from asyncagents.config import LLMSettings
from asyncagents.providers.base import AgentProvider


def build_provider(settings: LLMSettings) -> AgentProvider:
    """The provider the formation names. Imports are lazy: a function loads only the provider it uses."""
    if settings.provider == "demo":
        from asyncagents.providers.demo import DemoProvider

        return DemoProvider(settings.demo, model=settings.model)
    raise ValueError(f"unknown provider {settings.provider!r}")  # unreachable: the config validates it
