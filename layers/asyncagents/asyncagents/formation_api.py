"""The ``api`` section of the formation: how the API function is deployed (README, "What a request costs")."""

from __future__ import annotations

from pydantic import Field

from asyncagents.formation_base import StrictModel


class ApiSettings(StrictModel):
    snapstart: bool = Field(
        False,
        description="Lambda SnapStart on the API function: cold starts restore a snapshot taken at deploy (shorter "
        "first responses), billed per GB cached and per GB restored (see the README for the trade-off).",
    )
