"""Understand spoken day and clock-time expressions ("i morgen", "am samstag", "half four").

Input is recogniser-style text: lower case, numbers as words or digits, no punctuation.
"""

import datetime as dt
import re
from dataclasses import dataclass
from typing import Optional, Tuple

from voicebot.knowledge.spoken_numbers import number_at

# Words that show a bare number is a clock time, and words for after-noon / before-noon.
_TIME_CUES = {
    "en": {"at", "o'clock", "oclock", "pm", "am", "p.m.", "a.m."},
    "da": {"klokken", "kl", "klokka"},
    "de": {"um", "uhr"},
    "ko": {"시"},
    "nb": {"klokka", "klokken", "kl"},
    "sv": {"klockan", "kl"},
}
_AFTERNOON = {
    "en": ("pm", "p m", "in the afternoon", "in the evening", "tonight"),
    "da": ("om eftermiddagen", "om aftenen", "i aften", "eftermiddag"),
    "de": ("nachmittags", "abends", "am nachmittag", "am abend", "heute abend"),
    "ko": ("오후", "저녁"),
    "nb": ("om ettermiddagen", "i ettermiddag", "om kvelden", "i kveld", "ettermiddag"),
    "sv": ("på eftermiddagen", "i eftermiddag", "på kvällen", "i kväll", "eftermiddag"),
}
_MORNING = {
    "en": ("am", "a m", "in the morning"),
    "da": ("om morgenen", "om formiddagen", "formiddag", "tidlig"),
    "de": ("morgens", "vormittags", "am morgen", "am vormittag", "früh"),
    "ko": ("오전", "아침"),
    "nb": ("om morgenen", "om formiddagen", "formiddag", "tidlig"),
    "sv": ("på morgonen", "på förmiddagen", "förmiddag", "tidigt"),
}
# (phrase before the hour, minutes, hour offset). "half five" is 4:30 in Danish and German
# ("halv fem", "halb fünf") but 5:30 in British English.
_RELATIVE_CLOCK = {
    "en": [("half past", 30, 0), ("quarter past", 15, 0), ("quarter to", 45, -1), ("half", 30, 0)],
    "da": [("halv", 30, -1), ("kvart over", 15, 0), ("kvart i", 45, -1)],
    "de": [("halb", 30, -1), ("viertel nach", 15, 0), ("viertel vor", 45, -1)],
    "ko": [],
    "nb": [("halv", 30, -1), ("kvart over", 15, 0), ("kvart på", 45, -1)],
    "sv": [("halv", 30, -1), ("kvart över", 15, 0), ("kvart i", 45, -1)],
}

WEEKDAY_WORDS = {
    "en": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    "da": ["mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"],
    "de": ["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"],
    "ko": ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"],
    "nb": ["mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"],
    "sv": ["måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"],
}
# Relative days, longest phrases first so "day after tomorrow" wins over "tomorrow".
_RELATIVE_DAYS = {
    "en": [("day after tomorrow", 2), ("tomorrow", 1), ("today", 0), ("tonight", 0), ("this evening", 0)],
    "da": [("i overmorgen", 2), ("overmorgen", 2), ("i morgen", 1), ("imorgen", 1), ("i dag", 0),
           ("idag", 0), ("i aften", 0)],
    # "heute" before "morgen": "heute morgen" is this morning, not tomorrow.
    "de": [("übermorgen", 2), ("heute", 0), ("morgen", 1)],
    "ko": [("모레", 2), ("내일", 1), ("오늘", 0)],
    "nb": [("i overmorgen", 2), ("overmorgen", 2), ("i morgen", 1), ("imorgen", 1), ("i dag", 0),
           ("idag", 0), ("i kveld", 0)],
    "sv": [("i övermorgon", 2), ("övermorgon", 2), ("i morgon", 1), ("imorgon", 1), ("i dag", 0),
           ("idag", 0), ("i kväll", 0)],
}
_WEEKEND = {"en": "weekend", "da": "weekend", "de": "wochenende", "ko": "주말", "nb": "helg", "sv": "helg"}
_NAMED_DAYS = {
    "en": {"christmas eve": (12, 24), "christmas day": (12, 25), "boxing day": (12, 26),
           "new year's eve": (12, 31), "new years eve": (12, 31), "new year's day": (1, 1),
           "new years day": (1, 1)},
    "da": {"juleaften": (12, 24), "juledag": (12, 25), "anden juledag": (12, 26),
           "nytårsaften": (12, 31), "nytårsdag": (1, 1), "grundlovsdag": (6, 5)},
    "de": {"heiligabend": (12, 24), "heilig abend": (12, 24), "silvester": (12, 31),
           "neujahr": (1, 1), "erster weihnachtstag": (12, 25), "zweiter weihnachtstag": (12, 26)},
    "ko": {"크리스마스": (12, 25), "설날": (1, 1)},
    "nb": {"julaften": (12, 24), "første juledag": (12, 25), "andre juledag": (12, 26),
           "nyttårsaften": (12, 31), "nyttårsdag": (1, 1), "grunnlovsdagen": (5, 17), "syttende mai": (5, 17)},
    "sv": {"julafton": (12, 24), "juldagen": (12, 25), "annandag jul": (12, 26),
           "nyårsafton": (12, 31), "nyårsdagen": (1, 1), "nationaldagen": (6, 6)},
}


@dataclass(frozen=True)
class When:
    """A resolved question: a date the caller asked about (or None), a clock time (or None)."""

    date: Optional[dt.date] = None
    time: Optional[dt.time] = None


def _normalise(text: str) -> str:
    text = text.lower().replace("kl.", "kl ").replace("’", "'")
    text = re.sub(r"[^\w:.'æøåäöüß-]+", " ", text)
    return " ".join(text.split())


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(phrase)}(?![\w])", text) is not None


def parse_day(text: str, lang: str, today: dt.date) -> Optional[dt.date]:
    """The date a day expression refers to, the next such day counting today; None if none."""
    text = _normalise(text)
    for phrase, (month, day) in sorted(_NAMED_DAYS[lang].items(), key=lambda kv: -len(kv[0])):
        if _has(text, phrase):
            candidate = dt.date(today.year, month, day)
            return candidate if candidate >= today else dt.date(today.year + 1, month, day)
    for phrase, offset in _RELATIVE_DAYS[lang]:
        if _has(text, phrase):
            return today + dt.timedelta(days=offset)
    for index, name in enumerate(WEEKDAY_WORDS[lang]):
        if re.search(rf"\b{name}(e|en|s|en?s)?\b", text) or (lang == "de" and name == "samstag"
                                                               and _has(text, "sonnabend")):
            ahead = (index - today.weekday()) % 7
            if ahead == 0 and re.search(r"\b(next|næste|neste|nästa|nächsten|kommenden?)\b", text):
                ahead = 7
            return today + dt.timedelta(days=ahead)
    if _has(text, _WEEKEND[lang]) or _has(text, _WEEKEND[lang] + "en"):
        return today + dt.timedelta(days=(5 - today.weekday()) % 7)
    return None


def _clock(hour: int, minute: int) -> Optional[Tuple[int, int]]:
    hour = 0 if hour == 24 else hour
    return (hour, minute) if 0 <= hour < 24 and 0 <= minute < 60 else None


def _find_clock(text: str, lang: str, bare_number_ok: bool) -> Optional[Tuple[int, int, bool]]:
    """(hour, minute, explicit_24h) for the first clock expression in text."""
    digital = re.search(r"\b(\d{1,2})[:.](\d{2})\b", text)
    if digital:
        clock = _clock(int(digital.group(1)), int(digital.group(2)))
        if clock:
            return clock[0], clock[1], clock[0] > 12
    tokens = text.split()
    for i in range(len(tokens)):
        rest = " ".join(tokens[i:])
        for phrase, minute, offset in _RELATIVE_CLOCK[lang]:
            if rest.startswith(phrase + " "):
                hour, _ = number_at(tokens, i + len(phrase.split()), lang)
                if hour is not None and (clock := _clock(hour + offset, minute)):
                    return clock[0], clock[1], hour > 12
    for i in range(len(tokens)):
        hour, used = number_at(tokens, i, lang)
        if hour is None or not 0 <= hour <= 24:
            continue
        before = tokens[i - 1] if i else ""
        after = tokens[i + used:]
        cued = before in _TIME_CUES[lang] or (after and after[0] in _TIME_CUES[lang])
        if not (cued or bare_number_ok):
            continue
        if after and after[0] == "uhr":
            after = after[1:]
        minute, _ = number_at(after, 0, lang)
        if minute is None or minute not in (0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55):
            minute = 0
        if (clock := _clock(hour, minute)):
            return clock[0], clock[1], hour > 12
    return None


def parse_time(text: str, lang: str, bare_number_ok: bool = False) -> Optional[dt.time]:
    """The clock time in text; a bare number counts only with a cue word unless bare_number_ok.

    An hour from 1 to 7 without a morning word is read as afternoon: callers asking whether
    the office is open "at five" mean 17:00.
    """
    text = _normalise(text)
    found = _find_clock(text, lang, bare_number_ok)
    if not found:
        return None
    hour, minute, explicit = found
    afternoon = any(_has(text, w) for w in _AFTERNOON[lang])
    morning = any(_has(text, w) for w in _MORNING[lang])
    if not explicit and hour < 12 and (afternoon or (hour <= 7 and not morning)):
        hour += 12
    return dt.time(hour % 24, minute)


def parse_when(text: str, lang: str, today: dt.date, *, day_text: str = "", time_text: str = "") -> When:
    """Resolve the day and time a caller asked about; entity spans take precedence over the text."""
    date = parse_day(day_text, lang, today) if day_text else None
    date = date or parse_day(text, lang, today)
    time = parse_time(time_text, lang, bare_number_ok=True) if time_text else None
    time = time or parse_time(text, lang)
    return When(date=date, time=time)
