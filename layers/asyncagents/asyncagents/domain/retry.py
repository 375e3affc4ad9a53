"""Optimistic concurrency: read, decide, write conditionally; when the write loses, read and decide again."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from asyncagents.domain.errors import StaleWrite, StoreContention

T = TypeVar("T")

# Writers of the questions map collide only with each other's writes to one request: a few rounds settle it.
DEFAULT_ATTEMPTS = 5


def until_written(
    attempt: Callable[[], T],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    exhausted: Callable[[], Exception] | None = None,
) -> T:
    """Run ``attempt`` (which reads the record, decides, and writes conditionally) until it returns. Each
    ``StaleWrite`` it raises means someone else wrote first: it runs again on what is there now. After
    ``attempts`` lost rounds, raises ``exhausted()`` (by default ``StoreContention``, which the workflow's
    Retry retries)."""
    for _ in range(attempts):
        try:
            return attempt()
        except StaleWrite:
            continue
    raise (exhausted or _contention)()


def _contention() -> Exception:
    return StoreContention("the request kept changing under concurrent writes; retry")
