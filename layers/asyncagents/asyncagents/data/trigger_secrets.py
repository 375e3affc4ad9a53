"""Triggers' signing secrets in Secrets Manager, read through Powertools Parameters' cache.

The stack's ``TriggerSecrets`` secret holds one entry per trigger: ``{"<trigger>": "<secret>"}``, or during a
rotation ``{"<trigger>": {"current": "...", "previous": "..."}}`` (both are accepted until ``previous`` is
removed). A definition may instead name a secret of its own (``verify.secret_arn``): its value is the secret,
or the same ``{"current", "previous"}`` object.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from asyncagents.domain.errors import Unavailable


class TriggerSecrets:
    """``secrets_for(trigger, secret_arn)``: the live secrets of one trigger, cached ``cache_seconds``."""

    def __init__(self, client: Any, stack_secret_id: str | None, *, cache_seconds: float = 300.0) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self._provider = SecretsProvider(boto3_client=client)
        self._stack_secret_id = stack_secret_id
        self._max_age = math.ceil(cache_seconds)

    def secrets_for(self, trigger: str, secret_arn: str | None) -> list[str]:
        if secret_arn:
            return self._live(self._read(secret_arn, parse=False), f"secret {secret_arn}")
        if not self._stack_secret_id:
            raise Unavailable("trigger secrets are not configured (TRIGGER_SECRETS_ARN is not set)")
        entries = self._read(self._stack_secret_id, parse=True)
        if not isinstance(entries, dict) or trigger not in entries:
            raise Unavailable(
                f"trigger {trigger} has no signing secret yet: put it under {trigger!r} in the stack's "
                "TriggerSecrets secret (see README, Triggers)",
                details={"trigger": trigger},
            )
        return self._live(entries[trigger], f"TriggerSecrets entry {trigger!r}")

    def _read(self, secret_id: str, *, parse: bool) -> Any:
        try:
            raw = self._provider.get(secret_id, max_age=self._max_age)
        except GetParameterError as error:
            raise Unavailable(f"cannot read trigger secret {secret_id}: {error}") from None
        text = raw.decode() if isinstance(raw, bytes) else raw
        if not isinstance(text, str):
            return text
        try:
            return json.loads(text)
        except ValueError:
            if parse:
                raise Unavailable(f"trigger secret {secret_id} is not a JSON object") from None
            return text

    @staticmethod
    def _live(value: Any, where: str) -> list[str]:
        if isinstance(value, dict):
            live = [str(value[name]) for name in ("current", "previous") if value.get(name)]
        else:
            live = [str(value)] if value not in (None, "") else []
        if not live:
            raise Unavailable(f"{where} is empty")
        return live
