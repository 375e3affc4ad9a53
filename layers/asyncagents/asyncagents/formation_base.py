"""What every section of the formation is built on."""

from __future__ import annotations

from pydantic import ConfigDict

from asyncagents.model_base import LazyModel


class StrictModel(LazyModel):
    """Unknown keys are an error: a typo in the formation must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
