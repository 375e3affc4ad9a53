"""When a schedule runs: a cron expression, a rate or a one-time time, in an IANA time zone.

Accepted forms (``schedule`` in the formation and the API):

- Unix cron, five fields ``minute hour day-of-month month day-of-week`` (``0 9 * * 1-5``; day-of-week 0-7,
  0 and 7 Sunday, or MON-SUN);
- EventBridge's own ``cron(minute hour day-of-month month day-of-week year)`` (day-of-week 1-7, 1 Sunday; one
  of the day fields ``?``; year ``*``), ``rate(5 minutes)`` and ``at(2026-12-01T09:00:00)``;
- an ISO 8601 time for a one-time run (``2026-12-01T09:00:00``, in the time zone, or with an offset).

Each becomes the EventBridge Scheduler expression the schedule is created with, and the same expression gives
the next runs (cronsim, in the time zone, with its DST rules: a run in a skipped hour happens when the clocks
have jumped, a run in a repeated hour happens once), which the local stack uses to fire schedules itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Kind = Literal["cron", "rate", "at"]
_RATE = re.compile(r"^rate\(\s*([1-9][0-9]{0,5})\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_EVENTBRIDGE_CRON = re.compile(r"^cron\((.*)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# Steps: Unix writes */15, EventBridge 0/15 (a start, then increments): each field's first and last value.
_STARTS = ("0", "0", "1", "1")
_HIGHS = (59, 23, 31, 12)


@dataclass(frozen=True)
class Timing:
    """A validated schedule: its EventBridge ``expression``, its time zone, and how to compute its runs."""

    kind: Kind
    expression: str
    timezone: str
    unix_cron: str | None = None  # kind cron: the five-field form cronsim reads
    every_seconds: int | None = None  # kind rate
    at: datetime | None = None  # kind at: the moment (aware)

    def runs_after(self, after: datetime, *, anchor: datetime | None = None, limit: int = 1) -> list[datetime]:
        """The next ``limit`` runs strictly after ``after`` (aware datetimes, in UTC). A rate runs from
        ``anchor`` (when the schedule was created: at once, then every interval), as EventBridge Scheduler does."""
        after = after.astimezone(UTC)
        if self.kind == "at":
            assert self.at is not None
            return [self.at.astimezone(UTC)] if self.at.astimezone(UTC) > after else []
        if self.kind == "rate":
            assert self.every_seconds is not None
            start = (anchor or after).astimezone(UTC)
            step = timedelta(seconds=self.every_seconds)
            first = start if after < start else start + step * (int((after - start) / step) + 1)
            return [first + step * index for index in range(limit)]
        return self._cron_runs(after, limit)

    def _cron_runs(self, after: datetime, limit: int) -> list[datetime]:
        """Wall-clock times the expression names, in the zone: one that the clocks skip (spring forward) does
        not run, one they repeat (autumn) runs once, at its first occurrence."""
        from cronsim import CronSim

        assert self.unix_cron is not None
        zone = ZoneInfo(self.timezone)
        wall = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=2)
        found: list[datetime] = []
        for moment in CronSim(self.unix_cron, wall):
            local = moment.replace(tzinfo=zone)  # fold=0: the first of a repeated time
            instant = local.astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) != moment:
                continue  # in the hour the clocks skip
            if instant > after:
                found.append(instant)
            if len(found) >= limit:
                return found
        return found

    def runs_between(self, start: datetime, end: datetime, *, anchor: datetime | None = None) -> list[datetime]:
        """Every run in ``(start, end]``: what a scheduler that looked at ``start`` and now at ``end`` owes."""
        runs: list[datetime] = []
        cursor = start
        while True:
            upcoming = self.runs_after(cursor, anchor=anchor)
            if not upcoming or upcoming[0] > end:
                return runs
            runs.append(upcoming[0])
            cursor = upcoming[0]


def parse_timing(text: str, timezone: str = "UTC", *, now: datetime | None = None) -> Timing:
    """``text`` in any accepted form; ``ValueError`` saying what is wrong (the caller names the field)."""
    zone = _zone(timezone)
    value = text.strip()
    if rate := _RATE.match(value):
        count, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        expression = f"rate({count} {unit if count == 1 else unit + 's'})"
        return Timing("rate", expression, timezone, every_seconds=count * _UNIT_SECONDS[unit])
    if value.startswith("cron("):
        match = _EVENTBRIDGE_CRON.match(value)
        if match is None:
            raise ValueError("an EventBridge cron expression looks like cron(0 9 * * ? *)")
        # Kept as written (EventBridge reads it); its Unix form only computes the runs.
        written = f"cron({' '.join(match.group(1).split())})"
        return _cron(_unix_of(match.group(1)), timezone, written=written)
    if at := _AT.match(value):
        return _one_time(datetime.fromisoformat(at.group(1)), zone, timezone, now)
    if len(value.split()) == 5:
        return _cron(value, timezone)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a schedule: use cron (0 9 * * *), cron(0 9 * * ? *), rate(1 hour) or an ISO 8601 "
            "time (2026-12-01T09:00:00)"
        ) from None
    return _one_time(moment, zone, timezone, now)


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of the database (America), not a zone
        raise ValueError(f"{timezone!r} is not an IANA time zone (like Europe/Paris or UTC)") from None


def _one_time(moment: datetime, zone: ZoneInfo, timezone: str, now: datetime | None) -> Timing:
    try:
        local = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
        local = local.replace(microsecond=0)
        local.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is out of range") from None
    if now is not None and local <= now:
        raise ValueError(f"{local.isoformat()} is in the past")
    expression = f"at({local.replace(tzinfo=None).isoformat(timespec='seconds')})"
    return Timing("at", expression, timezone, at=local)


def _cron(unix: str, timezone: str, *, written: str | None = None) -> Timing:
    """A five-field Unix expression, checked by cronsim, and its EventBridge form."""
    from cronsim import CronSim, CronSimError

    fields = unix.split()
    if len(fields) != 5:
        raise ValueError("a cron expression has five fields: minute hour day-of-month month day-of-week")
    try:
        CronSim(unix, datetime.now(UTC))
    except CronSimError as error:
        raise ValueError(f"{unix!r}: {error}") from None
    minute, hour, day, month = (_steps_from(field, start) for field, start in zip(fields[:4], _STARTS, strict=True))
    weekday = fields[4]  # written as a list of days (EventBridge takes no steps there)
    if day != "*" and weekday != "*":
        raise ValueError("EventBridge Scheduler cannot restrict both day-of-month and day-of-week; use one")
    if weekday == "*":
        weekday = "?"
    else:
        day = "?"
        weekday = _weekdays(weekday, sunday=0)
    expression = written or f"cron({minute} {hour} {day} {month} {weekday} *)"
    return Timing("cron", expression, timezone, unix_cron=unix)


def _steps_from(field: str, start: str) -> str:
    return ",".join(start + item[1:] if item.startswith("*/") else item for item in field.split(","))


def _steps_to(field: str, high: int) -> str:
    def unix(item: str) -> str:
        base, _, step = item.partition("/")
        return f"{base}-{high}/{step}" if step and base.isdigit() else item

    return ",".join(unix(item) for item in field.split(","))


def _unix_of(eventbridge: str) -> str:
    fields = eventbridge.split()
    if len(fields) != 6:
        raise ValueError("an EventBridge cron expression has six fields: minute hour day month day-of-week year")
    minute, hour, day, month = (_steps_to(field, high) for field, high in zip(fields[:4], _HIGHS, strict=True))
    weekday, year = fields[4], fields[5]
    if year != "*":
        raise ValueError("the year field must be * (a schedule that ends is a one-time run or a deletion)")
    if (day == "?") == (weekday == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be ?")
    if "/" in weekday:
        raise ValueError("day-of-week: EventBridge takes no steps there; list the days (MON,WED,FRI)")
    weekday = "*" if weekday == "?" else _weekdays(weekday, sunday=1)
    return " ".join((minute, hour, "*" if day == "?" else day, month, weekday))


def _weekdays(field: str, *, sunday: int) -> str:
    """A day-of-week field as the other form writes it: ``sunday`` is how the field numbers Sunday (Unix 0,
    and 7 too; EventBridge 1). Written as a list of days, so that ranges never need renumbering."""
    high = 7
    days: set[int] = set()
    for item in field.upper().split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"day-of-week {item!r}: a step is a positive number")
        if base == "*":
            first, last = sunday, sunday + 6
        elif step is not None and base.isdigit():  # n/s: from day n to the field's end, every s days
            first, last = _day_number(base, sunday, high), high
        else:
            bounds = [_day_number(bound, sunday, high) for bound in base.split("-")]
            if len(bounds) > 2 or (len(bounds) == 2 and bounds[0] > bounds[1]):
                raise ValueError(f"day-of-week {item!r}: a range goes from a lower to a higher day")
            first, last = bounds[0], bounds[-1]
        days.update((number - sunday) % 7 for number in range(first, last + 1, step or 1))
    if len(days) == 7:
        return "*"
    target_sunday = 1 if sunday == 0 else 0
    return ",".join(str(day + target_sunday) for day in sorted(days))


def _day_number(token: str, sunday: int, high: int) -> int:
    if token in _DAY_NAMES:
        return _DAY_NAMES.index(token) + sunday
    if token.isdigit() and sunday <= int(token) <= high:
        return int(token)
    lowest = "0-7 (0 and 7 are Sunday)" if sunday == 0 else "1-7 (1 is Sunday)"
    raise ValueError(f"day-of-week {token!r}: use {lowest}, names (MON-FRI), ranges, lists or */n")
