"""When an office (or the agents) are available: weekly hours, dated exceptions and public
holidays, in local time.

All comparisons use the tenant's wall-clock time (zoneinfo), so answers stay right across
daylight-saving changes.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import holidays

from voicebot.config.tenant import DateException, Handoff, Office, TimeRange, WEEKDAYS, WeeklyHours

# How far ahead to look for the next opening (covers long Christmas closures).
HORIZON_DAYS = 60


@dataclass(frozen=True)
class DayPlan:
    date: dt.date
    ranges: Tuple[TimeRange, ...]
    # Why the day differs from the usual week: a holiday name or an exception note.
    reason: str = ""

    @property
    def closed(self) -> bool:
        return not self.ranges

    def interval_at(self, time: dt.time) -> Optional[TimeRange]:
        return next((r for r in self.ranges if r.start <= time < r.end), None)


@dataclass(frozen=True)
class Opening:
    """A moment an office opens, and the interval that starts then."""

    date: dt.date
    interval: TimeRange


class Schedule:
    def __init__(self, hours: WeeklyHours, calendar: holidays.HolidayBase,
                 exceptions: Sequence[DateException] = (), open_on_holidays: bool = False):
        self.weekly = hours
        self.calendar = calendar
        self.open_on_holidays = open_on_holidays
        self._exceptions = {e.date: e for e in exceptions}

    @classmethod
    def of_office(cls, office: Office, calendar: holidays.HolidayBase) -> "Schedule":
        return cls(office.hours, calendar, office.exceptions, office.open_on_holidays)

    @classmethod
    def of_agents(cls, handoff: Handoff, office: Office, calendar: holidays.HolidayBase) -> "Schedule":
        """When a line's agents take calls: their hours, without holidays and, unless the line says
        otherwise, within the office's own on its dated exceptions (closed on Christmas Eve, until
        noon on Rosenmontag)."""
        if not handoff.follow_office_exceptions:
            return cls(handoff.agent_hours, calendar)
        exceptions = []
        for exception in office.exceptions:
            hours = [TimeRange(start=max(a.start, b.start), end=min(a.end, b.end))
                     for a in handoff.agent_hours.on(exception.date) for b in exception.hours
                     if max(a.start, b.start) < min(a.end, b.end)]
            exceptions.append(DateException(date=exception.date, closed=not hours, hours=hours, note=exception.note))
        return cls(handoff.agent_hours, calendar, exceptions)

    def day(self, date: dt.date) -> DayPlan:
        exception = self._exceptions.get(date)
        if exception:
            return DayPlan(date, tuple(exception.hours), exception.note)
        holiday = self.calendar.get(date)
        if holiday and not self.open_on_holidays:
            return DayPlan(date, (), holiday)
        return DayPlan(date, tuple(self.weekly.on(date)))

    def is_open(self, local: dt.datetime) -> bool:
        return self.day(local.date()).interval_at(local.time()) is not None

    def next_opening(self, after: dt.datetime) -> Optional[Opening]:
        """The first interval that starts after the given local wall-clock moment."""
        for offset in range(HORIZON_DAYS + 1):
            date = after.date() + dt.timedelta(days=offset)
            for interval in self.day(date).ranges:
                if offset or interval.start > after.time():
                    return Opening(date, interval)
        return None

    def weekly_summary(self) -> list:
        """[(first weekday, last weekday, ranges)] grouping consecutive days with equal hours."""
        groups = []
        for day in WEEKDAYS:
            ranges = tuple(self.weekly.days.get(day, ()))
            if not ranges:
                continue
            if groups and groups[-1][2] == ranges and WEEKDAYS.index(groups[-1][1]) == WEEKDAYS.index(day) - 1:
                groups[-1] = (groups[-1][0], day, ranges)
            else:
                groups.append((day, day, ranges))
        return groups
