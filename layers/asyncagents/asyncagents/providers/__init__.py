"""Agent providers behind one interface, chosen by ``llm.provider`` in the formation."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from asyncagents.domain.ports import AgentProvider
from asyncagents.formation_llm import LLMSettings

ClientFactory = Callable[..., Any]


def build_provider(settings: LLMSettings, *, aws_client: ClientFactory | None = None) -> AgentProvider:
    """The provider the formation names. Imports are lazy: a function loads only the provider it uses.
    ``aws_client(service, region_name=...)`` creates boto3 clients (the function's configured factory)."""
    if settings.provider == "demo":
        from asyncagents.providers.demo import DemoProvider

        return DemoProvider(settings.demo, model=settings.model)
    from asyncagents.providers.chat import ChatAgentProvider

    if aws_client is None:
        import boto3

        aws_client = boto3.client
    if settings.provider == "bedrock":
        from asyncagents.providers.bedrock import BedrockConverse

        client = aws_client("bedrock-runtime", region_name=settings.bedrock.region)
        model = BedrockConverse(
            client, settings.model, max_tokens=settings.max_tokens, temperature=settings.temperature
        )
        return ChatAgentProvider("bedrock", model)
    from asyncagents.providers.openai import OpenAIChat

    openai = settings.openai
    chat = OpenAIChat(
        openai.base_url,
        settings.model,
        _api_key_reader(openai.api_key_secret_arn, openai.api_key_env, aws_client),
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        timeout=openai.timeout_seconds,
    )
    return ChatAgentProvider("openai", chat)


def _api_key_reader(secret_arn: str | None, env_name: str, aws_client: ClientFactory) -> Callable[[], str | None]:
    """The API key from Secrets Manager (cached five minutes) or, without a secret, the environment."""
    if not secret_arn:
        return lambda: os.environ.get(env_name)
    lock = threading.Lock()
    cached: dict[str, Any] = {}

    def read() -> str | None:
        with lock:
            if cached.get("until", 0) <= time.monotonic():
                client = cached.get("client") or aws_client("secretsmanager")
                value = client.get_secret_value(SecretId=secret_arn)["SecretString"]
                cached.update(client=client, value=value, until=time.monotonic() + 300)
            return str(cached["value"])

    return read
