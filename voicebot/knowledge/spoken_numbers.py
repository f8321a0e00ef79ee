"""Numbers as a speech recogniser writes them: "fireogtredive", "vierunddreißig", "thirty four"."""

import re
from typing import Dict, List, Optional, Tuple

_UNITS = {
    "en": "zero one two three four five six seven eight nine",
    "da": "nul en to tre fire fem seks syv otte ni",
    "de": "null eins zwei drei vier fünf sechs sieben acht neun",
    "ko": "영 일 이 삼 사 오 육 칠 팔 구",
    "nb": "null en to tre fire fem seks sju åtte ni",
    "sv": "noll en två tre fyra fem sex sju åtta nio",
}
_TEENS = {
    "en": "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen",
    "da": "ti elleve tolv tretten fjorten femten seksten sytten atten nitten",
    "de": "zehn elf zwölf dreizehn vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn",
    "ko": "십 십일 십이 십삼 십사 십오 십육 십칠 십팔 십구",
    "nb": "ti elleve tolv tretten fjorten femten seksten sytten atten nitten",
    "sv": "tio elva tolv tretton fjorton femton sexton sjutton arton nitton",
}
_TENS = {
    "en": "twenty thirty forty fifty sixty seventy eighty ninety",
    "da": "tyve tredive fyrre halvtreds tres halvfjerds firs halvfems",
    "de": "zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig",
    "ko": "이십 삼십 사십 오십 육십 칠십 팔십 구십",
    "nb": "tjue tretti førti femti seksti sytti åtti nitti",
    "sv": "tjugo trettio fyrtio femtio sextio sjuttio åttio nittio",
}
_ALIASES = {
    "en": {"oh": 0, "o": 0},
    "da": {"et": 1, "én": 1},
    "de": {"ein": 1, "eine": 1, "zwo": 2, "dreissig": 30},
    # Native Korean numbers name the hour ("다섯 시"); "공" is zero in phone numbers.
    "ko": {"공": 0, "한": 1, "하나": 1, "두": 2, "둘": 2, "세": 3, "셋": 3, "넷": 4, "다섯": 5,
           "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9, "열": 10, "열한": 11, "열두": 12},
    "nb": {"ett": 1, "én": 1, "syv": 7, "tyve": 20, "tredve": 30},
    "sv": {"ett": 1},
}
# Danish and German say the unit first: "fireogtredive" (4 + 30), "vierunddreißig".
JOINERS = {"da": "og", "de": "und"}
# Swedish and Norwegian say the ten first and write it as one word: "trettiofyra", "trettifire".
_TENS_FIRST = {"sv", "nb"}


def _table(lang: str) -> Dict[str, int]:
    words = {w: i for i, w in enumerate(_UNITS[lang].split())}
    words.update({w: 10 + i for i, w in enumerate(_TEENS[lang].split())})
    words.update({w: 20 + 10 * i for i, w in enumerate(_TENS[lang].split())})
    words.update(_ALIASES[lang])
    units = {w: v for w, v in words.items() if 1 <= v <= 9}
    tens = {w: v for w, v in words.items() if v >= 20 and v % 10 == 0}  # with aliases: "tyve", "tredve"
    for unit, value in units.items():
        for ten, ten_value in tens.items():
            if lang in JOINERS:
                words[f"{unit}{JOINERS[lang]}{ten}"] = ten_value + value
            if lang in _TENS_FIRST:
                words[f"{ten}{unit}"] = ten_value + value
    return words


WORDS = {lang: _table(lang) for lang in _UNITS}


def number_at(tokens: List[str], i: int, lang: str) -> Tuple[Optional[int], int]:
    """The number (0-99) that starts at tokens[i], and how many tokens it took."""
    if i >= len(tokens):
        return None, 0
    token = tokens[i]
    if token.isdigit():
        return int(token), 1
    if "-" in token and lang == "en":  # "thirty-four"
        parts = token.split("-")
        if len(parts) == 2 and parts[0] in WORDS["en"] and parts[1] in WORDS["en"]:
            return WORDS["en"][parts[0]] + WORDS["en"][parts[1]], 1
    value = WORDS[lang].get(token)
    if value is None:
        return None, 0
    if lang in JOINERS and 1 <= value <= 9 and tokens[i + 1:i + 2] == [JOINERS[lang]]:  # "ni og halvfjerds"
        ten = WORDS[lang].get(tokens[i + 2]) if i + 2 < len(tokens) else None
        if ten is not None and ten >= 20 and ten % 10 == 0:
            return ten + value, 3
    if lang == "en" and value >= 20 and value % 10 == 0:
        unit = WORDS["en"].get(tokens[i + 1]) if i + 1 < len(tokens) else None
        if unit is not None and 1 <= unit <= 9:
            return value + unit, 2
    return value, 1


_HUNDRED = {"en": "hundred", "da": "hundrede", "de": "hundert", "ko": "백", "nb": "hundre", "sv": "hundra"}
_AND = {**JOINERS, "en": "and", "ko": "", "nb": "og", "sv": "och"}


def phone_number(text: str, lang: str) -> Optional[str]:
    """Digits of a spoken phone number ("plus fem og fyrre", "double seven", pairs), or None."""
    tokens = re.sub(r"[^\w+-]+", " ", text.lower()).replace("+", " plus ").split()
    digits, i = "", 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("plus", "pluss") and not digits:  # "pluss" in Norwegian
            digits, i = "+", i + 1
            continue
        repeat = 2 if token in ("double", "doppel") else 3 if token == "triple" else 1
        if repeat > 1:
            i += 1
        value, used = number_at(tokens, i, lang)
        if value is None:
            i += max(used, 1)
            continue
        word = tokens[i]
        text_value = word if word.isdigit() else (f"{value:02d}" if value >= 10 else str(value))
        i += used
        if 1 <= value <= 9 and tokens[i:i + 1] == [_HUNDRED[lang]]:  # "oh eight hundred", "nine hundred and five"
            i += 1
            rest, rest_used = number_at(tokens, i + 1, lang) if tokens[i:i + 1] == [_AND[lang]] else (None, 0)
            if rest is None:
                text_value = f"{value}00"
            else:
                text_value, i = f"{value}{rest:02d}", i + 1 + rest_used
        digits += text_value * repeat
    count = len(digits.lstrip("+"))
    return digits if 8 <= count <= 15 else None
