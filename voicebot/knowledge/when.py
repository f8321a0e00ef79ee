"""Understand spoken day and clock-time expressions ("i morgen", "am samstag", "half four").

Input is recogniser-style text: lower case, numbers as words or digits, no punctuation.
"""

import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple, TypeVar, Union

import holidays
from dateutil.easter import easter
from dateutil.relativedelta import MO, relativedelta

from voicebot.knowledge.spoken_numbers import JOINERS, WORDS, number_at

T = TypeVar("T")

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
# Greetings that hold a day word: "guten Morgen" is no "morgen" (tomorrow).
_GREETINGS = {"de": re.compile(r"\b(guten|schönen) morgen\b")}
_WEEKEND = {"en": "weekend", "da": "weekend", "de": "wochenende", "ko": "주말", "nb": "helg", "sv": "helg"}

# Days people name that a line's holiday calendar may not (Christmas Eve is no public holiday, a
# Danish caller says "lille juleaften"), or names it differently. A rule is (month, day), or days
# from Easter Sunday, or a function of the year. The line's calendar and its dated exceptions'
# notes are added to these (named_days); for an exact name the calendar's date wins.
_Rule = Union[Tuple[int, int], int, Callable[[int], dt.date]]


def _midsummer_eve(year: int) -> dt.date:
    june19 = dt.date(year, 6, 19)
    return june19 + dt.timedelta(days=(4 - june19.weekday()) % 7)  # the Friday from 19 to 25 June


def _monday(month: int, which: int) -> Callable[[int], dt.date]:
    """The first (1) or last (-1) Monday of a month."""
    return lambda year: dt.date(year, month, 1) + relativedelta(day=1 if which > 0 else 31, weekday=MO(which))


_COMMON_DAYS: Dict[str, Dict[str, _Rule]] = {
    "en": {"christmas eve": (12, 24), "christmas day": (12, 25), "christmas": (12, 25), "boxing day": (12, 26),
           "new year's eve": (12, 31), "new years eve": (12, 31), "new year's day": (1, 1),
           "new years day": (1, 1), "maundy thursday": -3, "good friday": -2, "easter sunday": 0,
           "easter monday": 1, "ascension day": 39, "whit monday": 50,
           # England's bank holidays as people say them; a calendar's own "August Bank Holiday"
           # (Ireland's, the first Monday) wins.
           "early may bank holiday": _monday(5, 1), "late may bank holiday": _monday(5, -1),
           "august bank holiday": _monday(8, -1)},
    "da": {"lille juleaften": (12, 23), "juleaften": (12, 24), "juleaftensdag": (12, 24), "juledag": (12, 25),
           "første juledag": (12, 25), "1. juledag": (12, 25), "anden juledag": (12, 26), "2. juledag": (12, 26),
           "nytårsaften": (12, 31), "nytårsdag": (1, 1), "grundlovsdag": (6, 5), "skærtorsdag": -3,
           "langfredag": -2, "påskedag": 0, "påskesøndag": 0, "anden påskedag": 1, "2. påskedag": 1,
           "påskemandag": 1, "kristi himmelfartsdag": 39, "kristi himmelfart": 39, "pinsedag": 49,
           "anden pinsedag": 50, "2. pinsedag": 50, "pinsemandag": 50},
    "de": {"heiligabend": (12, 24), "heilig abend": (12, 24), "heiligen abend": (12, 24),
           "erster weihnachtstag": (12, 25), "ersten weihnachtstag": (12, 25),
           "erster weihnachtsfeiertag": (12, 25), "ersten weihnachtsfeiertag": (12, 25),
           "1. weihnachtsfeiertag": (12, 25), "1. weihnachtstag": (12, 25),
           "zweiter weihnachtstag": (12, 26), "zweiten weihnachtstag": (12, 26),
           "zweiter weihnachtsfeiertag": (12, 26), "zweiten weihnachtsfeiertag": (12, 26),
           "2. weihnachtsfeiertag": (12, 26), "2. weihnachtstag": (12, 26), "silvester": (12, 31),
           "neujahr": (1, 1), "neujahrstag": (1, 1), "tag der arbeit": (5, 1), "tag der deutschen einheit": (10, 3),
           "allerheiligen": (11, 1), "weiberfastnacht": -52, "rosenmontag": -48, "gründonnerstag": -3,
           "karfreitag": -2, "ostersonntag": 0, "ostermontag": 1, "christi himmelfahrt": 39,
           "pfingstsonntag": 49, "pfingstmontag": 50, "fronleichnam": 60},
    "ko": {"크리스마스": (12, 25)},
    "nb": {"lille julaften": (12, 23), "julaften": (12, 24), "første juledag": (12, 25), "juledag": (12, 25),
           "andre juledag": (12, 26), "nyttårsaften": (12, 31), "nyttårsdag": (1, 1), "første mai": (5, 1),
           "grunnlovsdagen": (5, 17), "syttende mai": (5, 17), "skjærtorsdag": -3, "langfredag": -2,
           "påskedag": 0, "første påskedag": 0, "andre påskedag": 1, "kristi himmelfartsdag": 39,
           "pinsedag": 49, "første pinsedag": 49, "andre pinsedag": 50},
    "sv": {"julafton": (12, 24), "juldagen": (12, 25), "annandag jul": (12, 26), "annandagen": (12, 26),
           "nyårsafton": (12, 31), "nyårsdagen": (1, 1), "trettondedag jul": (1, 6), "trettondagen": (1, 6),
           "första maj": (5, 1), "nationaldagen": (6, 6), "midsommarafton": _midsummer_eve,
           "skärtorsdagen": -3, "långfredagen": -2, "långfredag": -2, "påskdagen": 0, "annandag påsk": 1,
           "kristi himmelsfärdsdag": 39, "pingstdagen": 49},
}

# Ordinals 1 to 20, and 30: days of the month in words ("the twenty-fourth", "den fireogtyvende").
_ORDINALS = {
    "en": "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
          "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth",
    "da": "første anden tredje fjerde femte sjette syvende ottende niende tiende ellevte tolvte trettende "
          "fjortende femtende sekstende syttende attende nittende tyvende tredivte",
    "de": "erste zweite dritte vierte fünfte sechste siebte achte neunte zehnte elfte zwölfte dreizehnte "
          "vierzehnte fünfzehnte sechzehnte siebzehnte achtzehnte neunzehnte zwanzigste dreißigste",
    "ko": "",
    "nb": "første andre tredje fjerde femte sjette sjuende åttende niende tiende ellevte tolvte trettende "
          "fjortende femtende sekstende syttende attende nittende tjuende trettiende",
    "sv": "första andra tredje fjärde femte sjätte sjunde åttonde nionde tionde elfte tolfte trettonde "
          "fjortonde femtonde sextonde sjuttonde artonde nittonde tjugonde trettionde",
}
_ORDINAL_ALIASES = {"de": {"siebente": 7, "dreissigste": 30}, "nb": {"syvende": 7, "tyvende": 20, "annen": 2}}


def _ordinal_table(lang: str) -> Dict[str, int]:
    words = _ORDINALS[lang].split()
    if not words:
        return {}
    table = {w: i + 1 for i, w in enumerate(words[:20])}
    table[words[20]] = 30
    table.update(_ORDINAL_ALIASES.get(lang, {}))
    for ten, ten_ordinal in ((20, words[19]), (30, words[20])):
        ten_words = [w for w, n in WORDS[lang].items() if n == ten]
        for unit in range(1, 10 if ten == 20 else 2):
            for ordinal in [w for w, n in table.items() if n == unit]:
                for ten_word in ten_words:  # "twenty first", "twenty-first", "tjuefjerde", "tjugofjärde"
                    for form in (f"{ten_word} {ordinal}", f"{ten_word}-{ordinal}", f"{ten_word}{ordinal}"):
                        table[form] = ten + unit
            for cardinal in [w for w, n in WORDS[lang].items() if n == unit]:
                # "fireogtyvende", "vierundzwanzigste" (and the older Norwegian "enogtyvende")
                table[f"{cardinal}{JOINERS.get(lang, 'og')}{ten_ordinal}"] = ten + unit
    return table


_ORDINAL_WORDS = {lang: _ordinal_table(lang) for lang in _ORDINALS}
_DAY_DIGITS = re.compile(r"^(\d{1,2})(?:st|nd|rd|th|\.)?$")
_NUMERIC_DATE = re.compile(r"(?<![\w.:])(\d{1,2})([./])(\d{1,2})(?:\2(\d{4}|\d{2}))?(\.?)(?![\w:])")
_IN_DAYS = {  # "in two days", "om en uge": (word before the number, {unit word: days})
    "en": ("in", {"day": 1, "days": 1, "week": 7, "weeks": 7}),
    "da": ("om", {"dag": 1, "dage": 1, "dages": 1, "uge": 7, "uger": 7}),
    "de": ("in", {"tag": 1, "tagen": 1, "woche": 7, "wochen": 7}),
    "ko": ("", {}),
    "nb": ("om", {"dag": 1, "dager": 1, "døgn": 1, "uke": 7, "uker": 7}),
    "sv": ("om", {"dag": 1, "dagar": 1, "vecka": 7, "veckor": 7}),
}
_ONE = {"en": ("a", "one"), "da": ("en", "et"), "de": ("einem", "einer", "ein"), "ko": (), "nb": ("en", "ei", "ett"),
        "sv": ("en", "ett")}
# Words after which the caller has changed their mind: what follows wins ("tomorrow no wait
# Saturday"). A bare "no" counts only between two values ("tomorrow no Saturday").
_CORRECTIONS = {
    "en": ("no wait", "wait", "i mean", "i meant", "sorry", "actually", "or rather", "make that"),
    "da": ("nej vent", "vent", "jeg mener", "jeg mente", "undskyld", "eller rettere", "rettere sagt"),
    "de": ("nein warte", "warte", "ich meine", "ich meinte", "ich mein", "entschuldigung", "sorry",
           "besser gesagt", "vielmehr"),
    "ko": ("아니 잠깐", "제 말은"),
    "nb": ("nei vent", "vent", "jeg mener", "jeg mente", "unnskyld", "eller rettere"),
    "sv": ("nej vänta", "vänta", "jag menar", "jag menade", "förlåt", "ursäkta", "eller snarare"),
}
_NO = {"en": "no", "da": "nej", "de": "nein", "ko": "아니", "nb": "nei", "sv": "nej"}


def _rule_date(rule: _Rule, year: int) -> dt.date:
    if isinstance(rule, tuple):
        return dt.date(year, *rule)
    if isinstance(rule, int):
        return easter(year) + dt.timedelta(days=rule)
    return rule(year)


def named_days(lang: str, today: dt.date, calendar: Optional[holidays.HolidayBase] = None,
               notes: Iterable[Tuple[dt.date, str]] = ()) -> Dict[str, dt.date]:
    """Each name a caller may give a day, with its next date from today: the language's common
    names, the line's public holidays in its language, and the notes of its dated exceptions."""
    days: Dict[str, dt.date] = {}

    def add(name: str, date: dt.date) -> None:
        name = _day_name(name)
        if name and name not in WEEKDAY_WORDS[lang] and date >= today and (name not in days or date < days[name]):
            days[name] = date

    for name, rule in _COMMON_DAYS[lang].items():
        for year in (today.year, today.year + 1):
            add(name, _rule_date(rule, year))
    if calendar is not None:
        for year in (today.year, today.year + 1):
            calendar.get(dt.date(year, 1, 1))  # a calendar fills in a year when first asked about it
        own = [(date, name) for date, names in calendar.items() for name in names.split(";")]  # "Påskdagen; Söndag"
        for name in {_day_name(name) for _, name in own}:
            days.pop(name, None)  # for its own holidays the calendar's dates win
        for date, name in own:
            add(name, date)
    for date, note in notes:
        if note and len(note.split()) <= 4:
            add(note, date)
    return days


@dataclass(frozen=True)
class When:
    """A resolved question: a date the caller asked about (or None), a clock time (or None)."""

    date: Optional[dt.date] = None
    time: Optional[dt.time] = None


def _day_name(name: str) -> str:
    return _normalise(re.sub(r"\(.*?\)", "", name))  # "Boxing Day (observed)"


def _normalise(text: str) -> str:
    text = text.lower().replace("kl.", "kl ").replace("’", "'")
    text = re.sub(r"[^\w:./'æøåäöüß-]+", " ", text)
    return " ".join(text.split())


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(phrase)}(?![\w])", text) is not None


def said_last(text: str, lang: str, find: Callable[[str], Optional[T]]) -> Optional[T]:
    """What `find` reads in what the caller said last: after their last correction that names
    something ("is the dump open tomorrow no wait I mean Saturday"), else in the whole text."""
    text = _normalise(text)
    cuts = {m.end() for marker in (*_CORRECTIONS[lang], _NO[lang])
            for m in re.finditer(rf"(?<![\w]){re.escape(marker)}(?![\w])", text)}
    for cut in sorted(cuts, reverse=True):
        found = find(text[cut:])
        if found is not None:
            return found
    return find(text)


def corrects(text: str, lang: str) -> bool:
    """Whether the caller says they meant something else ("no, sorry, I meant Sunday")."""
    text = _normalise(text)
    return any(_has(text, marker) for marker in _CORRECTIONS.get(lang, ()))


def _this_or_next(today: dt.date, month: int, day: int, year: Optional[int] = None) -> Optional[dt.date]:
    for candidate_year in ([year] if year else [today.year, today.year + 1]):
        try:
            date = dt.date(candidate_year, month, day)
        except ValueError:
            continue
        if year or date >= today:
            return date
    return None


def _day_of_month(tokens: List[str], i: int, lang: str, words_ok: bool) -> Tuple[Optional[int], int]:
    """The day of the month (1-31) written at tokens[i] as digits or an ordinal, and tokens used."""
    if i < 0 or i >= len(tokens):
        return None, 0
    digits = _DAY_DIGITS.match(tokens[i])
    if digits:
        value = int(digits.group(1))
        return (value, 1) if 1 <= value <= 31 else (None, 0)
    ordinals = _ORDINAL_WORDS[lang]
    if i + 1 < len(tokens) and f"{tokens[i]} {tokens[i + 1]}" in ordinals:
        return ordinals[f"{tokens[i]} {tokens[i + 1]}"], 2
    token = tokens[i]
    if lang == "de" and token not in ordinals and token[-2:] in ("en", "er", "em", "es"):
        token = token[:-1]  # "am dritten", "der dritte"
    if token in ordinals:
        return ordinals[token], 1
    if words_ok:
        value, used = number_at(tokens, i, lang)
        if value is not None and 1 <= value <= 31:
            return value, used
    return None, 0


def _explicit_date(text: str, lang: str, today: dt.date) -> Optional[Tuple[dt.date, str]]:
    """A day and month ("the twenty fourth of december", "den 24. december", "am 3.10.", "24/12"),
    and the words that said it."""
    for match in _NUMERIC_DATE.finditer(text):
        first, separator, second, year, dot = match.groups()
        before = text[:match.start()].split()[-1:]
        if not (separator == "/" or year or dot) or (before and before[0] in _TIME_CUES[lang]):
            continue  # "17.30" is a clock time
        day, month = int(first), int(second)
        if lang == "en" and separator == "/" and month > 12 >= day:
            day, month = month, day  # 12/24
        if 1 <= month <= 12 and (date := _this_or_next(today, month, day, _year(year))):
            return date, match.group(0)
    months = [m.lower() for m in _month_names(lang)]
    tokens = text.split()
    for j, token in enumerate(tokens):
        if token not in months:
            continue
        month = months.index(token) + 1
        # "24th of december", "den fireogtyvende december", "twenty four december"
        k = j - 1 - (j > 0 and tokens[j - 1] in ("of", "i", "im"))
        for start in (k - 1, k):
            day, used = _day_of_month(tokens, start, lang, words_ok=True)
            if day is not None and start + used - 1 == k:
                year = _year(tokens[j + 1]) if j + 1 < len(tokens) else None
                if (date := _this_or_next(today, month, day, year)):
                    return date, " ".join(tokens[start:j + 1])
        # "december the twenty fourth", "december 24th"
        after = j + 1 + (j + 1 < len(tokens) and tokens[j + 1] in ("the", "den"))
        day, used = _day_of_month(tokens, after, lang, words_ok=False)
        if day is not None and (date := _this_or_next(today, month, day)):
            return date, " ".join(tokens[j:after + used])
    for i in range(len(tokens)):
        # "den fjerde i tolvte", "am zweiundzwanzigsten zwölften": the month as an ordinal too
        day, used = _day_of_month(tokens, i, lang, words_ok=False)
        j = i + used + (i + used < len(tokens) and tokens[i + used] in ("i", "im", "of"))
        month, month_used = _day_of_month(tokens, j, lang, words_ok=False) if day else (None, 0)
        if month and month <= 12 and not tokens[j][:1].isdigit() and (date := _this_or_next(today, month, day)):
            return date, " ".join(tokens[i:j + month_used])
    korean = re.search(r"(\d{1,2})월\s*(\d{1,2})일", text)
    if korean and (date := _this_or_next(today, int(korean.group(1)), int(korean.group(2)))):
        return date, korean.group(0)
    return _day_of_month_alone(tokens, lang, today)


_ARTICLES = ("the", "den", "am", "dem", "der", "on")


def _day_of_month_alone(tokens: List[str], lang: str, today: dt.date) -> Optional[Tuple[dt.date, str]]:
    """"the 21st", "den 19.", "saturday the nineteenth", "I meant the twenty fourth": the next such
    day of a month. An ordinal in words counts only beside a weekday or as the last words ("the
    first thing I need" is no date)."""
    weekdays = [i for i, name in enumerate(WEEKDAY_WORDS[lang]) if name in tokens]
    for i in range(1, len(tokens)):
        if tokens[i - 1] not in _ARTICLES:
            continue
        day, used = _day_of_month(tokens, i, lang, words_ok=False)
        written = tokens[i]
        at_end = i + used == len(tokens)
        if day is None or written.isdigit() or (not written[:1].isdigit() and not weekdays and not at_end):
            continue
        date = today
        for _ in range(400):
            if date.day == day and (not weekdays or date.weekday() == weekdays[0]):
                return date, " ".join(tokens[i - 1:i + used])
            date += dt.timedelta(days=1)
    return None


def _year(token: Optional[str]) -> Optional[int]:
    if token and re.fullmatch(r"\d{4}|\d{2}", token):
        year = int(token)
        return year + 2000 if year < 100 else year if 2000 <= year <= 2100 else None
    return None


def _month_names(lang: str) -> List[str]:
    from voicebot.knowledge.phrasebook import phrasebook  # the phrasebook's words are the ones we say
    return phrasebook(lang).data["months"]


def _in_days(text: str, lang: str) -> Optional[int]:
    """'in two days', 'om en uge': days from today."""
    before, units = _IN_DAYS[lang]
    tokens = text.split()
    for i, token in enumerate(tokens[:-2]):
        if token != before:
            continue
        value, used = (1, 1) if tokens[i + 1] in _ONE[lang] else number_at(tokens, i + 1, lang)
        unit = tokens[i + 1 + used] if value is not None and i + 1 + used < len(tokens) else None
        if unit in units:
            return value * units[unit]
    return None


def find_day(text: str, lang: str, today: dt.date,
             names: Optional[Dict[str, dt.date]] = None) -> Optional[Tuple[dt.date, str]]:
    """The date a day expression refers to (the next such day, counting today) and its words."""
    text = _normalise(text)
    if lang in _GREETINGS:
        text = _GREETINGS[lang].sub(" ", text)
    names = names if names is not None else named_days(lang, today)
    for phrase in sorted(names, key=len, reverse=True):
        if _has(text, phrase):
            return names[phrase], phrase
    explicit = _explicit_date(text, lang, today)
    if explicit:
        return explicit
    ahead = _in_days(text, lang)
    if ahead is not None:
        return today + dt.timedelta(days=ahead), ""
    for phrase, offset in _RELATIVE_DAYS[lang]:
        if _has(text, phrase):
            return today + dt.timedelta(days=offset), phrase
    for index, name in enumerate(WEEKDAY_WORDS[lang]):
        found = re.search(rf"\b{name}(e|en|s|en?s)?\b", text) or (
            lang == "de" and name == "samstag" and re.search(r"\bsonnabends?\b", text))
        if found:
            ahead = (index - today.weekday()) % 7
            if ahead == 0 and re.search(r"\b(next|næste|neste|nästa|nächsten|kommenden?)\b", text):
                ahead = 7
            return today + dt.timedelta(days=ahead), found.group(0)
    if _has(text, _WEEKEND[lang]) or _has(text, _WEEKEND[lang] + "en"):
        return today + dt.timedelta(days=(5 - today.weekday()) % 7), _WEEKEND[lang]
    return None


def parse_day(text: str, lang: str, today: dt.date, names: Optional[Dict[str, dt.date]] = None) -> Optional[dt.date]:
    """The date the caller asked about, after any correction; None if they named no day."""
    found = _day_said_last(text, lang, today, names)
    return found[0] if found else None


def _day_said_last(text: str, lang: str, today: dt.date,
                   names: Optional[Dict[str, dt.date]]) -> Optional[Tuple[dt.date, str]]:
    return said_last(text, lang, lambda part: find_day(part, lang, today, names))


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


def parse_time(text: str, lang: str, bare_number_ok: bool = False, said_in: str = "") -> Optional[dt.time]:
    """The clock time in text; a bare number counts only with a cue word unless bare_number_ok.

    An hour from 1 to 7 without a morning word is read as afternoon: callers asking whether
    the office is open "at five" mean 17:00. Without a morning or afternoon word of its own, the
    time takes those of the sentence it was said in ("tonight at six, no, I mean at eight").
    """
    text = _normalise(text)
    found = _find_clock(text, lang, bare_number_ok)
    if not found:
        return None
    hour, minute, explicit = found
    afternoon, morning = _half_of_day(text, lang)
    if not (afternoon or morning) and said_in:
        afternoon, morning = _half_of_day(_normalise(said_in), lang)
    if not explicit and hour < 12 and (afternoon or (hour <= 7 and not morning)):
        hour += 12
    return dt.time(hour % 24, minute)


def _half_of_day(text: str, lang: str) -> Tuple[bool, bool]:
    """Whether the text says afternoon, and whether it says morning."""
    return any(_has(text, w) for w in _AFTERNOON[lang]), any(_has(text, w) for w in _MORNING[lang])


def parse_when(text: str, lang: str, today: dt.date, *, names: Optional[Dict[str, dt.date]] = None,
               time_text: str = "") -> When:
    """Resolve the day and time a caller asked about, after any correction. The recogniser's time
    span may be a bare number ("at five"); a date's own digits are never read as a time."""
    day = _day_said_last(text, lang, today, names)
    rest = text
    if day and day[1]:
        rest = _normalise(text).replace(day[1], " ")
    span = _normalise(time_text) if time_text else ""

    def time_in(part: str) -> Optional[dt.time]:
        # The recogniser's span counts where it was said ("at seven, sorry, I mean five" is five);
        # a span that is no time by itself ("um") leaves the words to be read.
        found = parse_time(span, lang, bare_number_ok=True, said_in=text) if span and span in part else None
        return found or parse_time(part, lang, said_in=text)

    time = said_last(rest, lang, time_in)
    return When(date=day[0] if day else None, time=time)
