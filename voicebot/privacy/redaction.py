"""Personal identifiers out of whatever we keep about a call: the database, logs and metrics labels
get "mit cpr er [cpr]", never the number. Callers read numbers aloud, so a speech recogniser
writes them as words ("tolv nul tre femogfirs ..."); those are found as well as digits, also
when a caller says one half in one turn and the other in the next (redact_across). Times and ids
in log lines stay whole."""

import logging
import re
from typing import Any, List, Optional, Tuple

from voicebot.knowledge.spoken_numbers import JOINERS, WORDS, number_at

# --- Separators. Word processors, phones and recognisers put more than "-" and " " into a number:
# Unicode hyphens (U+2010, the no-break U+2011), figure, en and em dashes, the minus sign, an underscore,
# no-break and thin spaces. Every pattern takes them all.
_DASH_CHARS = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"
_DASH = f"[{re.escape(_DASH_CHARS)}]"
_SPACE = "[ \u00a0\u2009\u202f]"
_SPACED_DASH = f"{_SPACE}?{_DASH}{_SPACE}?"  # "010190 - 1234", "08.00 – 15.30"
_SEP = f"(?:{_SPACED_DASH}|{_SPACE}|_)"  # one separator inside an identifier

# --- Times and ids (pjsip's log lines and ours): cut out of the text before any pattern runs, so that
# none takes their digits. A time "16:15:23.456" or timestamp "2026-11-30T16:15:23,456Z"; a UUID; a hex
# id with letters and digits, at least 12 long (longer than an ID card number), as a whole word or
# before "@" (a SIP Call-ID "a84b4c76e66710@host"); an IPv4 address, but not four pairs of digits,
# which is how Danish phone numbers are written ("12.34.56.78").
_HEX = "[0-9a-fA-F]"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_NOT_PERSONAL = re.compile(
    r"((?<![\d:])(?:\d{4}-\d\d-\d\d[T ])?\d\d?:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?(?!\d)"
    rf"|(?<![^\W_]){_HEX}{{8}}(?:-{_HEX}{{4}}){{3}}-{_HEX}{{12}}(?![^\W_])"
    rf"|(?<![\w.+-])(?={_HEX}*[a-fA-F])(?={_HEX}*\d){_HEX}{{12,}}(?!\w)"
    rf"|(?<![\d.])(?!\d\d\.\d\d\.\d\d\.\d\d(?!\d))(?:{_OCTET}\.){{3}}{_OCTET}(?::\d{{1,5}})?(?!\.?\d))"
)
_MAYBE_NOT_PERSONAL = re.compile(r"\d:\d\d:\d|[0-9a-fA-F]{8}|\d\.\d{1,3}\.\d{1,3}\.\d")  # cheap test first

# --- Written identifiers, most specific first: a CPR number is also ten digits a phone pattern would take.
# Never part of a longer word: digits inside "9f86d0818840101901234a" are an id, not a CPR number.

_DAY = r"(?:0[1-9]|[12]\d|3[01])"
_MONTH = r"(?:0[1-9]|1[0-2])"
_SE_DAY = r"(?:0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01])"  # +60: samordningsnummer
_NO_DAY = r"(?:0[1-9]|[12]\d|3[01]|4[1-9]|[56]\d|7[01])"  # +40: D-nummer
_NO_MONTH = r"(?:0[1-9]|1[0-2]|4[1-9]|5[0-2])"  # +40: H-nummer

_IDENTIFIERS = [
    (kind, re.compile(rf"(?<![^\W_])(?:{pattern})(?![^\W_])"))
    for kind, pattern in [
        ("cpr", rf"{_DAY}{_MONTH}\d\d{_SEP}?\d{{4}}"),
        ("personnummer", rf"(?:18|19|20)?\d\d{_MONTH}{_SE_DAY}(?:{_SEP}|\+)?\d{{4}}"),
        ("fodselsnummer", rf"{_NO_DAY}{_NO_MONTH}\d\d{_SEP}?\d{{5}}"),
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

_AMOUNT = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?"
# Numbers that look like phone numbers but are dates, times, year ranges or amounts. They are
# matched first at each position and given back unchanged, so the phone pattern never sees them.
_NOT_A_PHONE = (
    rf"(?:(?:0?[1-9]|[12]\d|3[01])(?P<dsep>[./]|{_DASH})(?:0?[1-9]|1[0-2])(?P=dsep)(?:\d{{4}}|\d\d)"  # 24.11.2026
    rf"|\d{{4}}(?P<isep>[/.]|{_DASH})(?:0?[1-9]|1[0-2])(?P=isep)(?:0?[1-9]|[12]\d|3[01])"  # 2026-11-24
    rf"|\d{{1,2}}[.:]\d\d(?:{_SPACED_DASH}\d{{1,2}}[.:]\d\d)?"  # 10.00, 08.00-15.30
    rf"|(?:19|20)\d\d{_SPACED_DASH}(?:19|20)\d\d"  # 2019-2024
    rf"|{_AMOUNT}(?:{_SPACED_DASH}{_AMOUNT})?"  # 1.250.000,00 kr, 1.250-2.500 kr
    rf")(?!(?:[./]|{_DASH})?\d)"
)
# A leading + or 00, digits grouped by single spaces, dashes, dots, slashes or parentheses, and not
# glued to letters (an id such as "12345678abcdef").
_PHONE = re.compile(
    rf"(?<!\w)(?:(?P<keep>{_NOT_A_PHONE})|(?:\+ ?)?(?:\(\d{{1,5}}\) ?)?\d(?:(?:{_SEP}|[./]|\) ?| ?\()?\d)*(?![^\W_]))"
)
_MIN_PHONE_DIGITS = 8
# Digits said one by one ("0 1 0 1 9 0 - 1 2 3 4"): the phone pattern leaves them to the reading of
# spoken numbers below, which tells a CPR number from a phone number by the digits alone.
_ONE_BY_ONE = re.compile(rf"\d(?:{_SEP}\d)+")
# Every pattern above needs eight digits at most three characters apart ("0 - 1"); most turns have
# none, and this one scan is much cheaper than running every pattern.
_LONG_NUMBER = re.compile(r"\d(?:\D{0,3}\d){7}")
_DIGIT = re.compile(r"\d")

# --- E-mail addresses. The words people say or write for "@" and ".".
_SPOKEN_AT = r"(?:snabel ?-?a|at|ät)"
_SPOKEN_DOT = r"(?:punktum|punkt|dot)"


def _bracketed(words: str) -> str:
    return rf"[(\[{{<] ?(?:{words}) ?[)\]}}>]"


# Written, also as people write them to keep them from robots: "anna (at) kommune.dk",
# "anna[at]kommune(dot)dk", "anna @ kommune . dk", "anna(a)kommune.dk".
_HIDDEN_AT = _bracketed(f"{_SPOKEN_AT}|a")
_HIDDEN_DOT = _bracketed(_SPOKEN_DOT)
_AT_SIGN = rf"(?: ?@ ?| ?{_HIDDEN_AT} ?)"
_DOT_SIGN = rf"(?:\.| \. | ?{_HIDDEN_DOT} ?)"
_EMAIL = re.compile(
    # The local part is one word with a letter (so "sip:+4512345678@pbx" is a phone number, found as
    # such below, and a sentence never is a local part); the domain may be spaced out.
    rf"(?<![\w.+-])(?=[\w+-]*[^\W\d_])[\w+-]+(?:(?:\.|{_HIDDEN_DOT})[\w+-]+)*{_AT_SIGN}"
    rf"[\w-]+(?:{_DOT_SIGN}[\w-]+)*{_DOT_SIGN}[^\W\d_]{{2,}}(?!\w)",
    re.IGNORECASE,
)
_MAYBE_EMAIL = re.compile(rf"@|{_HIDDEN_AT}", re.IGNORECASE)  # cheap test first

# Spoken: what a recogniser writes for "anna punktum hansen snabel a kommune punktum dk" (or "anna at
# kommune.dk"). A domain must end in a known top-level domain, perhaps spelled out ("d k"), so that
# English "at" and Danish "at" (to, that) in ordinary sentences stay.
_SPOKEN_DOT_SIGN = rf"(?: {_SPOKEN_DOT} |\.)"
_TLDS = "com org net info dk de se no fi eu nu io at ch nl uk".split()
_SPOKEN_TLD = "|".join(" ?".join(tld) for tld in _TLDS)
_LABEL = r"[^\W_]+"
_SPOKEN_EMAIL = re.compile(
    rf"(?<!\w)(?:{_LABEL}{_SPOKEN_DOT_SIGN})*(?P<mailbox>{_LABEL}) (?P<at>{_SPOKEN_AT}) {_LABEL}"
    rf"(?:{_SPOKEN_DOT_SIGN}{_LABEL})*{_SPOKEN_DOT_SIGN}(?:{_SPOKEN_TLD})(?!\w)",
    re.IGNORECASE,
)
_SPOKEN_DOMAIN_END = re.compile(rf"{_SPOKEN_DOT_SIGN}(?:{_SPOKEN_TLD})(?!\w)", re.IGNORECASE)  # cheap test first
# Words that come before a plain "at" and a web address in ordinary sentences ("apply online at gov
# dot uk", "find us at aarhus dot dk", "documented at docs.python.org", Danish "husk at ..."): not a mailbox.
_NOT_A_MAILBOX = {"online", "us", "me", "you", "him", "her", "them", "it", "here", "there", "home", "visit",
                  "apply", "book", "find", "found", "read", "more", "information", "available", "documented",
                  "out", "for", "om", "ved", "og", "end", "sig", "så", "husk"}

# Letters, with "thirty-four" one token for number_at; digits on their own, so that "010190-1234" is
# two tokens with a dash between.
_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*|\d+")
# What may stand between two numbers of one run: spaces, a dash ("nul et - to"), a comma and a space
# (recognisers write "0, 1, 0, 1"; "2,5" is a decimal).
_RUN_GAP = re.compile(rf"\s*(?:{_DASH}|_)?\s*|,\s+")
# The dash of DDMMYY-SSSS said aloud: "tolv nul tre femogfirs bindestreg tolv fireogtredive".
_DASH_WORDS = {"bindestreg", "streg", "bindestrich", "strich", "dash", "hyphen", "bindestreck", "streck",
               "bindestrek", "strek"}
_NUMBER_WORDS = set().union(*WORDS.values()) | set(JOINERS.values()) | _DASH_WORDS
_PUNCTUATION = ".,;:!?…\"'«»„“”()[] \t\n" + _DASH_CHARS  # and spaces: what may stand around a number word
_REPLACEMENT = re.compile(r"\[[a-z_]+\]")  # what redact() puts in: "[cpr]"


def redact(text: Optional[str]) -> Optional[str]:
    """The text with every personal identifier replaced by its kind: "[cpr]", "[phone]", ..."""
    if not text:
        return text
    # Only a long number or an e-mail pattern could take a time's or an id's characters.
    if (_LONG_NUMBER.search(text) or "@" in text) and _MAYBE_NOT_PERSONAL.search(text):
        parts = _NOT_PERSONAL.split(text)  # text, time or id, text, ...
        return "".join(part if i % 2 else _redact(part) for i, part in enumerate(parts))
    return _redact(text)


def redact_across(previous: str, text: str) -> Optional[Tuple[str, str]]:
    """An identifier said over two turns ("mit cpr nummer er 010190", then "1234"): both turns with
    their part of it replaced ("mit cpr nummer er [cpr]", "[cpr]"), or None. Both are redacted already."""
    if not (ends_in_number(previous) and _starts_with_number(text)):
        return None
    tail, head = _number_runs(previous)[-1], _number_runs(text)[0]
    tail_start, tail_end, head_start, head_end = tail[0].start(), tail[-1].end(), head[0].start(), head[-1].end()
    said, goes_on = previous[tail_start:tail_end], text[head_start:head_end]
    # Groups of written digits go on where they stopped ("010190", "1234"); words and single digits
    # after a space ("nul et nul et ni nul", "et to tre fire").
    glue = "" if said[-2:].isdigit() and goes_on[:2].isdigit() else " "
    found = _REPLACEMENT.search(redact(f"{said}{glue}{goes_on}"))
    if not found:
        return None
    kind = found.group()
    return (f"{previous[:tail_start]}{kind}{previous[tail_end:]}", f"{text[:head_start]}{kind}{text[head_end:]}")


def ends_in_number(text: Optional[str]) -> bool:
    """Whether the text's last word is a number in digits or words, which the next turn may go on with."""
    words = (text or "").rstrip(_PUNCTUATION).rsplit(None, 1)
    return bool(words) and _is_number_word(words[-1])


def _starts_with_number(text: Optional[str]) -> bool:
    words = (text or "").lstrip(_PUNCTUATION).split(None, 1)
    return bool(words) and _is_number_word(words[0])


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


def _redact(text: str) -> str:
    if not text:
        return text
    if _MAYBE_EMAIL.search(text):
        text = _EMAIL.sub("[email]", text)
    if _SPOKEN_DOMAIN_END.search(text):
        text = _SPOKEN_EMAIL.sub(_spoken_email_or_keep, text)
    if _LONG_NUMBER.search(text):
        for kind, pattern in _IDENTIFIERS:
            text = pattern.sub(f"[{kind}]", text)
    if _DIGIT.search(text):
        text = _ID_CARD.sub("[id_card]", text)
    if _LONG_NUMBER.search(text):
        text = _PHONE.sub(_phone_or_keep, text)
    return _redact_spoken_numbers(text)


def _spoken_email_or_keep(match: "re.Match[str]") -> str:
    if match.group("at").lower() == "at" and match.group("mailbox").lower() in _NOT_A_MAILBOX:
        return match.group()
    return "[email]"


def _phone_or_keep(match: "re.Match[str]") -> str:
    number = match.group()
    if match.group("keep") or _ONE_BY_ONE.fullmatch(number):
        return number
    return "[phone]" if sum(c.isdigit() for c in number) >= _MIN_PHONE_DIGITS else number


def _kind_of(digits: str) -> Optional[str]:
    """Which identifier a bare digit string is, if any."""
    for kind, pattern in _IDENTIFIERS:
        if pattern.fullmatch(digits):
            return kind
    return "phone" if len(digits) >= _MIN_PHONE_DIGITS else None


def _is_number_word(word: str) -> bool:
    """`word` as split at spaces, perhaps with punctuation: "010190.", "fire,"."""
    return _is_number_token(word.strip(_PUNCTUATION).lower())


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
    joiner = JOINERS.get(lang)
    if joiner and used == 1 and 1 <= value <= 9 and tokens[i + 1:i + 2] == [joiner] and i + 2 < len(tokens):
        tens = WORDS[lang].get(tokens[i + 2])
        if tens is not None and tens >= 20 and tens % 10 == 0:
            value, used = value + tens, 3
    return (f"{value:02d}" if value >= 10 else str(value)), used


def _number_runs(text: str) -> List[List["re.Match[str]"]]:
    """Stretches of number words and digits separated only by spaces, a dash or a comma (_RUN_GAP).
    A digit in "24.11.2026" or "10:00" is followed by neither, so such numbers never join a run."""
    runs: List[List["re.Match[str]"]] = []
    previous_end = None  # where the last number token ended, None after any other word
    for token in _TOKEN.finditer(text):
        if not _is_number_token(token.group().lower()):
            previous_end = None
            continue
        gap = text[previous_end:token.start()] if previous_end is not None else ""
        if gap == " " or gap and _RUN_GAP.fullmatch(gap):
            runs[-1].append(token)
        else:
            runs.append([token])
        previous_end = token.end()
    return runs


def _redact_spoken_numbers(text: str) -> str:
    """Each run of spoken numbers read as one digit string, in every language we know (the caller's
    language is not known here); a run that is an identifier is replaced as a whole."""
    spans: List[Tuple[int, int, str]] = []
    for run in _number_runs(text):
        tokens = [token.group().lower() for token in run]
        # One token says at most two digits, unless it is written; written digits are read here only
        # when they come one by one ("0 1 0 1 9 0"), which the written patterns leave to this reading.
        if len(run) < 2 or all(token.isdigit() and len(token) > 1 for token in tokens):
            continue
        for lang in WORDS:
            i = 0
            while i < len(tokens):
                j, digits, spoken = i, "", False
                while j < len(tokens):
                    part, used = _digits_at(tokens, j, lang)
                    if not used:
                        break
                    spoken = spoken or not tokens[j].isdigit() or len(tokens[j]) == 1
                    digits, j = digits + part, j + used
                # Groups of written digits were judged by the written patterns, with their separators.
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
