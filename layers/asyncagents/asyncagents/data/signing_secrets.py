"""The webhook signing secret in Secrets Manager, read through Powertools Parameters' cache, rotated with a
grace period.

The secret value is JSON: ``{"current": "...", "previous": "...", "previous_valid_until": <unix seconds>}``.
While the previous secret is valid, webhooks carry a signature for each (see ``domain.webhooks.signing``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from asyncagents.domain.errors import ConfigError
from asyncagents.domain.webhooks.signing import new_signing_secret

__all__ = ["SigningSecrets", "new_signing_secret"]


class SigningSecrets:
    """``secrets()`` returns the secrets to sign with now. Reads are cached for ``cache_seconds`` (Powertools
    Parameters' ``max_age``); ``clock`` decides when a previous secret's grace period ends."""

    def __init__(
        self,
        client: Any,
        secret_id: str,
        *,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self._client = client
        self._provider = SecretsProvider(boto3_client=client)
        self._secret_id = secret_id
        self._max_age = math.ceil(cache_seconds)
        self._clock = clock
        # One read per cold container, not one per delivery thread.
        self._lock = threading.Lock()

    def __call__(self) -> list[str]:
        """The secrets to sign with now: the current one, then the previous one during its grace period."""
        return self._live(self._read(), self._clock())

    def rotate(self, *, grace_seconds: int, new_secret: str | None = None) -> str:
        """Make a new current secret; the old one stays valid for ``grace_seconds``. Returns the new one.

        Containers pick it up within their cache time (``cache_seconds``): keep the grace period longer.
        """
        value = self._read(fresh=True)
        fresh = new_secret or new_signing_secret()
        rotated = {
            "current": fresh,
            "previous": value.get("current", ""),
            "previous_valid_until": int(self._clock()) + grace_seconds,
        }
        self._client.put_secret_value(SecretId=self._secret_id, SecretString=json.dumps(rotated))
        self._provider.clear_cache()
        return fresh

    def _read(self, *, fresh: bool = False) -> dict[str, Any]:
        try:
            with self._lock:
                raw = self._provider.get(self._secret_id, max_age=self._max_age, force_fetch=fresh)
        except GetParameterError as error:
            raise ConfigError(f"cannot read the webhook signing secret {self._secret_id}: {error}") from None
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            value = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            value = {"current": text}  # a plain string secret is the current one
        if not isinstance(value, dict) or not value.get("current"):
            raise ConfigError(f"webhook signing secret {self._secret_id} has no 'current' value")
        return value

    @staticmethod
    def _live(value: dict[str, Any], now: float) -> list[str]:
        live = [str(value["current"])]
        previous = value.get("previous")
        if previous and float(value.get("previous_valid_until") or 0) > now:
            live.append(str(previous))
        return live
