"""A tenant is one municipality line: numbers, language, offices, hours, answers, handoff."""

import datetime as dt
import re
from functools import lru_cache
from typing import Dict, List, Literal, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import Field, root_validator, validator

from voicebot.config.base import Strict
from voicebot.config.topics import Behaviour, plain_text_answer

# ko: a phrasebook for Korean lines, the one language with a Vosk model on PyPI (the tests use it).
# nb, sv: Norwegian (bokmål) and Swedish, heard by Whisper.
LANGUAGES = ("da", "de", "en", "ko", "nb", "sv")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class TimeRange(Strict):
    """An opening interval within one day, e.g. "10:00-17:30"."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> "TimeRange":
        match = _RANGE.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a time range like 10:00-15:30")
        h1, m1, h2, m2 = map(int, match.groups())
        if not (h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60):
            raise ValueError(f"{text!r} has an impossible clock time")
        start, end = dt.time(h1, m1), dt.time(h2, m2)
        if end <= start:
            raise ValueError(f"{text!r} ends before it starts")
        return cls(start=start, end=end)


def _ranges(value) -> List[TimeRange]:
    if not isinstance(value, list):
        raise ValueError("expected a list of time ranges like [\"10:00-15:00\"]")
    ranges = sorted(
        (r if isinstance(r, TimeRange) else TimeRange.parse(str(r)) for r in value),
        key=lambda r: r.start,
    )
    for earlier, later in zip(ranges, ranges[1:]):
        if later.start < earlier.end:
            raise ValueError("time ranges overlap")
    return ranges


class WeeklyHours(Strict):
    """Opening intervals per weekday; a missing weekday is closed."""

    days: Dict[str, List[TimeRange]]

    @classmethod
    def __get_validators__(cls):
        yield cls._validate

    @classmethod
    def _validate(cls, value):
        if isinstance(value, WeeklyHours):
            return value
        if not isinstance(value, dict):
            raise ValueError("expected a mapping of weekday to time ranges")
        days = {}
        for day, ranges in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday (use {', '.join(WEEKDAYS)})")
            try:
                days[day] = _ranges(ranges)
            except ValueError as error:
                raise ValueError(f"{day}: {error}") from None
        return cls(days=days)

    def on(self, date: dt.date) -> List[TimeRange]:
        return self.days.get(WEEKDAYS[date.weekday()], [])


class DateException(Strict):
    """A dated change to the weekly hours: closed, or other hours, for one day."""

    date: dt.date
    closed: bool = False
    hours: List[TimeRange] = []
    note: str = ""

    _hours = validator("hours", pre=True, allow_reuse=True)(_ranges)

    @root_validator(skip_on_failure=True)
    def closed_or_hours(cls, values):
        if values["closed"] == bool(values["hours"]):
            raise ValueError("give either closed: true or hours, not both or neither")
        return values


class Office(Strict):
    name: str
    aliases: List[str] = []
    address: str
    hours: WeeklyHours
    exceptions: List[DateException] = []
    open_on_holidays: bool = False

    @validator("aliases", each_item=True)
    def lower_case_alias(cls, alias: str) -> str:
        return alias.strip().lower()

    @validator("exceptions")
    def one_exception_per_date(cls, exceptions):
        dates = [e.date for e in exceptions]
        duplicates = sorted({d for d in dates if dates.count(d) > 1})
        if duplicates:
            raise ValueError(f"more than one exception for {duplicates[0]}")
        return exceptions


class HolidayCalendar(Strict):
    country: str
    subdivision: Optional[str] = None

    @root_validator(skip_on_failure=True)
    def known_calendar(cls, values):
        try:
            holidays.country_holidays(values["country"], subdiv=values["subdivision"])
        except NotImplementedError as error:  # unknown country or subdivision; its text says which
            raise ValueError(f"the holidays package has no such calendar: {error}") from None
        return values


class Handoff(Strict):
    queue: str
    agent_hours: WeeklyHours
    # queue: callers wait in the bot's own queue for its agents; refer: a blind transfer (SIP
    # REFER) to transfer_uri, an existing PBX's queue.
    via: Literal["queue", "refer"] = "queue"
    transfer_uri: Optional[str] = None
    # Agents keep the line's default office's dated exceptions (closed on Christmas Eve, home at
    # noon on Rosenmontag), so no caller is offered a person who is not there; false where they work.
    follow_office_exceptions: bool = True

    @root_validator(skip_on_failure=True)
    def refer_needs_a_target(cls, values):
        if values["via"] == "refer" and not values.get("transfer_uri"):
            raise ValueError("via: refer needs a transfer_uri")
        return values


@lru_cache(maxsize=None)
def _holiday_calendar(country: str, subdivision: Optional[str], language: str) -> holidays.HolidayBase:
    calendar = holidays.country_holidays(country, subdiv=subdivision)
    names = [code for code in calendar.supported_languages if code.split("_")[0] == language]
    language = names[0] if names else calendar.default_language
    if getattr(calendar, "include_sundays", False):
        # Sweden's calendar counts every Sunday as a holiday: an office open on Sundays would be
        # closed "because of Sunday". The weekly hours say which Sundays a line opens.
        return type(calendar)(subdiv=subdivision, language=language, include_sundays=False)
    return holidays.country_holidays(country, subdiv=subdivision, language=language)


def _default_office_exists(cls, values):
    """A line's, or a shared line's municipality's, default_office is one of its offices."""
    if values["default_office"] not in values["offices"]:
        raise ValueError(f"default_office: {values['default_office']!r} is not one of the offices "
                         f"{', '.join(values['offices'])}")
    return values


class Municipality(Strict):
    """One of the municipalities a shared line serves: its own offices, hours, holidays and
    answers (over the line's shared ones), and optionally its own handoff queue."""

    name: str
    # What callers call it beside its name: its towns, older names, common misspellings.
    aliases: List[str] = []
    default_office: str
    offices: Dict[str, Office]
    holidays: Optional[HolidayCalendar] = None  # the line's, unless a region differs
    topics: Dict[str, Behaviour] = {}
    queue: Optional[str] = None  # the line's handoff queue, unless it has its own

    _answers = validator("topics", pre=True, allow_reuse=True)(
        lambda value: {k: plain_text_answer(v) for k, v in value.items()} if isinstance(value, dict) else value)

    @validator("aliases", each_item=True)
    def lower_case_alias(cls, alias: str) -> str:
        return alias.strip().lower()

    _default_office = root_validator(skip_on_failure=True, allow_reuse=True)(_default_office_exists)


class Tenant(Strict):
    id: str
    name: str
    language: str
    timezone: str
    numbers: List[str]
    greeting: str
    holidays: HolidayCalendar
    default_office: str
    offices: Dict[str, Office]
    handoff: Handoff
    callback_promise: str
    # The promise in working days (Monday to Friday, not the line's public holidays): agents see
    # each callback's due time from it. callback_promise says the same to callers.
    callback_working_days: int = Field(2, ge=1, le=30)
    # What the line does with each topic of topics.yml (an answer, a handoff or a callback
    # offer); a topic left out takes the topic's default there.
    topics: Dict[str, Behaviour] = {}
    # Call records (transcripts, events, callbacks) older than this are deleted.
    retention_days: int = Field(90, ge=1, le=3650)
    # espeak-ng voice id (e.g. gmq/da); default: the preferred voice for the language.
    voice: Optional[str] = None
    # Phone keypad menu after silence or on a line without speech recognition: digit 1 is
    # the first topic, and so on; 0 is always a person.
    keypad_menu: List[str] = ["opening_hours", "passport", "change_address", "digital_id_help",
                              "waste_collection"]
    # A line shared by several municipalities (an evening hotline): each with its own facts. The
    # bot works out which one the caller means, asking when the answer depends on it.
    municipalities: Dict[str, Municipality] = {}
    # Which of them this view of the line answers for (for_municipality); never in a file.
    serving: Optional[str] = None

    @validator("keypad_menu")
    def one_to_nine(cls, value: List[str]) -> List[str]:
        if not 1 <= len(value) <= 9:  # which topics exist is checked with topics.yml
            raise ValueError("give 1 to 9 topics (digits 1-9; 0 is a person)")
        return value

    _answers = validator("topics", pre=True, allow_reuse=True)(
        lambda value: {k: plain_text_answer(v) for k, v in value.items()} if isinstance(value, dict) else value)

    @validator("serving")
    def not_in_files(cls, value):
        if value is not None:
            raise ValueError("is the bot's own, not a setting: list the line's municipalities under municipalities")
        return value

    @validator("id")
    def slug(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
            raise ValueError("use lower-case letters, digits and dashes")
        return value

    @validator("language")
    def supported_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"{value!r} is not one of the languages {', '.join(LANGUAGES)}")
        return value

    @validator("timezone")
    def known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name like Europe/Copenhagen") from None
        return value

    @validator("numbers")
    def some_numbers(cls, value: List[str]) -> List[str]:
        if not value:
            raise ValueError("a line needs at least one dialled number")
        for number in value:
            if not re.fullmatch(r"\+?[0-9]{3,15}", number):
                raise ValueError(f"{number!r} is not a phone number (digits, optional leading +)")
        return value

    @validator("offices")
    def some_offices(cls, value):
        if not value:
            raise ValueError("a line needs at least one office")
        return value

    _default_office = root_validator(skip_on_failure=True, allow_reuse=True)(_default_office_exists)

    def for_municipality(self, municipality_id: str) -> "Tenant":
        """The line as it answers for one of its municipalities: that municipality's offices
        beside the line's own, its holidays, its answers over the shared ones, its queue."""
        municipality = self.municipalities[municipality_id]
        # Its name and towns stand for its default office: "is Køge open tomorrow?"
        default = municipality.offices[municipality.default_office]
        default = default.copy(update={"aliases": [*default.aliases, municipality.name.lower(), *municipality.aliases]})
        return self.copy(update={
            "offices": {**self.offices, **municipality.offices, municipality.default_office: default},
            "default_office": municipality.default_office, "holidays": municipality.holidays or self.holidays,
            "topics": {**self.topics, **municipality.topics},
            "handoff": self.handoff.copy(update={"queue": municipality.queue or self.handoff.queue}),
            "serving": municipality_id})

    @property
    def municipality_name(self) -> Optional[str]:
        """The name of the municipality this view answers for, if it is one's."""
        return self.municipalities[self.serving].name if self.serving else None

    def answer(self, topic: str) -> Optional[str]:
        """The text the line says for a topic, if it answers it."""
        behaviour = self.topics.get(topic)
        return behaviour and behaviour.answer

    @property
    def office_names(self) -> List[str]:
        """What callers call the line's offices, and on a shared line its municipalities and their
        towns: its own words, for a recogniser's hint."""
        names = {}
        places = [*self.offices.values(), *(o for m in self.municipalities.values() for o in m.offices.values())]
        for name in [n for o in places for n in (o.name, *o.aliases)] + \
                [n for m in self.municipalities.values() for n in (m.name, *m.aliases)]:
            names.setdefault(name.lower(), name)
        return list(names.values())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def country(self) -> str:
        """Where the line is (its holidays' country): callers' numbers without a + are read as its."""
        return self.holidays.country

    def holiday_calendar(self) -> holidays.HolidayBase:
        """The country's public holidays, named in the line's language where the package can."""
        return _holiday_calendar(self.holidays.country, self.holidays.subdivision, self.language)

    def office(self, office_id: Optional[str] = None) -> Office:
        return self.offices[office_id or self.default_office]
