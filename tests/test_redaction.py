"""Personal identifiers are redacted before anything about a call is stored or logged."""

import io
import logging
import time

import pytest

from voicebot.privacy import RedactingFilter, redact, redact_across, redact_event_dict, redact_value

IDENTIFIERS = [
    # Danish CPR: digits, with or without dash, with a space, as a speech recogniser writes words.
    ("mit cpr nummer er 120385-1234", "mit cpr nummer er [cpr]"),
    ("1203851234", "[cpr]"),
    ("cpr 120385 1234 tak", "cpr [cpr] tak"),
    ("et to nul tre otte fem et to tre fire", "[cpr]"),
    ("tolv nul tre femogfirs tolv fireogtredive", "[cpr]"),
    ("tolv nul tre fem og firs tolv fire og tredive", "[cpr]"),
    ("12 03 85 tolv fireogtredive", "[cpr]"),
    ("120385 tolv fireogtredive", "[cpr]"),
    ("mit cpr nummer er tolv nul tre femogfirs tolv fireogtredive og jeg flytter",
     "mit cpr nummer er [cpr] og jeg flytter"),
    ("Tolv nul tre femogfirs tolv fireogtredive.", "[cpr]."),
    ("tolv nul tre femogfirs bindestreg tolv fireogtredive", "[cpr]"),
    ("120385 streg 1234", "[cpr]"),
    # Swedish personnummer, also a samordningsnummer (day + 60).
    ("850312-1234", "[personnummer]"),
    ("850312+1234", "[personnummer]"),
    ("19850312-1234", "[personnummer]"),
    ("mitt personnummer är 198503121234", "mitt personnummer är [personnummer]"),
    ("850372-1234", "[personnummer]"),
    # Norwegian fødselsnummer, D-number (day + 40), H-number (month + 40).
    ("01018512345", "[fodselsnummer]"),
    ("010185 12345", "[fodselsnummer]"),
    ("410185 12345", "[fodselsnummer]"),
    ("01418512345", "[fodselsnummer]"),
    # German Steuer-ID, grouped and not, and Steuernummer shapes.
    ("meine Steuer-ID ist 12 345 678 901.", "meine Steuer-ID ist [tax_id]."),
    ("12345678901", "[tax_id]"),
    ("Steuernummer 93815/08152", "Steuernummer [tax_id]"),
    ("181/815/08155", "[tax_id]"),
    # German ID card and passport numbers (typed in chat), with and without check digit.
    ("Ausweisnummer T22000129", "Ausweisnummer [id_card]"),
    ("L01X00T47", "[id_card]"),
    ("LZ6311T47", "[id_card]"),
    ("LZ6311T470", "[id_card]"),
    # Phone numbers in several national formats, written and spoken.
    ("ring på +45 12 34 56 78", "ring på [phone]"),
    ("12345678", "[phone]"),
    ("0049 2921 1030", "[phone]"),
    ("(030) 1234-5678", "[phone]"),
    ("+49 (0)30 12345678", "[phone]"),
    ("Telefon 02921/103-0", "Telefon [phone]"),
    ("+44 20 7946 0958", "[phone]"),
    ("070-123 45 67", "[phone]"),
    ("12.34.56.78", "[phone]"),
    ("ring til 12 34 56 78 kl. 10.00", "ring til [phone] kl. 10.00"),
    ("tolv fireogtredive seksoghalvtreds otteoghalvfjerds", "[phone]"),
    ("plus fem og fyrre tolv fireogtredive seksoghalvtreds otteoghalvfjerds", "plus [phone]"),
    ("zwölf vierunddreißig sechs und fünfzig acht und siebzig", "[phone]"),
    ("my number is twelve thirty-four fifty six seventy eight", "my number is [phone]"),
    ("o seven seven o o nine o o one two three", "[phone]"),
    # E-mail addresses, written and spoken.
    ("skriv til anna.hansen85@aarhus.dk.", "skriv til [email]."),
    ("anna punktum hansen snabel a kommune punktum dk", "[email]"),
    ("min mail er anna snabel a kommune punktum d k tak", "min mail er [email] tak"),
    ("mail me at john at example dot com", "mail me at [email]"),
    ("anna punkt schmidt at stadt punkt de", "[email]"),
    # Several in one turn.
    ("cpr 120385-1234, tlf 12 34 56 78, mail a@b.dk", "cpr [cpr], tlf [phone], mail [email]"),
    # Other separators: Unicode hyphens and dashes (a word processor's en dash, U+2010, the no-break
    # U+2011, the minus sign), an underscore, a dash with spaces, no-break spaces.
    ("mit cpr nummer er 010190–1234", "mit cpr nummer er [cpr]"),
    ("010190—1234", "[cpr]"),
    ("010190\u20101234", "[cpr]"),
    ("010190\u20111234", "[cpr]"),
    ("010190\u22121234", "[cpr]"),
    ("010190_1234", "[cpr]"),
    ("010190 – 1234", "[cpr]"),
    ("010190\u00a01234", "[cpr]"),
    ("850312–1234", "[personnummer]"),
    ("19850312\u20111234", "[personnummer]"),
    ("010185–12345", "[fodselsnummer]"),
    ("ring på 12–34–56–78", "ring på [phone]"),
    ("070–123\u00a045\u00a067", "[phone]"),
    # Digits one by one, as written and as recognisers write them.
    ("0 1 0 1 9 0 - 1 2 3 4", "[cpr]"),
    ("0 1 0 1 9 0 1 2 3 4", "[cpr]"),
    ("mit cpr er 0 1 0 1 9 0 – 1 2 3 4 tak", "mit cpr er [cpr] tak"),
    ("0, 1, 0, 1, 9, 0, 1, 2, 3, 4.", "[cpr]."),
    ("0-1-0-1-9-0-1-2-3-4", "[cpr]"),
    ("1 2 3 4 5 6 7 8", "[phone]"),
    # Digits as words one by one, in every language the bot speaks.
    ("nul et nul et ni nul et to tre fire", "[cpr]"),
    ("nul et nul et ni nul - et to tre fire", "[cpr]"),
    ("Nul, et, nul, et, ni, nul, et, to, tre, fire.", "[cpr]."),
    ("null eins null eins neun null eins zwei drei vier", "[cpr]"),
    ("null eins null eins neunzig zwölf vierunddreißig", "[cpr]"),
    ("zero one zero one nine zero one two three four", "[cpr]"),
    ("oh one oh one ninety dash twelve thirty-four", "[cpr]"),
    ("noll ett noll ett nio noll ett två tre fyra", "[cpr]"),
    ("noll ett noll ett nittio bindestreck tolv trettiofyra", "[cpr]"),
    ("null en null en ni null en to tre fire", "[cpr]"),
    ("null en null en nitti tolv trettifire", "[cpr]"),
    ("mitt telefonnummer er fire fem tolv trettifire femtiseks syttiåtte", "mitt telefonnummer er [phone]"),
    # E-mail addresses written to keep them from robots.
    ("anna (at) kommune.dk", "[email]"),
    ("skriv til anna [at] kommune.dk tak", "skriv til [email] tak"),
    ("anna(at)kommune(dot)dk", "[email]"),
    ("anna.hansen (at) kommune (punkt) dk", "[email]"),
    ("anna @ kommune . dk", "[email]"),
    ("anna(a)kommune.dk", "[email]"),
    ("anna at kommune dot dk", "[email]"),
    ("anna at kommune.dk", "[email]"),
    ("anna snabel-a kommune.dk", "[email]"),
]

UNCHANGED = [
    "kl. 10.00",
    "10:00",
    "vi har åbent 8-16",
    "Öffnungszeiten Mo-Fr 08:00-12:00 und 13:00-15:30 Uhr",
    "kl. 08.00-15.30",
    "den 24.11.2026",
    "2026-11-24",
    "24/11/2026",
    "ich bin am 12.03.1985 geboren",
    "24.11.2026 12 34",
    "i 2019-2024 og 2025",
    "det koster 1.250 kr",
    "det koster 1.250.000,00 kr",
    "Kundennummer 123456",
    "Vestergade 12, 2100 København Ø",
    "lokale 12",
    "hvornår har I åbent på lørdag",
    "jeg vil gerne have en tid til to børn",
    "fra klokken otte til seksten",
    "en to tre fire fem seks syv",
    "otte streg seksten",
    "jeg er født i nitten femogfirs",
    "jeg har brug for at tale med en sagsbehandler",
    "ich möchte meinen Reisepass verlängern",
    "ich habe elf Fragen und eine Bitte",
    "I moved house on the 3rd",
    "I want to go to the office at nine dot thirty",
    "MITID og CPR",
    "NEMKONTO",
    "JANUARY20",
    "",
    # Dates, times, opening hours, ranges, amounts, postcodes and house numbers, with any dash.
    "24.12.2026",
    "2026-12-24",
    "24–12–2026",
    "kl. 08.00–15.30",
    "08.00 – 15.30",
    "8:00-15:30",
    "kl. 10–14",
    "vi har åbent 8–16 og 10 - 14 om lørdagen",
    "i 2019–2024",
    "2019 – 2024",
    "det koster 1.250–2.500 kr",
    "det koster 2,5 3,5 4,5 5,5 kr",
    "2300 København S",
    "Vestergade 12–14, 2100 København Ø",
    "Vestergade 1, 2100 København Ø",
    # Not a mailbox: a web address after an ordinary word.
    "online at gov dot uk",
    "apply online at gov dot uk",
    "find us at aarhus dot dk",
    "the API is documented at docs.python.org.",
    "option (a) or (b)",
]

# Log lines (pjsip's and ours): times and ids stay whole, numbers next to them are still redacted.
LOG_LINES = [
    ("16:15:23.456 pjsua_call.c !Making call with acc #0 to sip:+4512345678@127.0.0.1",
     "16:15:23.456 pjsua_call.c !Making call with acc #0 to sip:[phone]@127.0.0.1"),
    ("16:15:23.456 pjsua_core.c  .TX 1015 bytes Request msg INVITE/cseq=28561 (tdta0x7f3c8c001a28) to UDP "
     "10.0.30.141:5060:", None),
    ("16:15:23.456 12 34 56 78", "16:15:23.456 [phone]"),
    ("16:15:23 123456 RTP packets received", None),
    ("Call-ID: 3f2504e0-4f89-11d3-9a0c-030582330112", None),
    ("Call-ID: 19850312-1234-11d3-9a0c-030582330112", None),
    ("Call-ID: a84b4c76e66710@pc33.atlanta.com", None),
    ("To: <sip:+4570101010@pbx.kommune.dk>;tag=a84b4c76e66710", "To: <sip:[phone]@pbx.kommune.dk>;tag=a84b4c76e66710"),
    ("2026-11-30T16:15:23.456Z conversation 9f86d0ab0101901234cd659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0 turn 3",
     None),
    ("2026-11-30 16:15:23,456 12345678 INFO voicebot.store.record: demo-city 9f86d0818840 heard: ring 12 34 56 78",
     "2026-11-30 16:15:23,456 [phone] INFO voicebot.store.record: demo-city 9f86d0818840 heard: ring [phone]"),
    ("chat-1a2b3c4d5e6f ended, token 12345678abcdef0123", None),
    ("ip 12.34.56.78 is a phone number written Danish-style", "ip [phone] is a phone number written Danish-style"),
]

# An identifier said over two turns, and two turns that only happen to end and begin with numbers.
ACROSS_TURNS = [
    (("mit cpr nummer er 010190", "1234"), ("mit cpr nummer er [cpr]", "[cpr]")),
    (("mit cpr nummer er 010190.", "1234, tak"), ("mit cpr nummer er [cpr].", "[cpr], tak")),
    (("mit cpr nummer er 0101", "901234"), ("mit cpr nummer er [cpr]", "[cpr]")),
    (("mit cpr er 0 1 0 1 9 0 -", "1 2 3 4"), ("mit cpr er [cpr] -", "[cpr]")),
    (("mit cpr er nul et nul et ni nul", "et to tre fire"), ("mit cpr er [cpr]", "[cpr]")),
    (("meine Nummer ist null eins null eins neun null", "eins zwei drei vier bitte"),
     ("meine Nummer ist [cpr]", "[cpr] bitte")),
    (("ring til 12 34", "56 78"), ("ring til [phone]", "[phone]")),
    (("mitt personnummer är 850312", "1234"), ("mitt personnummer är [personnummer]", "[personnummer]")),
    (("jeg har to", "tre børn"), None),
    (("vi bor i nummer 12", "2300 København S"), None),
    (("when are you open", "1234"), None),
    (("mit cpr er 010190", "hvad skal jeg bruge"), None),
]


@pytest.mark.parametrize("text,expected", IDENTIFIERS)
def test_identifiers_are_replaced_by_their_kind(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_ordinary_text_stays(text):
    assert redact(text) == text


@pytest.mark.parametrize("line,expected", LOG_LINES)
def test_times_and_ids_in_log_lines_stay_whole(line, expected):
    assert redact(line) == (expected or line)


@pytest.mark.parametrize("turns,expected", ACROSS_TURNS)
def test_an_identifier_said_over_two_turns_is_redacted_in_both(turns, expected):
    assert redact_across(*[redact(turn) for turn in turns]) == expected


@pytest.mark.parametrize("text", [text for text, _ in IDENTIFIERS] + UNCHANGED + [line for line, _ in LOG_LINES])
def test_redacting_twice_changes_nothing(text):
    once = redact(text)
    assert redact(once) == once


def test_none_and_empty_pass_through():
    assert redact(None) is None
    assert redact("") == ""


def test_a_long_turn_is_fast():
    turn = ("hej jeg vil gerne høre om I har åbent på lørdag kl. 10.00, mit nummer er 12 34 56 78 "
            "og mit cpr er tolv nul tre femogfirs tolv fireogtredive. ") * 8
    turn = turn[:1000]
    redact(turn)
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        redact(turn)
    # Typically well under 1 ms; the margin is for slow CI machines.
    assert (time.perf_counter() - start) / runs < 0.005


def test_event_data_is_redacted_recursively():
    event = {
        "turn": 3,
        "text": "mit cpr er 120385-1234",
        "slots": {"phone": "12 34 56 78", "tries": [1, "a@b.dk", ("tolv nul tre femogfirs tolv fireogtredive",)]},
        "confidence": 0.93,
        "caller_known": None,
    }
    assert redact_value(event) == {
        "turn": 3,
        "text": "mit cpr er [cpr]",
        "slots": {"phone": "[phone]", "tries": [1, "[email]", ("[cpr]",)]},
        "confidence": 0.93,
        "caller_known": None,
    }


def test_structlog_processor_redacts_every_string_value():
    event_dict = {"event": "turn", "utterance": "ring på 12345678", "lang": "da", "turn": 2}
    assert redact_event_dict(None, "info", event_dict) == {
        "event": "turn", "utterance": "ring på [phone]", "lang": "da", "turn": 2}


@pytest.fixture
def logged():
    """A real logger whose handler redacts and writes to a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_log_messages_are_redacted_after_formatting(logged):
    logger, stream = logged
    logger.warning("caller said %s", "mit cpr er 120385-1234")
    assert stream.getvalue() == "caller said mit cpr er [cpr]\n"


def test_tracebacks_in_logs_are_redacted(logged):
    logger, stream = logged
    try:
        raise ValueError("no citizen with cpr 120385-1234")
    except ValueError:
        logger.exception("lookup failed for %s", "anna@kommune.dk")
    output = stream.getvalue()
    assert "lookup failed for [email]" in output
    assert "ValueError: no citizen with cpr [cpr]" in output
    assert "120385" not in output and "anna@" not in output


def test_a_pjsip_log_line_keeps_its_time_and_loses_the_number(logged):
    logger, stream = logged
    logger.warning("%s", "16:15:23.456 pjsua_call.c !Making call with acc #0 to sip:+4512345678@127.0.0.1")
    assert stream.getvalue() == "16:15:23.456 pjsua_call.c !Making call with acc #0 to sip:[phone]@127.0.0.1\n"


def test_a_bad_log_call_does_not_raise(logged):
    logger, stream = logged
    logger.warning("two %s %s", "12345678")
    assert "12345678" not in stream.getvalue()
