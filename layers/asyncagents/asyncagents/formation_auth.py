"""The ``auth`` section of the formation: verified end users (README, "Who a call acts for")."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from asyncagents.formation_base import StrictModel

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class JwtSettings(StrictModel):
    """End users verified by API Gateway's JWT authorizer against an OpenID Connect issuer (Cognito, Auth0, ...)."""

    issuer: str = Field(
        description="The issuer URL (the token's iss), e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>"
    )
    audiences: tuple[str, ...] = Field(
        min_length=1, description="Accepted aud (or client_id) values: the app clients of the issuer."
    )
    user_claim: str = Field("sub", min_length=1, max_length=128, description="The claim that names the end user.")

    @field_validator("issuer")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        local = parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS  # a test issuer beside the local stack
        if not parts.hostname or (parts.scheme != "https" and not local):
            raise ValueError("must be an https URL (API Gateway fetches the issuer's keys from it)")
        return value.rstrip("/")

    @field_validator("audiences")
    @classmethod
    def _named(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not audience.strip() or "," in audience for audience in value):
            raise ValueError("each audience is a non-empty name without commas")
        return value


class AuthSettings(StrictModel):
    jwt: JwtSettings | None = Field(
        None, description="Set: end users are verified JWTs, and a client key acts only if it is bound to one user."
    )
    audit_retention_days: int = Field(
        400, ge=1, le=3650, description="How long the records of admin calls are kept (GET /v1/admin/audit)."
    )
