"""The webhook signing secret in Secrets Manager, read with a short cache, rotated with a grace period.

The secret value is JSON: ``{"current": "...", "previous": "...", "previous_valid_until": <unix seconds>}``.
While the previous secret is valid, webhooks carry a signature for each (see ``webhooks.signing``).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from asyncagents.domain.errors import ConfigError


def new_signing_secret() -> str:
    """``whsec_`` and 32 random bytes in standard base64: usable as is for X-Muxi-Signature, and decodable
    as the key of Standard Webhooks signatures."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class SigningSecrets:
    def __init__(
        self,
        client: Any,
        secret_id: str,
        *,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._secret_id = secret_id
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cached: tuple[list[str], float] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> list[str]:
        """The secrets to sign with now: the current one, then the previous one during its grace period."""
        now = self._clock()
        with self._lock:
            if self._cached is None or self._cached[1] <= now:
                self._cached = (self._live(self._read(), now), now + self._cache_seconds)
            return list(self._cached[0])

    def rotate(self, *, grace_seconds: int, new_secret: str | None = None) -> str:
        """Make a new current secret; the old one stays valid for ``grace_seconds``. Returns the new one.

        Containers pick it up within their cache time (``cache_seconds``): keep the grace period longer.
        """
        value = self._read()
        fresh = new_secret or new_signing_secret()
        rotated = {
            "current": fresh,
            "previous": value.get("current", ""),
            "previous_valid_until": int(self._clock()) + grace_seconds,
        }
        self._client.put_secret_value(SecretId=self._secret_id, SecretString=json.dumps(rotated))
        with self._lock:
            self._cached = None
        return fresh

    def _read(self) -> dict[str, Any]:
        try:
            raw = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"]
        except ClientError as error:
            raise ConfigError(f"cannot read the webhook signing secret {self._secret_id}: {error}") from None
        try:
            value = json.loads(raw)
        except ValueError:
            value = {"current": raw}  # a plain string secret is the current one
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
