"""Whether a question about hours, an address or an appointment names somebody else's place.

"What are the bank's opening hours", "how do I get to the Odeon", "har bauhaus åbent påskedag",
"Termin bei meinem Bankberater": the model reads them as questions about an office, and the line
would answer with its own town hall. A question that names none of the line's offices and does
not address the line ("are you open") is checked here: the place it names, if any, is read from
the sentence's shape and compared with the line's offices and with the words that stand for them.
"""

import datetime as dt
import re
from functools import lru_cache
from typing import Dict, FrozenSet, List, Optional

from voicebot.config.tenant import Tenant
from voicebot.knowledge.answers import find_office, when_asked
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.knowledge.when import WEEKDAY_WORDS

# Words that ask the line itself ("are you open", "har I åbent", "haben Sie auf").
_ADDRESSED = {"en": r"\b(you|your)\b", "da": r"\b(jer|jeres)\b|\b(har|er|åbner|lukker|holder) i\b",
              "de": r"\b(sie|ihr|euch|ihnen)\b", "nb": r"\b(dere|deres)\b", "sv": r"\b(ni|er|era)\b"}
# Sentence shapes whose group "place" is the place asked about, per language.
_SHAPES: Dict[str, List[str]] = {
    "en": [
        r"\b(?P<place>\w+)'s (?:opening|closing) (?:hours|times)",
        r"\b(?:is|are|does|do|will) (?:the|a|an) (?P<place>.+?) (?:open|opened|opening|close|closed|closing|shut)\b",
        r"\b(?:hours|times) (?:at|of) (?P<place>.+)",
        r"\b(?:get to|directions to|way to|address of|address for|where is|where's|where are) (?P<place>.+)",
        r"\bappointment (?:with|at) (?P<place>.+)",
    ],
    "da": [
        r"\b(?P<place>\w+?)s åbningstid",
        r"\båbningstid\w* (?:i|hos|for|på|ved) (?P<place>.+)",
        r"\b(?:hvornår|hvad tid) (?:åbner|lukker|har|er) (?P<place>.+?)(?: åbent| åben| lukket|$)",
        r"^(?:har|er) (?P<place>.+?) (?:åbent|åben|lukket)\b",
        r"\b(?:hvor ligger|hvor er|hvordan kommer jeg til|vej til|adressen på) (?P<place>.+)",
        r"\btid hos (?P<place>.+)",
    ],
    "de": [
        r"\böffnungszeiten (?:der|des|von|vom|bei|beim|im) (?P<place>.+)",
        r"\bwann (?:öffnet|schließt|schliesst|macht|hat|ist) (?P<place>.+?)(?: auf| zu| geöffnet| offen|$)",
        r"^(?:hat|ist) (?P<place>.+?) (?:geöffnet|offen|auf|zu)\b",
        r"\b(?:wie komme ich (?:zu|zum|zur|nach|in)|wo ist|wo liegt|wo finde ich|adresse (?:von|vom|der|des)) "
        r"(?P<place>.+)",
        r"\btermin (?:bei|beim) (?P<place>.+)",
    ],
    "nb": [
        r"\b(?P<place>\w+?)s åpningstid",
        r"\båpningstid\w* (?:i|hos|for|på|ved|til) (?P<place>.+)",
        r"\b(?:når|hva tid) (?:åpner|stenger|har|er) (?P<place>.+?)(?: åpent| åpen| stengt|$)",
        r"^(?:har|er) (?P<place>.+?) (?:åpent|åpen|stengt)\b",
        r"\b(?:hvor ligger|hvor er|hvordan kommer jeg (?:meg )?til|veien til|adressen til) (?P<place>.+)",
        r"\btime hos (?P<place>.+)",
    ],
    "sv": [
        r"\b(?P<place>\w+?)s öppettid",
        r"\böppettid\w* (?:i|hos|för|på|vid|till) (?P<place>.+)",
        r"\b(?:när|vilken tid|hur dags) (?:öppnar|stänger|har|är) (?P<place>.+?)(?: öppet| öppen| stängt| stängd|$)",
        r"^(?:har|är) (?P<place>.+?) (?:öppet|öppen|stängt|stängd)\b",
        r"\b(?:var ligger|var är|var finns|hur kommer jag till|hur tar jag mig till|vägen till|adressen till) "
        r"(?P<place>.+)",
        r"\btid hos (?P<place>.+)",
    ],
}
# Words that end the place's name: a day, a time, a preposition that starts something else.
_ENDS: Dict[str, FrozenSet[str]] = {
    "en": frozenset("on at in from this next tomorrow today tonight late early until till and or during over "
                    "near please for to by open opened closed".split()),
    "da": frozenset("på i om til fra ved næste denne og eller lige nu klokken kl efter før hvis så "
                    "åbent åben lukket".split()),
    "de": frozenset("am an um in im heute morgen übermorgen nächste nächsten diese diesen und oder bis ab von "
                    "zwischen noch eigentlich denn mal geöffnet offen auf zu geschlossen".split()),
    "nb": frozenset("på i om til fra ved neste denne dette og eller nå klokka klokken kl etter før hvis så "
                    "åpent åpen stengt".split()),
    "sv": frozenset("på i om till från vid nästa denna detta och eller nu klockan kl efter före innan så "
                    "öppet öppen stängt stängd".split()),
}
# Words that name no place, or stand for the line's own ("it", "the office", "your office").
_OURS: Dict[str, FrozenSet[str]] = {
    "en": frozenset("the a an it that there here you your this office offices building centre center council "
                    "municipality reception entrance desk counter main closest place parking car park nearest "
                    "located based situated week weekend holidays passport passports licence driving citizen "
                    "citizens id morning afternoon evening".split()),
    "da": frozenset("den det de en et der her i jer jeres kontoret kontorerne bygningen indgangen parkering "
                    "parkeringen stedet nærmeste dag dagen morgen aften eftermiddag formiddag ugen weekenden julen "
                    "påsken".split()),
    "de": frozenset("der die das dem den des ein eine einem einer es da dort hier sie ihnen euch ihr büro amt "
                    "gebäude eingang parkplatz stelle nächste nächsten passstelle meldestelle zulassungsstelle "
                    "führerscheinstelle standesamt ausländerbehörde tag woche monat".split()),
    "nb": frozenset("slag den det de en et ei der her dere deres kontoret kontorene bygningen inngangen parkering "
                    "parkeringen stedet nærmeste dag dagen morgen kveld ettermiddag formiddag uka uken helgen jula "
                    "julen påska påsken".split()),
    "sv": frozenset("slag den det de en ett där här ni er era kontoret kontoren byggnaden ingången parkering "
                    "parkeringen stället närmaste dag dagen morgon kväll eftermiddag förmiddag veckan helgen julen "
                    "påsken".split()),
}


def other_place(tenant: Tenant, text: str, now: dt.datetime) -> Optional[str]:
    """The place the question names if it is not one of the line's offices ("the bank", "puregym"),
    else None: also None when the question addresses the line or the line has no shapes for its
    language."""
    lang = tenant.language
    text = " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())
    if lang not in _SHAPES or find_office(tenant, text) or addresses_the_line(text, lang):
        return None
    for shape in _SHAPES[lang]:
        match = re.search(shape, text)
        if match is None:
            continue
        place = _name(match.group("place"), lang)
        if place and not _is_ours(tenant, place, now):
            return place
    return None


def addresses_the_line(text: str, lang: str) -> bool:
    return lang in _ADDRESSED and re.search(_ADDRESSED[lang], text.lower()) is not None


def _name(words: str, lang: str) -> str:
    """The place's name: the words up to the first one that ends it."""
    kept: List[str] = []
    for word in words.split():
        if word in _ENDS[lang]:
            break
        kept.append(word)
    return " ".join(kept)


@lru_cache(maxsize=None)
def _not_places(lang: str) -> FrozenSet[str]:
    """The words that stand for the line, and weekday and month names."""
    return _OURS[lang] | set(WEEKDAY_WORDS[lang]) | {m.lower() for m in phrasebook(lang).data["months"]}


def _is_ours(tenant: Tenant, place: str, now: dt.datetime) -> bool:
    """Words that stand for the line, or that are a day ("the opening times at christmas")."""
    if find_office(tenant, place) or all(word in _not_places(tenant.language) for word in place.split()):
        return True
    when = when_asked(tenant, place, now)
    return when.date is not None or when.time is not None
