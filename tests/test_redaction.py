"""Personal identifiers are redacted before anything about a call is stored or logged."""

import io
import logging
import time

import pytest

from voicebot.privacy import RedactingFilter, redact, redact_event_dict, redact_value

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
]


@pytest.mark.parametrize("text,expected", IDENTIFIERS)
def test_identifiers_are_replaced_by_their_kind(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_ordinary_text_stays(text):
    assert redact(text) == text


@pytest.mark.parametrize("text", [text for text, _ in IDENTIFIERS] + UNCHANGED)
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


def test_a_bad_log_call_does_not_raise(logged):
    logger, stream = logged
    logger.warning("two %s %s", "12345678")
    assert "12345678" not in stream.getvalue()
