"""Per-language phrasebooks (content/<lang>.yml): system prompts and templates for spoken dates."""

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import yaml

from voicebot.config.errors import ConfigError
from voicebot.config.tenant import TimeRange, WEEKDAYS

CONTENT_DIR = Path(__file__).resolve().parents[2] / "content"
_REQUIRED = {"weekdays", "months", "dates", "hours", "location", "say", "topics"}


@dataclass(frozen=True)
class Phrasebook:
    language: str
    data: dict

    def say(self, key: str, **values) -> str:
        return self._template("say", key).format(**values)

    def keypad_menu(self, topics: Sequence[str]) -> str:
        """"For opening hours, press 1. ... To speak to a member of staff, press 0." """
        items = [self.say("keypad_item", topic=self.data["topics"][intent], digit=digit)
                 for digit, intent in enumerate(topics, start=1)]
        return " ".join(items + [self.say("keypad_person")])

    @property
    def unfinished_words(self) -> Sequence[str]:
        """Last words a caller's sentence does not end on ("to", "erm"): a pause after one waits
        longer for the rest (voicebot.audio.turn_end; "-을" is a word's ending)."""
        return [str(word).lower() for word in (self.data.get("turn") or {}).get("unfinished", [])]

    def hours(self, key: str, **values) -> str:
        return self._template("hours", key).format(**values)

    def _template(self, section: str, key: str) -> str:
        try:
            return " ".join(self.data[section][key].split())
        except KeyError:
            raise ConfigError(f"content/{self.language}.yml: {section}.{key}: missing phrase") from None

    def clock(self, time: dt.time) -> str:
        key = "clock_minutes" if time.minute else "clock"
        hour12 = time.hour % 12 or 12
        ampm = "am" if time.hour < 12 else "pm"
        return self.data["dates"][key].format(hour=time.hour, minute=time.minute, hour12=hour12, ampm=ampm)

    def ranges(self, ranges: Sequence[TimeRange]) -> str:
        dates = self.data["dates"]
        parts = [dates["range"].format(start=self.clock(r.start), end=self.clock(r.end)) for r in ranges]
        return f" {dates['and']} ".join(parts)

    def reason(self, name: str) -> str:
        """A holiday name or exception note inside a sentence ("Anden juledag" in Danish is
        "anden juledag" there; an acronym such as "IT-nedbrud" keeps its capitals). Two holidays
        on one day (the calendar's "Andre pinsedag; Grunnlovsdag") are joined with "and"."""
        names = [part.strip() for part in name.split(";") if part.strip()] or [name]
        if self.data["dates"].get("lowercase_reasons"):
            names = [n[:1].lower() + n[1:] if n[1:2].islower() else n for n in names]
        return f" {self.data['dates']['and']} ".join(names)

    def weekday(self, day_name: str) -> str:
        return self.data["weekdays"][WEEKDAYS.index(day_name)]

    def day(self, date: dt.date, today: dt.date) -> str:
        """'today', 'tomorrow', else the weekday with its date ('on Thursday 24 December'), so the
        caller hears which day the bot understood."""
        dates = self.data["dates"]
        ahead = (date - today).days
        if ahead == 0:
            return dates["today"]
        if ahead == 1:
            return dates["tomorrow"]
        weekday = self.data["weekdays"][date.weekday()]
        return dates["date"].format(weekday=weekday, day=date.day, month=self.data["months"][date.month - 1])


@lru_cache(maxsize=None)
def phrasebook(language: str, content_dir: Path = CONTENT_DIR) -> Phrasebook:
    path = content_dir / f"{language}.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no phrasebook for language {language!r}") from None
    missing = _REQUIRED - set(data or {})
    if missing:
        raise ConfigError(f"{path}: {sorted(missing)[0]}: missing section")
    return Phrasebook(language, data)
