"""Spoken answers computed from a tenant's offices: opening hours and locations."""

import datetime as dt
import re
from typing import Optional

from voicebot.config.tenant import Tenant, TimeRange, WEEKDAYS
from voicebot.knowledge.opening_hours import DayPlan, Schedule
from voicebot.knowledge.phrasebook import Phrasebook
from voicebot.knowledge.when import When, named_days, parse_when, said_last


def when_asked(tenant: Tenant, text: str, now: dt.datetime, time_text: str = "") -> When:
    """The day and time a caller of this line asked about: public holidays by their names and the
    line's dated exceptions by their notes ("Rosenmontag") count as days."""
    today = now.astimezone(tenant.zone).date()
    notes = [(e.date, e.note) for office in tenant.offices.values() for e in office.exceptions]
    names = named_days(tenant.language, today, tenant.holiday_calendar(), notes)
    return parse_when(text, tenant.language, today, names=names, time_text=time_text)


def office_asked(tenant: Tenant, text: str) -> Optional[str]:
    """The office the caller named last ("the library, no, I mean the town hall"), or None."""
    return said_last(text, tenant.language, lambda part: find_office(tenant, part))


def find_office(tenant: Tenant, text: str) -> Optional[str]:
    """The office whose alias (or id) the text names, longest alias first; None if none."""
    text = " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())
    candidates = [
        (alias, office_id)
        for office_id, office in tenant.offices.items()
        for alias in [*office.aliases, office.name.lower(), office_id.replace("_", " ")]
    ]
    for alias, office_id in sorted(candidates, key=lambda c: -len(c[0])):
        if re.search(rf"\b{re.escape(alias)}\b", text):
            return office_id
    return None


class OpeningHoursAnswer:
    """Answers "are you open now / tomorrow / on Saturday / at five?" for one office."""

    def __init__(self, tenant: Tenant, office_id: Optional[str], phrases: Phrasebook):
        self.office = tenant.office(office_id)
        self.hours = Schedule.of_office(self.office, tenant.holiday_calendar())
        self.phrases = phrases
        self.zone = tenant.zone

    def answer(self, when: When, now: dt.datetime) -> str:
        local = now.astimezone(self.zone)
        if when.date is None and when.time is None:
            return self._now_and_week(local)
        date = when.date or local.date()
        if when.date is None and when.time is not None and when.time <= local.time():
            date += dt.timedelta(days=1)  # "at five" asked after five means the next five o'clock
        plan = self.hours.day(date)
        if when.time is None:
            return self._day(plan, local)
        return self._moment(plan, when.time, local)

    def _say(self, key: str, **values) -> str:
        return self.phrases.hours(key, office=self.office.name, **values)

    def _next(self, after: dt.datetime, today: dt.date) -> str:
        opening = self.hours.next_opening(after)
        if opening is None:
            return self._say("no_opening")
        return self._say("opens_next", day=self.phrases.day(opening.date, today),
                         start=self.phrases.clock(opening.interval.start))

    def _now_and_week(self, local: dt.datetime) -> str:
        today = self.hours.day(local.date())
        interval = today.interval_at(local.time())
        if interval:
            status = self._say("open_now", end=self.phrases.clock(interval.end))
        else:
            status = f"{self._say('closed_now')} {self._next(local, local.date())}"
        return f"{status} {self._week()}"

    def _week(self) -> str:
        groups = []
        for first, last, ranges in self.hours.weekly_summary():
            span = WEEKDAYS.index(last) - WEEKDAYS.index(first)
            key = ("weekly_single", "weekly_pair")[span] if span < 2 else "weekly_group"
            groups.append(self.phrases.hours(key, first=self.phrases.weekday(first),
                                             last=self.phrases.weekday(last),
                                             ranges=self.phrases.ranges(ranges)))
        return self._say("weekly", summary=", ".join(groups))

    def _day(self, plan: DayPlan, local: dt.datetime) -> str:
        day = self.phrases.day(plan.date, local.date())
        if plan.closed:
            key = "closed_on_day_reason" if plan.reason else "closed_on_day"
            closed = self._say(key, day=day, reason=self.phrases.reason(plan.reason))
            return f"{closed} {self._next(dt.datetime.combine(plan.date, dt.time(23, 59)), local.date())}"
        answer = self._say("open_on_day", day=day, ranges=self.phrases.ranges(plan.ranges))
        if plan.reason:
            answer = f"{answer} {self._say('changed_on_day', reason=self.phrases.reason(plan.reason))}"
        return answer

    def _moment(self, plan: DayPlan, time: dt.time, local: dt.datetime) -> str:
        day = self.phrases.day(plan.date, local.date())
        interval: Optional[TimeRange] = plan.interval_at(time)
        spoken_time = self.phrases.clock(time)
        if interval:
            return self._say("open_at", day=day, time=spoken_time, end=self.phrases.clock(interval.end))
        closed = self._say("closed_at", day=day, time=spoken_time)
        if plan.ranges:
            return f"{closed} {self._say('open_on_day', day=day, ranges=self.phrases.ranges(plan.ranges))}"
        return f"{closed} {self._next(dt.datetime.combine(plan.date, time), local.date())}"


def location_answer(tenant: Tenant, office_id: Optional[str], phrases: Phrasebook) -> str:
    office = tenant.office(office_id)
    return phrases.data["location"].format(office=office.name, address=office.address)
