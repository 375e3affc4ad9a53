"""One factor of a duration estimate: what the workload reader finds, and what estimates are made of."""

from __future__ import annotations

from asyncagents.model_base import LazyModel


class Factor(LazyModel):
    """One factor of the estimate: ``count`` units, and the seconds they add (low, typical, high)."""

    name: str
    count: int
    low: float
    high: float
    seconds: float = 0.0
