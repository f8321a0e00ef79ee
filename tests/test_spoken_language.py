"""Days, clock times and phone numbers as callers say them and a recogniser writes them."""

import datetime as dt

import holidays
import pytest

from voicebot.config import load_installation
from voicebot.knowledge.answers import office_asked, when_asked
from voicebot.knowledge.places import other_place
from voicebot.knowledge.spoken_numbers import phone_number
from voicebot.knowledge.when import named_days, parse_day, parse_time

TUESDAY = dt.date(2026, 11, 24)
LINES = {"da": "demo-kommune", "de": "stadt-kreis", "en": "demo-city", "nb": "fjordby-kommune", "sv": "vasterby-kommun"}


def on_tuesday(line: str) -> tuple:
    """A line and 10:00 on its Tuesday, local time."""
    tenant = load_installation().tenant(line)
    return tenant, dt.datetime.combine(TUESDAY, dt.time(10), tenant.zone)


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


# Days as callers name them, on each demo line (its holiday calendar and dated exceptions), at
# 10:00 on Tuesday 24 November 2026: recogniser-style text, numbers as words or digits.
@pytest.mark.parametrize("lang, text, expected", [
    # Holidays and other named days, by the names people use.
    ("en", "is the town hall open easter monday", dt.date(2027, 3, 29)),
    ("en", "is the tip open on the august bank holiday", dt.date(2027, 8, 30)),
    ("en", "are you open early may bank holiday", dt.date(2027, 5, 3)),
    ("en", "are you open on good friday", dt.date(2027, 3, 26)),
    ("en", "what about boxing day", dt.date(2026, 12, 26)),
    ("en", "open on christmas eve", dt.date(2026, 12, 24)),
    ("en", "spring bank holiday", dt.date(2027, 5, 31)),
    ("da", "har borgerservice åbent lille juleaften", dt.date(2026, 12, 23)),
    ("da", "har i åbent juleaften", dt.date(2026, 12, 24)),
    ("da", "er der åbent 2. juledag", dt.date(2026, 12, 26)),
    ("da", "anden påskedag", dt.date(2027, 3, 29)),
    ("da", "har i åbent på grundlovsdag", dt.date(2027, 6, 5)),
    ("da", "kristi himmelfartsdag", dt.date(2027, 5, 6)),
    ("de", "wann haben sie am tag der deutschen einheit auf", dt.date(2027, 10, 3)),
    ("de", "haben sie am zweiten weihnachtsfeiertag geöffnet", dt.date(2026, 12, 26)),
    ("de", "und am ersten weihnachtstag", dt.date(2026, 12, 25)),
    ("de", "ist das bürgerbüro rosenmontag offen", dt.date(2027, 2, 8)),
    ("de", "fronleichnam", dt.date(2027, 5, 27)),
    ("de", "an silvester", dt.date(2026, 12, 31)),
    ("nb", "har dere åpent syttende mai", dt.date(2027, 5, 17)),
    ("nb", "har servicetorget åpent julaften", dt.date(2026, 12, 24)),
    ("nb", "er biblioteket åpent andre juledag", dt.date(2026, 12, 26)),
    ("nb", "har dere åpent onsdag før påske", dt.date(2027, 3, 24)),  # the line's exception, by its note
    ("nb", "skjærtorsdag", dt.date(2027, 3, 25)),
    ("sv", "har ni öppet på midsommarafton", dt.date(2027, 6, 25)),
    ("sv", "har ni öppet på valborgsmässoafton", dt.date(2027, 4, 30)),  # the line's exception
    ("sv", "annandag jul", dt.date(2026, 12, 26)),
    ("sv", "nationaldagen", dt.date(2027, 6, 6)),
    # Day and month, in words and digits.
    ("en", "is the library open on the twenty fourth of december", dt.date(2026, 12, 24)),
    ("en", "the twenty-first of january", dt.date(2027, 1, 21)),
    ("en", "december the thirty first", dt.date(2026, 12, 31)),
    ("en", "are you open on 2nd january", dt.date(2027, 1, 2)),
    ("en", "open on 24/12", dt.date(2026, 12, 24)),
    ("en", "on the third of november", dt.date(2027, 11, 3)),  # past this year: next year's
    ("da", "har i åbent den fireogtyvende december", dt.date(2026, 12, 24)),
    ("da", "den 24. december", dt.date(2026, 12, 24)),
    ("da", "den anden januar", dt.date(2027, 1, 2)),
    ("da", "den enogtredivte december", dt.date(2026, 12, 31)),
    ("de", "haben sie am 3.10. auf", dt.date(2027, 10, 3)),
    ("de", "am dritten oktober", dt.date(2027, 10, 3)),
    ("de", "am vierundzwanzigsten dezember", dt.date(2026, 12, 24)),
    ("de", "am 27. november", dt.date(2026, 11, 27)),
    ("nb", "har dere åpent den tjuefjerde desember", dt.date(2026, 12, 24)),
    ("nb", "den 17. mai", dt.date(2027, 5, 17)),
    ("sv", "har ni öppet den tjugofjärde december", dt.date(2026, 12, 24)),
    ("en", "saturday the nineteenth", dt.date(2026, 12, 19)),
    ("en", "are you open on the 21st", dt.date(2026, 12, 21)),
    ("da", "er der åbent den 30.", dt.date(2026, 11, 30)),
    ("da", "den fjerde i tolvte", dt.date(2026, 12, 4)),
    ("de", "am zweiundzwanzigsten zwölften", dt.date(2026, 12, 22)),
    ("de", "am freitag den vierten", dt.date(2026, 12, 4)),
    # Relative days.
    ("en", "in two days", dt.date(2026, 11, 26)),
    ("en", "in a week", dt.date(2026, 12, 1)),
    ("da", "om tre dage", dt.date(2026, 11, 27)),
    ("de", "in zwei tagen", dt.date(2026, 11, 26)),
    ("nb", "om to dager", dt.date(2026, 11, 26)),
    ("sv", "om tre dagar", dt.date(2026, 11, 27)),
    ("en", "next thursday", dt.date(2026, 11, 26)),
    ("en", "this weekend", dt.date(2026, 11, 28)),
    # The caller changed their mind: the last day named wins.
    ("en", "is the dump open tomorrow no wait i mean saturday", dt.date(2026, 11, 28)),
    ("en", "tomorrow no saturday", dt.date(2026, 11, 28)),
    ("da", "har i åbent i morgen nej undskyld jeg mener på fredag", dt.date(2026, 11, 27)),
    ("de", "haben sie morgen auf nein ich meine am samstag", dt.date(2026, 11, 28)),
    ("nb", "har dere åpent i morgen nei vent jeg mener på fredag", dt.date(2026, 11, 27)),
    ("sv", "har ni öppet i morgon nej vänta jag menar på fredag", dt.date(2026, 11, 27)),
    ("en", "no sorry i meant sunday", dt.date(2026, 11, 29)),
    ("en", "no sorry i meant the twenty fourth", dt.date(2026, 11, 24)),
    ("da", "nej undskyld jeg mente den fireogtyvende", dt.date(2026, 11, 24)),
    ("de", "nein ich meinte den sechsundzwanzigsten", dt.date(2026, 11, 26)),
    # A greeting is no day: "guten Morgen" is not "morgen".
    ("de", "guten morgen haben sie am samstag geöffnet", dt.date(2026, 11, 28)),
    ("de", "guten morgen haben sie morgen auf", dt.date(2026, 11, 25)),
    ("de", "guten morgen ich brauche einen reisepass", None),
    # Not days.
    ("en", "may i renew my passport", None),
    ("en", "is the library open at 17.30", None),
    ("en", "the first thing i need is a passport", None),
    ("en", "on the 2 bus", None),
    ("da", "den anden i køen", None),
])
def test_days_as_callers_name_them(lang, text, expected):
    tenant, now = on_tuesday(LINES[lang])
    assert when_asked(tenant, text, now).date == expected


def test_a_dotted_date_is_no_clock_time_and_a_time_beside_a_date_is_read():
    tenant, now = on_tuesday("stadt-kreis")
    asked = when_asked(tenant, "haben sie am 3.10. um halb elf auf", now)
    assert (asked.date, asked.time) == (dt.date(2027, 10, 3), dt.time(10, 30))
    asked = when_asked(tenant, "open on december 24th at 17:30", now)
    assert asked.date is None  # German line: December is "Dezember"
    city = load_installation().tenant("demo-city")
    asked = when_asked(city, "open on december 24th at 17:30", now)
    assert (asked.date, asked.time) == (dt.date(2026, 12, 24), dt.time(17, 30))


def test_a_corrected_time_wins_over_the_recognisers_first_time_span():
    tenant, now = on_tuesday("stadt-kreis")
    asked = when_asked(tenant, "haben sie am freitag um sieben offen sorry ich meine um fünf", now,
                       time_text="um sieben")
    assert (asked.date, asked.time) == (dt.date(2026, 11, 27), dt.time(17))
    assert when_asked(tenant, "haben sie um sieben offen", now, time_text="um sieben").time == dt.time(19)
    # The recogniser tagged only "um": the words are read.
    asked = when_asked(tenant, "und am dienstag um achtzehn uhr", now, time_text="um")
    assert (asked.date, asked.time) == (TUESDAY, dt.time(18))
    # The corrected time keeps the half of the day the caller said first, unless it names its own.
    city = load_installation().tenant("demo-city")
    assert when_asked(city, "are you open tonight at six no i mean at eight", now).time == dt.time(20)
    assert when_asked(city, "at six in the morning sorry i mean at eight", now).time == dt.time(8)
    assert when_asked(city, "tonight at six no i mean at eight in the morning", now).time == dt.time(8)
    assert when_asked(tenant, "haben sie abends um sechs auf nein ich meine um acht", now).time == dt.time(20)


def test_the_calendar_names_its_own_holidays_and_a_line_its_exceptions():
    tenant = load_installation().tenant("demo-kommune")
    names = named_days("da", TUESDAY, tenant.holiday_calendar(), [(dt.date(2027, 2, 1), "personaledag")])
    assert names["anden pinsedag"] == dt.date(2027, 5, 17) and names["personaledag"] == dt.date(2027, 2, 1)
    # Sweden's calendar lists every Sunday as "Söndag": a weekday is no holiday name.
    sweden = holidays.country_holidays("SE", language="sv")
    assert "söndag" not in named_days("sv", TUESDAY, sweden) and named_days("sv", TUESDAY, sweden)["påskdagen"]


def test_the_office_named_last_wins():
    tenant = load_installation().tenant("demo-city")
    assert office_asked(tenant, "is the library open no sorry i mean the recycling centre") == "recycling_centre"
    assert office_asked(tenant, "where is the library") == "library"


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
    ("nb", "har dere åpent klokka fem", False, dt.time(17, 0)),
    ("nb", "halv fem", False, dt.time(16, 30)),
    ("nb", "kvart på tolv", False, dt.time(11, 45)),
    ("nb", "klokka sytten tretti", False, dt.time(17, 30)),
    ("sv", "har ni öppet klockan fem", False, dt.time(17, 0)),
    ("sv", "kvart i tolv", False, dt.time(11, 45)),
    ("sv", "kvart över tio", False, dt.time(10, 15)),
    ("sv", "klockan sjutton trettio", False, dt.time(17, 30)),
])
def test_clock_times(lang, text, bare, expected):
    assert parse_time(text, lang, bare_number_ok=bare) == expected


@pytest.mark.parametrize("lang, text, expected", [
    ("da", "tolv fireogtredive seksogfyrre otteoghalvfjerds", "12344678"),
    ("da", "tolv fireogtredive seksogfyrre ni og halvfjerds", "12344679"),  # a recogniser's split
    ("de", "zwölf vier und dreißig sechsundvierzig neunundsiebzig", "12344679"),
    ("da", "plus femogfyrre to to tre tre fire fire fem fem", "+4522334455"),
    ("da", "fire fem to to tre tre fire fire fem fem", "4522334455"),
    ("de", "null eins sieben zwo drei vier fünf sechs sieben acht", "0172345678"),
    ("de", "vierunddreißig zwölf siebenundfünfzig neunzig", "34125790"),
    ("en", "oh seven seven double nine one two three four five six", "07799123456"),
    ("en", "my number is 0 7 7 0 0 9 0 0 1 2 3", "07700900123"),
    ("en", "thirty-four twelve fifty seven ninety", "34125790"),
    ("en", "oh eight hundred one two three four five six", "0800123456"),
    ("en", "oh one two one four nine six double oh nine hundred and five", "012149600905"),
    ("da", "otte hundrede tolv fireogtredive seksogfyrre", "800123446"),
    ("nb", "tolv trettifire førtiseks syttiåtte", "12344678"),
    ("nb", "pluss førtisju ni ni åtte sju seks fem fire tre", "+4799876543"),
    ("nb", "ni ni åtte syv seks fem fire tre", "99876543"),
    ("sv", "noll sju tre ett två tre fyra fem sex sju", "0731234567"),
    ("sv", "tolv trettiofyra fyrtiosex sjuttioåtta", "12344678"),
    ("en", "call me back please", None),
    ("da", "to tre", None),
])
def test_phone_numbers(lang, text, expected):
    assert phone_number(text, lang) == expected


@pytest.mark.parametrize("lang, text, place", [
    ("en", "what are the bank's opening hours", "bank"),
    ("en", "what time does the dry cleaners open", "dry cleaners"),
    ("en", "what are the opening times at puregym on sunday", "puregym"),
    ("en", "how do i get to alton towers", "alton towers"),
    ("en", "how do i get an appointment with my gp", "my gp"),
    ("da", "apotekets åbningstider", "apoteket"),
    ("da", "har bauhaus åbent påskedag", "bauhaus"),
    ("da", "jeg vil bestille tid hos lægen", "lægen"),
    ("de", "wie sind die öffnungszeiten der postbank", "postbank"),
    ("de", "hat die post am samstag auf", "die post"),
    ("de", "ich hätte gern einen termin bei meinem bankberater", "meinem bankberater"),
    ("nb", "har rema åpent på søndag", "rema"),
    ("nb", "apotekets åpningstider", "apoteket"),
    ("nb", "hvor ligger ikea", "ikea"),
    ("nb", "jeg vil bestille time hos frisøren", "frisøren"),
    ("sv", "när öppnar systembolaget", "systembolaget"),
    ("sv", "har ica öppet på söndag", "ica"),
    ("sv", "jag vill boka tid hos frisören", "frisören"),
    # Ours, or no place at all.
    ("en", "what are the opening hours", None),
    ("en", "what are this week's opening hours", None),
    ("en", "where are you located", None),
    ("en", "is the main office open tomorrow", None),
    ("en", "where's the nearest recycling centre", None),
    ("en", "what are the opening times at christmas", None),
    ("en", "i need an appointment at the passport office", None),
    ("da", "kommunens åbningstider", None),
    ("da", "hvad er jeres åbningstider", None),
    ("da", "hvad er åbningstiden i dag", None),
    ("da", "hvornår er der åbent lille juleaften", None),
    ("de", "wann ist heute geöffnet", None),
    ("de", "öffnungszeiten im dezember", None),
    ("de", "termin bei der passstelle", None),
    ("de", "wie komme ich zu ihnen", None),
    ("nb", "når har dere åpent", None),
    ("nb", "når er det åpent lille julaften", None),
    ("nb", "hvor ligger bydelskontoret", None),
    ("nb", "hva er åpningstidene i julen", None),
    ("nb", "hva slags åpningstider gjelder i morgen", None),  # "slags" is no place's genitive
    ("sv", "när är det öppet i morgon", None),
    ("sv", "vilka är öppettiderna i julen", None),
    ("sv", "hur kommer jag till återvinningscentralen", None),
])
def test_somebody_elses_place_in_a_question(lang, text, place):
    tenant, now = on_tuesday(LINES[lang])
    assert other_place(tenant, text, now) == place
