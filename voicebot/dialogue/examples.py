"""Trainers' new examples (typed in a topic's page, or taken from the review inbox): appended to
nlu_data/<lang>/inbox.yml, which training reads with the rest of the language's NLU data (the
hand-written files stay as they were written). And where new examples overlap another intent's."""

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Set

import yaml

from voicebot.config import ConfigError, Installation
from voicebot.dialogue.training import load_heldout, load_nlu
# Overlap: this share of the content words in common (words used by few intents; the rest, such
# as "I", "the", "how", says nothing about the topic).
OVERLAP = 0.5
COMMON_WORD_SHARE = 0.2  # a word in the examples of this share of the intents or more is common


class _BlockDumper(yaml.SafeDumper):
    """Example lists as `examples: |` blocks, as Rasa's own files write them."""


_BlockDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def inbox_file(inst: Installation, lang: str) -> Path:
    return inst.root / "nlu_data" / lang / "inbox.yml"


def add_example(inst: Installation, lang: str, intent: str, text: str) -> bool:
    """Add `text` as an example of `intent`; False if it is one already."""
    return bool(add_examples(inst, lang, intent, [text]))


def add_examples(inst: Installation, lang: str, intent: str, texts: List[str]) -> List[str]:
    """Add each text as an example of `intent`; returns those that were not examples already. An
    example of another intent is refused (training would refuse it too), and so is a held-out
    sentence. The language's data is read once: Rasa's loader takes a second or more on 2 cores."""
    held = {normalise(text) for _, text in load_heldout(inst, lang)}
    known = {normalise(e.get("text")): e.get("intent") for e in load_nlu(inst, lang).intent_examples}
    added = new_sentences(texts, intent, known, held,
                          "{text} is a held-out sentence, which judges new models: no model may learn from it",
                          "{text} is already an example of {intent}")
    if added:
        _append_to_inbox(inst, lang, intent, added)
    return added


def new_sentences(texts: List[str], intent: str, known: Dict[str, str], barred: Set[str],
                  barred_why: str, taken_why: str) -> List[str]:
    """The texts (spaces tidied) not yet in `known` (normalised text -> intent), now added to it
    for `intent`. A text in `barred`, or known for another intent, is refused with the message
    ({text} and {intent} filled in)."""
    added = []
    for text in (" ".join(t.split()) for t in texts):
        key = normalise(text)
        if key in barred:
            raise ConfigError(barred_why.replace("{text}", repr(text)))
        if known.get(key, intent) != intent:
            raise ConfigError(taken_why.replace("{intent}", repr(known[key])).replace("{text}", repr(text)))
        if key not in known:
            known[key] = intent
            added.append(text)
    return added


def _append_to_inbox(inst: Installation, lang: str, intent: str, texts: List[str]) -> None:
    path = inbox_file(inst, lang)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    data = data or {"version": "3.1", "nlu": []}
    block = next((b for b in data["nlu"] if b.get("intent") == intent), None)
    if block is None:
        block = {"intent": intent, "examples": ""}
        data["nlu"].append(block)
    block["examples"] += "".join(f"- {text}\n" for text in texts)
    path.write_text("# Examples trainers assigned in the dashboard's review inbox.\n"
                    + yaml.dump(data, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False), encoding="utf-8")


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def examples_by_intent(inst: Installation, lang: str) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = defaultdict(list)
    for example in load_nlu(inst, lang).intent_examples:
        found[example.get("intent")].append(example.get("text"))
    return dict(found)


@dataclass
class Overlap:
    text: str  # the new example
    other: str  # an example of another intent with most of the same content words
    intent: str


def overlaps(inst: Installation, lang: str, intent: str, texts: List[str]) -> List[Overlap]:
    """New examples of `intent` that share most of their content words with an example of
    another intent: the model would be taught to tell apart what sounds the same."""
    known = examples_by_intent(inst, lang)
    words = {name: [_words(text) for text in examples] for name, examples in known.items()}
    used_by = defaultdict(int)
    for name, sets in words.items():
        for word in set().union(*sets):
            used_by[word] += 1
    common = {word for word, count in used_by.items() if count >= COMMON_WORD_SHARE * max(len(words), 1)}
    found = []
    for text in texts:
        mine = _words(text) - common
        best = max(((len(mine & (theirs - common)) / len(mine | (theirs - common)), other, name)
                    for name, examples in known.items() if name != intent
                    for other, theirs in zip(examples, words[name]) if mine), default=None)
        if best and best[0] >= OVERLAP:
            found.append(Overlap(text, best[1], best[2]))
    return found


def _words(text: str) -> set:
    return set(re.findall(r"\w+", text.lower()))
