"""Trainers' new examples: appended to nlu_data/<lang>/inbox.yml, which training reads with the
rest of the language's NLU data (the hand-written files stay as trainers wrote them)."""

from pathlib import Path

import yaml

from voicebot.config import ConfigError, Installation
from voicebot.dialogue.training import load_nlu


class _BlockDumper(yaml.SafeDumper):
    """Example lists as `examples: |` blocks, as Rasa's own files write them."""


_BlockDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def inbox_file(inst: Installation, lang: str) -> Path:
    return inst.root / "nlu_data" / lang / "inbox.yml"


def add_example(inst: Installation, lang: str, intent: str, text: str) -> bool:
    """Add `text` as an example of `intent`; False if it is one already. An example of another
    intent is refused (training would refuse it too)."""
    text = " ".join(text.split())
    for example in load_nlu(inst, lang).intent_examples:
        if " ".join(example.get("text").lower().split()) == text.lower():
            if example.get("intent") == intent:
                return False
            raise ConfigError(f"{text!r} is already an example of {example.get('intent')!r}")
    path = inbox_file(inst, lang)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    data = data or {"version": "3.1", "nlu": []}
    block = next((b for b in data["nlu"] if b.get("intent") == intent), None)
    if block is None:
        block = {"intent": intent, "examples": ""}
        data["nlu"].append(block)
    block["examples"] += f"- {text}\n"
    path.write_text("# Examples trainers assigned in the dashboard's review inbox.\n"
                    + yaml.dump(data, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return True
