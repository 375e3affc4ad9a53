"""Any OpenAI-compatible chat-completions endpoint over httpx (OpenAI, vLLM, Ollama and the like)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from asyncagents.domain.errors import PermanentProviderError, TransientProviderError
from asyncagents.domain.records import Usage
from asyncagents.providers.chat import Completion

TRANSIENT_STATUSES = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))


class OpenAIChat:
    """``complete`` over ``POST {base_url}/chat/completions``. The API key comes from ``api_key`` (a
    callable, so a secret can be read lazily and cached)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: Callable[[], str | None],
        *,
        max_tokens: int = 2048,
        temperature: float = 0.2,
        timeout: float = 120.0,
        client: httpx.Client | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._api_key = api_key
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._timeout = timeout
        self._client = client or httpx.Client(trust_env=False)

    def complete(self, system: str, prompt: str, *, timeout: float | None = None) -> Completion:
        headers = {"Content-Type": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {
            "model": self._model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
        }
        try:
            wait = self._timeout if timeout is None else max(0.001, min(self._timeout, timeout))
            response = self._client.post(self._url, json=body, headers=headers, timeout=wait)
        except httpx.TimeoutException as error:
            raise TransientProviderError(f"chat completions timed out ({type(error).__name__})") from None
        except httpx.HTTPError as error:
            raise TransientProviderError(f"chat completions unreachable ({type(error).__name__}: {error})") from None
        if response.status_code >= 400:
            detail = response.text[:300]
            message = f"chat completions answered HTTP {response.status_code}: {detail}"
            if response.status_code in TRANSIENT_STATUSES:
                raise TransientProviderError(message)
            raise PermanentProviderError(message)
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise TransientProviderError("chat completions answered with an unexpected body") from None
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens", 0)), output_tokens=int(usage.get("completion_tokens", 0))
            ),
        )
