"""Daily and monthly spend caps (seed 002: "Budget caps per agent ... Hard limits"), for the whole formation and
for each API key: model calls, tokens and an estimated cost from the formation's price table.

Before a model call is made it **reserves** what it may cost against every cap that applies: one call, its
estimated input (the provider's instructions, ``spend.reserve_input_tokens``, plus a token per three bytes of the
text it is sent) and ``llm.max_tokens`` of output, and their price. The reservation is a conditional counter write
that succeeds only while the counter has room for it, so concurrent calls, each holding its own, never overspend
together (beyond what a call's input exceeds its estimate). When the call returns, its real usage **settles** the
reservation; a call not made after all gives it back; a call that fails counts as a call (its tokens unknown: none).

A counter that has no room only because calls in flight hold reservations is waited on (they settle, most give
some back) until the call's own deadline; a counter whose settled spending leaves no room stops the request:
``budget_exceeded``, naming the cap, its finished steps kept. A new request that would find no room in what was
settled is refused with a 429 naming the cap and when it resets. Periods are UTC days and months. Nothing is
counted, and nothing read, when the formation has no caps.
"""

from asyncagents.domain.spend.caps import SpendCaps, SpendMeter
from asyncagents.domain.spend.counters import (
    FORMATION,
    MEASURES,
    NOTHING,
    CapUsage,
    Counted,
    Counter,
    SpendCounters,
    Spent,
)

__all__ = [
    "FORMATION",
    "MEASURES",
    "NOTHING",
    "CapUsage",
    "Counted",
    "Counter",
    "SpendCaps",
    "SpendCounters",
    "SpendMeter",
    "Spent",
]
