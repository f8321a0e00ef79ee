"""Which of a shared line's municipalities a caller names: by its name, one of its towns or an
older name, also as a recogniser misspells it ("Kjøge", "Koge" for Køge)."""

import difflib
import re
import unicodedata
from typing import Optional

from voicebot.config.tenant import Tenant

# Letters a recogniser or a caller's spelling swaps: compared without them.
_FOLDS = str.maketrans({"ø": "o", "ö": "o", "æ": "ae", "ä": "a", "å": "aa", "ü": "u", "ß": "ss"})
# How alike a one-word name and a word of the sentence must be (difflib's ratio), beginning with
# the same letter: "skovlunde" is Skovlund, but "under" is not Lunde, nor "lande".
SIMILAR = 0.85
MIN_FUZZY_LETTERS = 4  # shorter names must be said exactly: too many short words look alike


def _folded(text: str) -> str:
    text = unicodedata.normalize("NFC", text.lower()).translate(_FOLDS)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def municipality_named(line: Tenant, text: str) -> Optional[str]:
    """The id of the municipality the text names (an exact name first, then a close one)."""
    words = _folded(text).split()
    said = f" {' '.join(words)} "
    names = [(_folded(name), m_id) for m_id, m in line.municipalities.items()
             for name in (m.name, *m.aliases, m_id.replace("-", " "))]
    for name, m_id in sorted(names, key=lambda n: -len(n[0])):
        if f" {name} " in said:
            return m_id
    best = max(((difflib.SequenceMatcher(None, name, word).ratio(), m_id) for name, m_id in names
                if " " not in name and len(name) >= MIN_FUZZY_LETTERS for word in words if word[0] == name[0]),
               default=(0.0, None))
    return best[1] if best[0] >= SIMILAR else None
