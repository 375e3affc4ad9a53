"""Trigger definitions: ``triggers/<name>.md`` beside the formation, as MUXI has them, validated at build time.

A definition is a message template (the Markdown body, with ``${{ data.a.b }}`` placeholders) and optional
YAML front matter between ``---`` lines. MUXI's keys: ``name``, ``type``, ``webhook``, ``parse``
(``message``, ``user_id``, ``context`` as ``$.a.b`` paths). Ours: ``description``, ``async`` (the default
mode, async unless said), ``webhook_url``, ``when`` (which events fire; others are acknowledged and
ignored) and ``verify`` (how a provider's delivery proves its sender, instead of a client key).

The build (``make build``) loads the folder into the formation it ships, so the functions never read files
at run time; errors name the file, the key and the reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from asyncagents.domain.errors import ConfigError
from asyncagents.domain.triggers.template import data_fields, foreign_expressions, path_segments
from asyncagents.model_base import LazyModel

TRIGGER_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
SECRET_ARN_PATTERN = r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$"
Provider = Literal["github", "stripe", "slack", "standard-webhooks", "hmac"]
Scalar = str | int | float | bool | None


def _refusing(data: Any, key: str, why: str) -> Any:
    """MUXI keys we do not take, refused with the reason (rather than pydantic's "extra inputs")."""
    if isinstance(data, dict) and key in data:
        raise ValueError(f"{key}: not supported ({why})")
    return data


class _Strict(LazyModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Verification(_Strict):
    """How a delivery proves its sender: the provider's signature, checked with a secret we hold."""

    provider: Provider
    secret_arn: str | None = Field(
        None,
        pattern=SECRET_ARN_PATTERN,
        description="A Secrets Manager secret of yours holding the signing secret: its full ARN (with the "
        "6-character suffix; IAM matches it exactly). Unset: the stack's TriggerSecrets secret, under the "
        "trigger's name.",
    )
    secret_env: str | None = Field(
        None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="The environment variable the local stack reads the secret from "
        "(default ASYNCAGENTS_TRIGGER_SECRET_<NAME>).",
    )
    allow_client_key: bool = Field(False, description="Also accept an X-Muxi-Client-Key instead of a signature.")
    tolerance_seconds: int = Field(300, ge=1, le=3600, description="Stripe, Slack, Standard Webhooks: clock skew.")
    # The generic scheme: an HMAC of the raw body in a header of the sender's choosing.
    header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]+$", description="hmac: the signature's header.")
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field("", max_length=32, description="hmac: text before the digest, e.g. 'sha256='.")

    @model_validator(mode="after")
    def _generic_fields_for_hmac_only(self) -> Verification:
        if self.provider == "hmac" and not self.header:
            raise ValueError("header: required when provider is hmac (the header that carries the signature)")
        if self.provider != "hmac":
            for field in ("header", "prefix"):
                if getattr(self, field):
                    raise ValueError(f"{field}: only for provider hmac ({self.provider} has fixed headers)")
        return self

    def environment_variable(self, trigger: str) -> str:
        """Where the local stack finds this trigger's secret."""
        return self.secret_env or "ASYNCAGENTS_TRIGGER_SECRET_" + re.sub(r"[^A-Z0-9]", "_", trigger.upper())


class Parse(_Strict):
    """MUXI's ``parse``: values taken from the event's data by path (``$.sender.login``)."""

    message: str | None = Field(None, description="The message is this value (instead of the template).")
    user_id: str | None = Field(None, description="The end user the request acts for.")
    context: str | None = Field(None, description="Appended to the message as context (JSON when not text).")
    session_id: str | None = Field(None, description="Groups requests (e.g. $.repository.full_name).")

    @model_validator(mode="before")
    @classmethod
    def _no_files(cls, data: Any) -> Any:
        return _refusing(data, "files", "a trigger's request carries its data in the message")

    @field_validator("message", "user_id", "context", "session_id")
    @classmethod
    def _a_path(cls, value: str | None) -> str | None:
        if value is not None:
            path_segments(value)  # raises ValueError naming the path
        return value


class TriggerDefinition(_Strict):
    """One ``triggers/<name>.md``: its front matter's keys, and ``template`` (the Markdown body)."""

    name: str = Field(pattern=TRIGGER_NAME_PATTERN, max_length=64)
    type: Literal["webhook"] = "webhook"
    description: str = Field("", max_length=500)
    webhook: Any = Field(None, description="MUXI's key: kept and shown, not interpreted.")
    async_: bool = Field(True, alias="async", description="The default mode; a call may ask otherwise.")
    webhook_url: str | None = Field(None, max_length=2048, pattern=r"^[hH][tT][tT][pP][sS]?://[^/?#@\s]+")
    verify: Verification | None = Field(None, description="Unset: callers need a client key, as in MUXI.")
    parse: Parse = Field(default_factory=Parse)
    when: dict[str, list[Scalar]] = Field(
        default_factory=dict, description="Fire only when each path's value is one of those listed."
    )
    template: str = Field("", max_length=32 * 1024)

    @model_validator(mode="before")
    @classmethod
    def _no_code(cls, data: Any) -> Any:
        return _refusing(data, "transformer", "it runs code; use parse and the template")

    @field_validator("when")
    @classmethod
    def _paths(cls, value: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        for path, accepted in value.items():
            path_segments(path)
            if not accepted:
                raise ValueError(f"{path}: list at least one value")
        return value

    @field_validator("template")
    @classmethod
    def _only_data(cls, value: str) -> str:
        foreign = foreign_expressions(value)
        if foreign:
            raise ValueError(f"{foreign[0]}: a template may only use ${{{{ data.<path> }}}} placeholders")
        return value

    @model_validator(mode="after")
    def _one_message(self) -> TriggerDefinition:
        if self.parse.message and self.template.strip():
            raise ValueError("template: give the message as the body or as parse.message, not both")
        if not self.parse.message and not self.template.strip():
            raise ValueError("template: the body is empty (write the message, or set parse.message)")
        return self

    @property
    def data_fields(self) -> list[str]:
        """The data paths the message uses (``issue.title``), as MUXI lists them."""
        fields = dict.fromkeys(data_fields(self.template))
        for path in (self.parse.message, self.parse.user_id, self.parse.context, self.parse.session_id):
            if path is not None:
                fields.setdefault(".".join(path_segments(path)))
        return list(fields)


def _front_matter(text: str) -> tuple[str | None, str]:
    """``(front matter or None, body)`` of a definition file."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None, text
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    raise ConfigError("front matter: opened with '---' but never closed")


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        reason = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {reason}" if where else reason)
    return "; ".join(problems)


def load_definition(path: Path) -> TriggerDefinition:
    """One definition file; ``ConfigError`` naming the file, the key and the reason."""
    import yaml  # build time and the local stack only: the layer ships the definitions as JSON

    name = path.stem
    try:
        if not re.match(TRIGGER_NAME_PATTERN, name):
            raise ConfigError(f"the file name must match {TRIGGER_NAME_PATTERN} (it names the trigger)")
        front, body = _front_matter(path.read_text(encoding="utf-8"))
        try:
            fields = yaml.safe_load(front) if front and front.strip() else {}
        except yaml.YAMLError as error:
            raise ConfigError(f"front matter: not valid YAML ({error})") from None
        if not isinstance(fields, dict):
            raise ConfigError("front matter: must be a mapping of keys")
        if fields.get("name", name) != name:
            raise ConfigError(f"name: {fields['name']!r} differs from the file's name {name!r}")
        if "template" in fields:
            raise ConfigError("template: not a front matter key (the message is the file's body)")
        try:
            return TriggerDefinition.model_validate({**fields, "name": name, "template": body.strip()})
        except ValidationError as error:
            raise ConfigError(_describe(error)) from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error.message}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read ({error})") from None


def load_triggers(folder: Path) -> dict[str, TriggerDefinition]:
    """Every ``*.md`` of ``folder`` (none when it does not exist), by name."""
    if not folder.is_dir():
        return {}
    return {path.stem: load_definition(path) for path in sorted(folder.glob("*.md")) if path.is_file()}
