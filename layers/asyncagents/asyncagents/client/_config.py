"""Where the SDK and the command line find the API and the keys: arguments first, then the environment
(``ASYNCAGENTS_API_URL``, ``ASYNCAGENTS_CLIENT_KEY``, ``ASYNCAGENTS_ADMIN_KEY``, ``ASYNCAGENTS_USER_ID``), then
a TOML file (``ASYNCAGENTS_CONFIG``, else ``~/.config/asyncagents/config.toml``) with the same names in lower
case (``api_url = "https://..."``)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from asyncagents.client._errors import AsyncAgentsError

_FIELDS = ("api_url", "client_key", "admin_key", "user_id", "token")


class ConfigurationError(AsyncAgentsError):
    """The API's URL or a key is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    api_url: str | None = None
    client_key: str | None = None
    admin_key: str | None = None
    user_id: str | None = None
    token: str | None = None  # an end user's JWT, for a stack with auth.jwt (its JwtApiUrl)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("ASYNCAGENTS_CONFIG"):
        return Path(env["ASYNCAGENTS_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]).expanduser() if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "asyncagents" / "config.toml"


def resolve(given: Settings | None = None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """``given`` completed from the environment, then from the config file (a missing file is no error; a
    malformed one is a ``ConfigurationError`` naming it)."""
    env = os.environ if environ is None else environ
    path = config_path(env)
    from_file: dict[str, object] = {}
    if path.is_file():
        try:
            from_file = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as error:
            raise ConfigurationError(f"{path}: not a readable TOML file ({error})") from None
    values = {}
    for name in _FIELDS:
        value = getattr(given, name, None) if given else None
        value = value or env.get(f"ASYNCAGENTS_{name.upper()}") or from_file.get(name)
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{path}: {name} must be a string")
        values[name] = value or None
    return Settings(**values)


def base_url(api_url: str | None) -> str:
    """The API's root, with or without ``/v1`` as given (MUXI's ``/api/<formation id>`` form kept):
    ``https://x.example/v1/`` and ``https://x.example`` are the same API."""
    if not api_url:
        raise ConfigurationError(
            "no API URL: pass --api / api_url=, or set ASYNCAGENTS_API_URL (the stack's ApiUrl output, "
            "or http://127.0.0.1:8001 for make local)"
        )
    parts = urlsplit(api_url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigurationError(f"API URL {api_url!r}: must be an absolute http(s) URL")
    path = parts.path.rstrip("/").removesuffix("/v1")
    return f"{parts.scheme}://{parts.netloc}{path}"
