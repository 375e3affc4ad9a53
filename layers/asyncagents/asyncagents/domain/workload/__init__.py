"""What a request asks for, read from its message: the factors of how long it will take (no model call)."""

from asyncagents.domain.factor import Factor
from asyncagents.domain.workload.factors import UNIT_SECONDS, analyse
from asyncagents.domain.workload.reading import normalise

__all__ = ["UNIT_SECONDS", "Factor", "analyse", "normalise"]
