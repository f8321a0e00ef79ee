"""A line shared by several municipalities (an evening hotline for a region): every action
answers for the municipality the caller means. It is taken from any turn that names it (its name,
a town, a misspelling), kept for the rest of the conversation and changed when the caller names
another. When the answer depends on it and it is not known yet, the bot asks, keeps the question,
and answers it once the caller has said which; a second reply it cannot place goes to a person."""

import copy
from dataclasses import dataclass, field
from typing import List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from voicebot.config import Tenant
from voicebot.knowledge.answers import find_office
from voicebot.knowledge.municipalities import municipality_named
from voicebot.knowledge.phrasebook import Phrasebook

OFFICE_QUESTIONS = ("action_opening_hours", "action_office_location")
QUESTIONS = (*OFFICE_QUESTIONS, "action_topic")
# Asking for a person or saying goodbye instead of a municipality always goes through.
ALWAYS_HEARD = ("action_handoff", "action_goodbye")
AWAITING = "municipality"
MAX_ASKS = 2
# A reply to "which municipality?" that is a question of its own: understood this surely, and
# longer than a name ("Køge", "jeg bor i Køge").
SURE_OF_A_NEW_QUESTION = 0.9
NEW_QUESTION_WORDS = 4


@dataclass
class Turn:
    """What the action does on a shared line: answer as `action` (this one, or a kept question's)
    for `line` (the caller's municipality) from `tracker`; or ask `ask`; or hand over."""

    line: Tenant
    tracker: Tracker
    action: Optional[str]
    events: List[EventType] = field(default_factory=list)
    ask: Optional[str] = None  # phrase key of the question for the municipality
    give_up: bool = False
    named_now: bool = False  # the caller named the municipality in this turn

    def asking(self, phrases: Phrasebook) -> str:
        names = [m.name for m in self.line.municipalities.values()]
        listed = names[0] if len(names) == 1 else \
            ", ".join(names[:-1]) + f" {phrases.data['dates']['and']} {names[-1]}"
        return phrases.say(self.ask, names=listed)


def turn_on_shared_line(action_name: str, tracker: Tracker, line: Tenant) -> Turn:
    named = municipality_named(line, tracker.latest_message.get("text") or "")
    known = named or tracker.get_slot("municipality")
    events: List[EventType] = [SlotSet("municipality", named)] if named and named != tracker.get_slot(
        "municipality") else []
    kept = tracker.get_slot("pending") if tracker.get_slot("awaiting") == AWAITING else None
    if kept and not _is_a_new_question(action_name, tracker):
        if named is None:
            return _ask_again(tracker, line, kept)
        events += [SlotSet("pending", None), SlotSet("awaiting", None)]
        return Turn(line.for_municipality(named), _with_message(tracker, kept["message"]), kept["action"], events,
                    named_now=True)
    if kept:
        events.append(SlotSet("pending", None))
    if known is None and _depends_on_municipality(action_name, tracker, line):
        return Turn(line, tracker, None, ask="which_municipality", events=[
            SlotSet("awaiting", AWAITING),
            SlotSet("pending", {"action": action_name, "message": tracker.latest_message, "asked": 1})])
    return Turn(line.for_municipality(known) if known else line, tracker, action_name, events,
                named_now=named is not None)


def _depends_on_municipality(action_name: str, tracker: Tracker, line: Tenant) -> bool:
    """Whether the answer differs between the line's municipalities: their offices' hours and
    addresses (unless the question names one of the line's own, such as the hotline), and a
    topic some municipality answers its own way."""
    if action_name in OFFICE_QUESTIONS:
        return find_office(line, tracker.latest_message.get("text") or "") is None
    if action_name == "action_topic":
        topic = tracker.get_intent_of_latest_message()
        return any(topic in m.topics for m in line.municipalities.values())
    return False


def _is_a_new_question(action_name: str, tracker: Tracker) -> bool:
    if action_name in ALWAYS_HEARD:
        return True
    confidence = (tracker.latest_message.get("intent") or {}).get("confidence") or 0.0
    words = len((tracker.latest_message.get("text") or "").split())
    return action_name in QUESTIONS and confidence >= SURE_OF_A_NEW_QUESTION and words >= NEW_QUESTION_WORDS


def _ask_again(tracker: Tracker, line: Tenant, kept: dict) -> Turn:
    if kept.get("asked", 1) >= MAX_ASKS:
        return Turn(line, tracker, None, [SlotSet("pending", None), SlotSet("awaiting", None)], give_up=True)
    return Turn(line, tracker, None, ask="which_municipality_again", events=[
        SlotSet("awaiting", AWAITING), SlotSet("pending", {**kept, "asked": kept.get("asked", 1) + 1})])


def _with_message(tracker: Tracker, message: dict) -> Tracker:
    """The tracker as it was when the kept question was asked: its words, intent and entities."""
    asked = copy.copy(tracker)
    asked.latest_message = message
    return asked
