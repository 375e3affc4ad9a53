"""What one API key may ask of the stack, and how many sync requests may hold an API function at once.

- **Rate**: at most ``requests_per_second`` new requests per key in each second (a counter per key and second,
  one conditional write per accept). Past it: ``TooManyRequests`` with a one-second ``Retry-After``.
- **Active requests**: at most ``max_active_requests`` requests of a key that have not ended. Each holds a slot
  named by its request key, claimed before its record is written and released when the table's stream shows it
  ended. Claims and releases are idempotent (a retried accept, a stream record delivered twice); a slot that
  leaked (a crash between claim and write, a lost release) is found when the pool is full, at most every
  ``CHECK_EVERY_SECONDS``, by looking at the requests it names.
- **Sync waits**: at most ``max_sync_waits`` sync requests wait for their answer at once, all keys together; a
  wait past the cap is not refused: the request answers 202 at once and goes on in the background. A wait's slot
  names its deadline, so a leaked one is dropped once the deadline has passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from asyncagents.domain.auth import NO_KEY_LIMITS, KeyLimits
from asyncagents.domain.errors import TooManyRequests
from asyncagents.domain.ports import RateWindows, RequestStore, SlotPools
from asyncagents.domain.times import utc_now
from asyncagents.formation_limits import Limits

# A request's slot frees when it ends; how soon that is, nothing here knows: a few seconds is a fair next try.
ACTIVE_RETRY_AFTER_SECONDS = 5
CHECK_EVERY_SECONDS = 10
SYNC_POOL = "sync-waits"


def active_pool(key_id: str) -> str:
    return f"active:{key_id}"


class RequestLimits:
    """Applies the formation's ``limits`` to accepts. Counters, slots, the records (to find leaked slots) and
    the clock are injected."""

    def __init__(
        self,
        settings: Limits,
        windows: RateWindows,
        slots: SlotPools,
        records: RequestStore,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._windows = windows
        self._slots = slots
        self._records = records
        self._clock = clock

    def count_request(self, key_id: str, own: KeyLimits = NO_KEY_LIMITS) -> None:
        """Count one new request of ``key_id`` in this second (``own`` limits, else the formation's), or refuse it."""
        most = _first_set(own.requests_per_second, self._settings.requests_per_second)
        if not most:
            return
        now = self._clock().timestamp()
        second = math.floor(now)
        if self._windows.hit(key_id, second, limit=most, forget_after=second + 60):
            return
        raise TooManyRequests(
            f"this API key made {most} requests in this second already (limits.requests_per_second)",
            retry_after_seconds=1,
            details={"limit": "requests_per_second", "allowed": most},
        )

    def claim_active(self, key_id: str, request_key: str, own: KeyLimits = NO_KEY_LIMITS) -> None:
        """Hold a slot of ``key_id``'s active requests for ``request_key``, or refuse it."""
        most = _first_set(own.max_active_requests, self._settings.max_active_requests)
        if not most:
            return
        pool = active_pool(key_id)
        if self._slots.claim(pool, request_key, most=most):
            return
        if self._free_leaked(pool, lambda member: self._ended(member)) and self._slots.claim(
            pool, request_key, most=most
        ):
            return
        raise TooManyRequests(
            f"this API key has {most} requests that have not ended (limits.max_active_requests)",
            retry_after_seconds=ACTIVE_RETRY_AFTER_SECONDS,
            details={"limit": "max_active_requests", "allowed": most},
        )

    def release_active(self, key_id: str, request_key: str) -> None:
        """Free ``request_key``'s slot (a no-op when it holds none; always tried: a key may have a limit of its own
        where the formation has none)."""
        self._slots.release(active_pool(key_id), request_key)

    @contextmanager
    def sync_wait(self, request_key: str, seconds: float) -> Iterator[bool]:
        """Whether the request may wait ``seconds`` for its answer (the slot is held while the block runs)."""
        most = self._settings.max_sync_waits
        if not most:
            yield True
            return
        deadline = math.ceil(self._clock().timestamp() + seconds)
        member = f"{deadline}:{request_key}"
        held = self._slots.claim(SYNC_POOL, member, most=most) or (
            self._free_leaked(SYNC_POOL, self._wait_over) and self._slots.claim(SYNC_POOL, member, most=most)
        )
        try:
            yield held
        finally:
            if held:
                self._slots.release(SYNC_POOL, member)

    def _free_leaked(self, pool: str, leaked: Callable[[str], bool]) -> bool:
        """Release the slots of ``pool`` that ``leaked`` says no one holds any more; True if one was."""
        now = math.floor(self._clock().timestamp())
        if not self._slots.start_check(pool, now=now, every=CHECK_EVERY_SECONDS):
            return False
        freed = False
        for member in self._slots.members(pool):
            if leaked(member):
                self._slots.release(pool, member)
                freed = True
        return freed

    def _ended(self, request_key: str) -> bool:
        # A slot is claimed a moment before its record is written: one checked in that moment is freed too
        # early, and the key may go one request over its limit once.
        record = self._records.get(request_key)
        return record is None or record.status.is_terminal

    def _wait_over(self, member: str) -> bool:
        deadline, _, _ = member.partition(":")
        return not deadline.isdigit() or int(deadline) < self._clock().timestamp()


def _first_set(own: int | None, default: int) -> int:
    return default if own is None else own
