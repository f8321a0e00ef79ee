"""Days, clock times and phone numbers as callers say them and a recogniser writes them."""

import datetime as dt

import pytest

from voicebot.knowledge.spoken_numbers import phone_number
from voicebot.knowledge.when import parse_day, parse_time

TUESDAY = dt.date(2026, 11, 24)


@pytest.mark.parametrize("lang, text, expected", [
    ("da", "har i åbent i morgen", dt.date(2026, 11, 25)),
    ("da", "øh har biblioteket åbent på lørdag", dt.date(2026, 11, 28)),
    ("da", "er der åbent i overmorgen", dt.date(2026, 11, 26)),
    ("da", "har i åbent i weekenden", dt.date(2026, 11, 28)),
    ("da", "har i åbent juleaften", dt.date(2026, 12, 24)),
    ("da", "har i åbent på tirsdag", TUESDAY),
    ("da", "har i åbent næste tirsdag", dt.date(2026, 12, 1)),
    ("de", "haben sie morgen geöffnet", dt.date(2026, 11, 25)),
    ("de", "haben sie heute morgen offen", TUESDAY),
    ("de", "ähm am samstag auf", dt.date(2026, 11, 28)),
    ("de", "sonnabend geöffnet", dt.date(2026, 11, 28)),
    ("de", "übermorgen", dt.date(2026, 11, 26)),
    ("de", "haben sie an heiligabend geöffnet", dt.date(2026, 12, 24)),
    ("en", "are you open the day after tomorrow", dt.date(2026, 11, 26)),
    ("en", "is the tip open on sundays", dt.date(2026, 11, 29)),
    ("en", "open on new years day", dt.date(2027, 1, 1)),
    ("en", "are you open", None),
    ("en", "are you open now", None),
])
def test_days(lang, text, expected):
    assert parse_day(text, lang, TUESDAY) == expected


@pytest.mark.parametrize("lang, text, bare, expected", [
    ("da", "har i åbent klokken fem", False, dt.time(17, 0)),
    ("da", "har i åbent klokken halv fem", False, dt.time(16, 30)),
    ("da", "kvart over ti", False, dt.time(10, 15)),
    ("da", "kvart i tolv", False, dt.time(11, 45)),
    ("da", "klokken sytten tredive", False, dt.time(17, 30)),
    ("da", "klokken otte om morgenen", False, dt.time(8, 0)),
    ("da", "er der en der kan hjælpe", False, None),
    ("da", "sytten", True, dt.time(17, 0)),
    ("de", "um fünf", False, dt.time(17, 0)),
    ("de", "halb fünf", False, dt.time(16, 30)),
    ("de", "siebzehn uhr dreißig", False, dt.time(17, 30)),
    ("de", "viertel vor neun", False, dt.time(8, 45)),
    ("de", "um acht uhr morgens", False, dt.time(8, 0)),
    ("en", "are you open at five", False, dt.time(17, 0)),
    ("en", "half four", False, dt.time(16, 30)),
    ("en", "half past nine in the morning", False, dt.time(9, 30)),
    ("en", "quarter to six", False, dt.time(17, 45)),
    ("en", "at five thirty", False, dt.time(17, 30)),
    ("en", "at nine am", False, dt.time(9, 0)),
    ("en", "at 17:30", False, dt.time(17, 30)),
    ("en", "is anyone there who can help", False, None),
])
def test_clock_times(lang, text, bare, expected):
    assert parse_time(text, lang, bare_number_ok=bare) == expected


@pytest.mark.parametrize("lang, text, expected", [
    ("da", "tolv fireogtredive seksogfyrre otteoghalvfjerds", "12344678"),
    ("da", "plus femogfyrre to to tre tre fire fire fem fem", "+4522334455"),
    ("da", "fire fem to to tre tre fire fire fem fem", "4522334455"),
    ("de", "null eins sieben zwo drei vier fünf sechs sieben acht", "0172345678"),
    ("de", "vierunddreißig zwölf siebenundfünfzig neunzig", "34125790"),
    ("en", "oh seven seven double nine one two three four five six", "07799123456"),
    ("en", "my number is 0 7 7 0 0 9 0 0 1 2 3", "07700900123"),
    ("en", "thirty-four twelve fifty seven ninety", "34125790"),
    ("en", "call me back please", None),
    ("da", "to tre", None),
])
def test_phone_numbers(lang, text, expected):
    assert phone_number(text, lang) == expected
