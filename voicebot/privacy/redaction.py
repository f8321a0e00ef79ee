"""Personal identifiers out of whatever we keep about a call: the database, logs and metrics labels
get "mit cpr er [cpr]", never the number. Callers read numbers aloud, so a speech recogniser
writes them as words ("tolv nul tre femogfirs ..."); those are found as well as digits."""

import logging
import re
from typing import Any, List, Optional, Tuple

from voicebot.knowledge.spoken_numbers import WORDS, number_at

# --- Written identifiers, most specific first: a CPR number is also ten digits a phone pattern would take.

_DAY = r"(?:0[1-9]|[12]\d|3[01])"
_MONTH = r"(?:0[1-9]|1[0-2])"
_SE_DAY = r"(?:0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01])"  # +60: samordningsnummer
_NO_DAY = r"(?:0[1-9]|[12]\d|3[01]|4[1-9]|[56]\d|7[01])"  # +40: D-nummer
_NO_MONTH = r"(?:0[1-9]|1[0-2]|4[1-9]|5[0-2])"  # +40: H-nummer

_IDENTIFIERS = [
    (kind, re.compile(rf"(?<!\d)(?:{pattern})(?!\d)"))
    for kind, pattern in [
        ("cpr", rf"{_DAY}{_MONTH}\d\d[- ]?\d{{4}}"),
        ("personnummer", rf"(?:18|19|20)?\d\d{_MONTH}{_SE_DAY}[-+ ]?\d{{4}}"),
        ("fodselsnummer", rf"{_NO_DAY}{_NO_MONTH}\d\d ?\d{{5}}"),
        # Steuer-ID ("12 345 678 901"), then the Länder's Steuernummer shapes ("181/815/08155").
        ("tax_id", r"[1-9]\d(?: ?\d{3}){3}|\d{2,3}/\d{3,4}/\d{4,5}|\d{5}/\d{5}"),
    ]
]

# Personalausweis / Reisepass: nine characters from the ID alphabet with both a letter and a digit
# (so ordinary capitalised words like MITID stay), optionally a check digit.
_ID_CHARS = "CFGHJKLMNPRTVWXYZ0-9"
_ID_CARD = re.compile(
    rf"(?<!\w)(?=\d{{0,8}}[CFGHJKLMNPRTVWXYZ])(?=[CFGHJKLMNPRTVWXYZ]{{0,8}}\d)[{_ID_CHARS}]{{9}}\d?(?!\w)"
)

# Numbers that look like phone numbers but are dates, times, year ranges or amounts. They are
# matched first at each position and given back unchanged, so the phone pattern never sees them.
_NOT_A_PHONE = (
    r"(?:(?:0?[1-9]|[12]\d|3[01])(?P<dsep>[./-])(?:0?[1-9]|1[0-2])(?P=dsep)(?:\d{4}|\d\d)"  # 24.11.2026
    r"|\d{4}(?P<isep>[-/.])(?:0?[1-9]|1[0-2])(?P=isep)(?:0?[1-9]|[12]\d|3[01])"  # 2026-11-24
    r"|\d{1,2}[.:]\d\d(?: ?[-–] ?\d{1,2}[.:]\d\d)?"  # 10.00, 08.00-15.30
    r"|(?:19|20)\d\d ?[-–] ?(?:19|20)\d\d"  # 2019-2024
    r"|\d{1,3}(?:\.\d{3})+(?:,\d+)?"  # 1.250.000,00 kr
    r")(?![./-]?\d)"
)
# A leading + or 00, digits grouped by single spaces, dashes, dots, slashes or parentheses.
_PHONE = re.compile(
    rf"(?<!\w)(?:(?P<keep>{_NOT_A_PHONE})|(?:\+ ?)?(?:\(\d{{1,5}}\) ?)?\d(?:(?:[ .\-/]|\) ?| ?\()?\d)*)"
)
_MIN_PHONE_DIGITS = 8
# Every pattern above needs eight digits at most two separators apart; most turns have none, and
# this one scan is much cheaper than running every pattern.
_LONG_NUMBER = re.compile(r"\d(?:\D{0,2}\d){7}")
_DIGIT = re.compile(r"\d")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

# --- Spoken forms: what a recogniser writes for "anna punktum hansen snabel a kommune punktum dk".

_SPOKEN_AT = r"(?:snabel ?-?a|at|ät)"
_SPOKEN_DOT = r"(?:punktum|punkt|dot)"
# A domain must end in a known top-level domain, perhaps spelled out ("d k"), so that English
# "at" and Danish "at" (to, that) in ordinary sentences stay.
_TLDS = "com org net info dk de se no fi eu nu io at ch nl uk".split()
_SPOKEN_TLD = "|".join(" ?".join(tld) for tld in _TLDS)
_LABEL = r"[^\W_]+"
_SPOKEN_EMAIL = re.compile(
    rf"(?<!\w){_LABEL}(?: {_SPOKEN_DOT} {_LABEL})* {_SPOKEN_AT} {_LABEL}(?: {_SPOKEN_DOT} {_LABEL})*"
    rf" {_SPOKEN_DOT} (?:{_SPOKEN_TLD})(?!\w)",
    re.IGNORECASE,
)
_SPOKEN_DOT_WORD = re.compile(rf"(?<!\w){_SPOKEN_DOT}(?!\w)", re.IGNORECASE)  # cheap test first

_TOKEN = re.compile(r"[^\W_]+(?:-[^\W_]+)*")  # "thirty-four" stays one token for number_at
# Danish and German may say "fem og firs", "vier und dreißig" as three words.
_JOINERS = {"da": "og", "de": "und"}
# "tolv nul tre femogfirs bindestreg tolv fireogtredive": the dash of DDMMYY-SSSS said aloud.
_DASH_WORDS = {"bindestreg", "streg", "bindestrich", "strich", "dash", "hyphen"}
_NUMBER_WORDS = set().union(*WORDS.values()) | set(_JOINERS.values()) | _DASH_WORDS


def redact(text: Optional[str]) -> Optional[str]:
    """The text with every personal identifier replaced by its kind: "[cpr]", "[phone]", ..."""
    if not text:
        return text
    if "@" in text:
        text = _EMAIL.sub("[email]", text)
    if _SPOKEN_DOT_WORD.search(text):
        text = _SPOKEN_EMAIL.sub("[email]", text)
    if _LONG_NUMBER.search(text):
        for kind, pattern in _IDENTIFIERS:
            text = pattern.sub(f"[{kind}]", text)
    if _DIGIT.search(text):
        text = _ID_CARD.sub("[id_card]", text)
    if _LONG_NUMBER.search(text):
        text = _PHONE.sub(_phone_or_keep, text)
    return _redact_spoken_numbers(text)


def redact_value(value: Any) -> Any:
    """Event data with every string in it redacted; dict keys, numbers and the like stay."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_value(item) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """Redacts a record's final message and traceback. Add it to handlers: a logger's own filters
    do not see records that propagate up from child loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler would report it, here it must not raise
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set, so the traceback is written redacted too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def redact_event_dict(logger: Any, method_name: str, event_dict: dict) -> dict:
    """structlog processor: every string value of the event redacted."""
    return redact_value(event_dict)


def _phone_or_keep(match: "re.Match[str]") -> str:
    number = match.group()
    if match.group("keep") or sum(c.isdigit() for c in number) < _MIN_PHONE_DIGITS:
        return number
    return "[phone]"


def _kind_of(digits: str) -> Optional[str]:
    """Which identifier a bare digit string is, if any."""
    for kind, pattern in _IDENTIFIERS:
        if pattern.fullmatch(digits):
            return kind
    return "phone" if len(digits) >= _MIN_PHONE_DIGITS else None


def _is_number_token(token: str) -> bool:
    if token in _NUMBER_WORDS or (token.isascii() and token.isdigit()):
        return True
    return "-" in token and all(part in _NUMBER_WORDS for part in token.split("-"))


def _digits_at(tokens: List[str], i: int, lang: str) -> Tuple[str, int]:
    """The digits said at tokens[i] in lang ("tolv" -> "12", "nul" -> "0") and how many tokens."""
    token = tokens[i]
    if token.isascii() and token.isdigit():
        return token, 1  # as written: keeps leading zeros
    if token in _DASH_WORDS:
        return "", 1
    value, used = number_at(tokens, i, lang)
    if value is None:
        return "", 0
    joiner = _JOINERS.get(lang)
    if joiner and used == 1 and 1 <= value <= 9 and tokens[i + 1:i + 2] == [joiner] and i + 2 < len(tokens):
        tens = WORDS[lang].get(tokens[i + 2])
        if tens is not None and tens >= 20 and tens % 10 == 0:
            value, used = value + tens, 3
    return (f"{value:02d}" if value >= 10 else str(value)), used


def _number_runs(text: str) -> List[List["re.Match[str]"]]:
    """Stretches of number words and digits separated only by spaces. A digit in "24.11.2026" or
    "10:00" is not followed by a space, so such numbers never join a run."""
    runs: List[List["re.Match[str]"]] = []
    previous_end = None  # where the last number token ended, None after any other word
    for token in _TOKEN.finditer(text):
        if not _is_number_token(token.group().lower()):
            previous_end = None
            continue
        if previous_end is not None and text[previous_end:token.start()].isspace():
            runs[-1].append(token)
        else:
            runs.append([token])
        previous_end = token.end()
    # One token says at most two digits (unless it is all digits, which the written patterns judged).
    return [run for run in runs if len(run) > 1]


def _redact_spoken_numbers(text: str) -> str:
    """Each run of spoken numbers read as one digit string, in every language we know (the caller's
    language is not known here); a run that is an identifier is replaced as a whole."""
    spans: List[Tuple[int, int, str]] = []
    for run in _number_runs(text):
        tokens = [token.group().lower() for token in run]
        for lang in WORDS:
            i = 0
            while i < len(tokens):
                j, digits, spoken = i, "", False
                while j < len(tokens):
                    part, used = _digits_at(tokens, j, lang)
                    if not used:
                        break
                    spoken = spoken or not tokens[j].isdigit()
                    digits, j = digits + part, j + used
                # All-digit stretches were already judged by the written patterns, with their separators.
                kind = _kind_of(digits) if spoken else None
                if kind:
                    spans.append((run[i].start(), run[j - 1].end(), kind))
                i = max(j, i + 1)
    if not spans:
        return text
    merged: List[List[Any]] = []
    # Longest first where several readings start together: in Danish "tolv fireogtredive" ends a
    # CPR number that a language without the "og" joiner reads only partly, as a phone number.
    for start, end, kind in sorted(spans, key=lambda span: (span[0], -span[1])):
        if merged and start < merged[-1][1]:  # the same words read in two languages
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, kind])
    for start, end, kind in reversed(merged):
        text = f"{text[:start]}[{kind}]{text[end:]}"
    return text
