"""Following a request: its events after the last one a client has, now, or as they come.

Each check is one consistent read of the record (its events are in it), so a follower costs one read per check
whatever the request's length; checks slow down to one a second while nothing happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import NotFound
from asyncagents.domain.progress import ProgressEvent, progress_events
from asyncagents.domain.records import RequestRecord
from asyncagents.domain.requests.operations import Lookup

FIRST_CHECK_SECONDS = 0.2
IDLE_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class EventPage:
    """The events after ``after`` (all of them), and the record they were read from."""

    record: RequestRecord
    after: int
    events: list[ProgressEvent]
    total: int  # how many events the request has

    @property
    def last_id(self) -> int:
        return self.events[-1].id if self.events else min(self.after, self.total)

    @property
    def finished(self) -> bool:
        """No event will follow: the request ended and its last event is in this page or before it."""
        return self.record.status.is_terminal and self.last_id >= self.total


class Follow:
    """Reads a request's events for its owner (others get ``NotFound``, as for the request itself)."""

    def __init__(self, lookup: Lookup, *, sleep: Callable[[float], None], monotonic: Callable[[], float]) -> None:
        self._lookup = lookup
        self._sleep = sleep
        self._monotonic = monotonic

    def page(self, principal: Principal, request_id: str, *, after: int) -> EventPage:
        record = self._lookup.get(principal, request_id)
        events = progress_events(record)
        return EventPage(record=record, after=after, events=[e for e in events if e.id > after], total=len(events))

    def follow(
        self,
        principal: Principal,
        request_id: str,
        *,
        after: int,
        deadline: float | None = None,
        heartbeat_seconds: float | None = None,
        first: EventPage | None = None,
    ) -> Iterator[EventPage]:
        """Pages as events come: one at once (even empty), then one per new batch, and an empty one every
        ``heartbeat_seconds`` of quiet; ends with the page that finishes the request, or at ``deadline`` (a
        ``monotonic()`` time). The first read's ``NotFound`` propagates (``first``: that read, already made);
        a request that expires while it is followed ends the pages."""
        page = first if first is not None else self.page(principal, request_id, after=after)
        yield page
        interval = FIRST_CHECK_SECONDS
        quiet_since = self._monotonic()
        while not page.finished:
            now = self._monotonic()
            if deadline is not None and now >= deadline:
                return
            pause = interval if deadline is None else min(interval, deadline - now)
            self._sleep(max(pause, 0.0))
            interval = min(interval * 1.5, IDLE_CHECK_SECONDS)
            try:
                page = self.page(principal, request_id, after=page.last_id)
            except NotFound:  # past its retention while followed: nothing more to tell
                return
            if page.events or page.finished:
                interval, quiet_since = FIRST_CHECK_SECONDS, self._monotonic()
                yield page
            elif heartbeat_seconds is not None and self._monotonic() - quiet_since >= heartbeat_seconds:
                quiet_since = self._monotonic()
                yield page

    def wait(self, principal: Principal, request_id: str, *, after: int, seconds: float) -> EventPage:
        """The events after ``after``; when there are none yet, waits up to ``seconds`` for some (a long poll)."""
        pages = self.follow(principal, request_id, after=after, deadline=self._monotonic() + seconds)
        page = next(pages)
        if page.events or page.finished:
            return page
        for later in pages:
            if later.events or later.finished:
                return later
        return page  # nothing new (every status change comes with an event, so this page is still true)
