"""Topics callers ask about (topics.yml): data a trainer adds to, not code. A topic has a name per
language and examples per language (nlu_data/<language>/, its id as the intent); each line says
what the bot does with it (tenants/<line>.yml, under topics): say an answer, hand the caller to
a person, or offer a callback."""

import re
from typing import Dict, Literal, Optional

from pydantic import root_validator, validator

from voicebot.config.base import Strict
from voicebot.intents import BUILT_IN_INTENTS

def plain_text_answer(value):
    """A behaviour as written: a plain text is an answer."""
    return {"answer": value} if isinstance(value, str) else value


class Behaviour(Strict):
    """What a line does with a topic: an answer; a handoff (the line's queue unless `queue`
    names another); or a callback offer, perhaps after an answer. A plain text is an answer."""

    answer: Optional[str] = None
    hand_off: Optional[Literal["case_handling", "requested"]] = None
    queue: Optional[str] = None
    offer_callback: bool = False
    # After the answer, the hours of the line's main office (on a shared line, the caller's
    # municipality's): "the hotline cannot see your case; your municipality can, ... it opens ..."
    with_hours: bool = False

    @validator("answer")
    def one_line(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not value.strip():
            raise ValueError("an answer needs some words")
        return value and " ".join(value.split())

    @root_validator(skip_on_failure=True)
    def one_behaviour(cls, values):
        if sum((values["answer"] is not None and not values["offer_callback"], values["hand_off"] is not None,
                values["offer_callback"])) != 1:
            raise ValueError("give one of: answer (a text), hand_off (case_handling or requested, perhaps with "
                             "a queue), offer_callback: true (perhaps with an answer said first)")
        if values["queue"] is not None and values["hand_off"] is None:
            raise ValueError("queue goes with hand_off")
        if values["with_hours"] and values["answer"] is None:
            raise ValueError("with_hours goes with an answer")
        return values


class Topic(Strict):
    names: Dict[str, str]  # per language: what trainers and agents see
    default: Optional[Behaviour] = None

    @validator("names")
    def some_name(cls, value: Dict[str, str]) -> Dict[str, str]:
        if not value:
            raise ValueError("give the topic a name in each line's language")
        return value

    @validator("default", pre=True)
    def plain_text_answer(cls, value):
        return plain_text_answer(value)

    def name(self, lang: str) -> str:
        return self.names.get(lang) or next(iter(self.names.values()))


class Topics(Strict):
    topics: Dict[str, Topic] = {}

    @validator("topics")
    def intent_names(cls, value: Dict[str, Topic]) -> Dict[str, Topic]:
        for topic_id in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", topic_id):
                raise ValueError(f"{topic_id!r}: a topic's id is its intent: lower-case letters, digits and _")
            if topic_id in BUILT_IN_INTENTS:
                raise ValueError(f"{topic_id!r} is built in (the bot's own logic), not a topic")
        return value
