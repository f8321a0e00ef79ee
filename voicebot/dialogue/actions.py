"""Custom actions, run by the action server. Each reads the tenant from its slot and speaks the
tenant's language; yes/no answers and misses are resolved from slots, not from stories."""

import datetime as dt
import logging
import re
from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecuted, EventType, FollowupAction, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from voicebot import clock
from voicebot.config import Tenant
from voicebot.config.live import LiveConfiguration
from voicebot.dialogue import payloads
from voicebot.dialogue.shared_line import turn_on_shared_line
from voicebot.intents import SMALL_TALK
from voicebot.knowledge.answers import (OpeningHoursAnswer, find_office, location_answer, office_asked,
                                        when_asked)
from voicebot.knowledge.opening_hours import Schedule
from voicebot.knowledge.phrasebook import Phrasebook, phrasebook
from voicebot.knowledge.places import addresses_the_line, other_place
from voicebot.knowledge.spoken_numbers import phone_number
from voicebot.knowledge.when import When, corrects
from voicebot.store import RecordStore

logger = logging.getLogger(__name__)

MAX_MISSES = 2
MAX_NUMBER_ATTEMPTS = 2
NO_NUMBER = "none"  # callback_number value after the caller could not give one
CALLER_ID = re.compile(r"\+?\d{6,15}")
# Outside agent hours these reasons get a callback offer instead of a dead queue; faults and a
# failed callback still go to the queue, which the contact centre's own routing covers.
CALLBACK_INSTEAD = ("requested", "case_handling", "misunderstood")
HANDOFF_PHRASES = {"requested": "handoff_requested", "case_handling": "handoff_case",
                   "misunderstood": "handoff_misunderstood", "technical_fault": "handoff_technical",
                   "callback_failed": "handoff_requested"}


installation = LiveConfiguration()


@lru_cache(maxsize=1)
def callback_store() -> RecordStore:
    inst = installation()
    return RecordStore(inst.settings.store_url, inst.root, migrate=False)  # the bot migrated it


def _tenant(tracker: Tracker) -> Tenant:
    tenant_id = tracker.get_slot("tenant") or (tracker.latest_message.get("metadata") or {}).get("tenant")
    return installation().tenant(tenant_id)


def _topics(tracker: Tracker) -> List[str]:
    """Intents of the caller's turns that name a topic, in order, without repeats."""
    topics: List[str] = []
    for event in tracker.events:
        intent = (event.get("parse_data") or {}).get("intent", {}).get("name") if event.get("event") == "user" else None
        if intent in installation().routine_intents + ("request_agent", "callback_request") and intent not in topics:
            topics.append(intent)
    return topics


class LineAction(Action, ABC):
    """An action that speaks for the caller's line (abstract: rasa_sdk registers only concrete ones)."""

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        line = _tenant(tracker)
        phrases = phrasebook(line.language)
        if not line.municipalities:
            return self.respond(dispatcher, tracker, line, phrases)
        turn = turn_on_shared_line(self.name(), tracker, line)
        if turn.ask:
            dispatcher.utter_message(text=turn.asking(phrases))
            return turn.events
        if turn.give_up:
            return turn.events + hand_off(dispatcher, tracker, line, phrases, "misunderstood")
        if turn.line.serving:
            dispatcher.utter_message(json_message=payloads.municipality(turn.line.serving, turn.named_now))
        return turn.events + _line_action(turn.action).respond(dispatcher, turn.tracker, turn.line, phrases)

    @abstractmethod
    def respond(self, dispatcher, tracker: Tracker, tenant: Tenant, phrases: Phrasebook) -> List[EventType]:
        """Say what this action says for the tenant; return the events."""


def _line_action(name: str) -> LineAction:
    """The action of that name (a question kept while the caller said which municipality)."""
    found = [cls() for cls in LineAction.__subclasses__() if cls().name() == name]
    return found[0]


def _now(tracker: Tracker) -> dt.datetime:
    return clock.now(tracker.latest_message.get("metadata"))


def answered(dispatcher, phrases: Phrasebook, text: str) -> List[EventType]:
    """Say an answer, then ask whether there is anything else."""
    dispatcher.utter_message(text=text)
    dispatcher.utter_message(text=phrases.say("anything_else"))
    return [SlotSet("awaiting", "anything_else")]


def hand_off(dispatcher, tracker: Tracker, tenant: Tenant, phrases: Phrasebook, reason: str,
             queue: Optional[str] = None) -> List[EventType]:
    """Hand the caller to a person (the line's queue, or `queue`), or offer a callback when no
    agents are working."""
    local = _now(tracker).astimezone(tenant.zone)
    agents = Schedule.of_agents(tenant.handoff, tenant.office(), tenant.holiday_calendar())
    if reason in CALLBACK_INSTEAD and not agents.is_open(local):
        opening = agents.next_opening(local)
        if opening:
            dispatcher.utter_message(text=phrases.say(
                "agents_closed", day=phrases.day(opening.date, local.date()),
                start=phrases.clock(opening.interval.start)))
        dispatcher.utter_message(text=phrases.say("callback_offer"))
        return [SlotSet("awaiting", "callback_offer")]
    # Within agent hours, the phone line's queue may still have no one logged in, or be full.
    refusal = (tracker.latest_message.get("metadata") or {}).get("queue_refusal")
    if reason in CALLBACK_INSTEAD and refusal in ("no_agents", "full"):
        dispatcher.utter_message(text=phrases.say("agents_busy" if refusal == "no_agents" else "queue_full"))
        dispatcher.utter_message(text=phrases.say("callback_offer_now"))
        return [SlotSet("awaiting", "callback_offer")]
    dispatcher.utter_message(text=phrases.say(HANDOFF_PHRASES[reason]))
    last = tracker.latest_message.get("text") or ""
    dispatcher.utter_message(json_message=payloads.handoff(reason, queue or tenant.handoff.queue, _topics(tracker), last,
                                                           tenant.municipality_name))
    return [SlotSet("awaiting", None)]


class ActionSessionStart(Action):
    """Copies the line and the caller's number from the channel's metadata into slots: the number
    only if it is one ("anonymous" and SIP names are not), to be offered for a callback."""

    def name(self) -> Text:
        return "action_session_start"

    def run(self, dispatcher, tracker: Tracker, domain) -> List[EventType]:
        metadata = tracker.get_slot("session_started_metadata") or {}
        events: List[EventType] = [SessionStarted(), SlotSet("tenant", metadata.get("tenant"))]
        caller = str(metadata.get("caller") or "")
        if CALLER_ID.fullmatch(caller):
            events.append(SlotSet("caller_id", caller))
        return events + [ActionExecuted("action_listen")]


class ActionGreet(LineAction):
    def name(self) -> Text:
        return "action_greet"

    def respond(self, dispatcher, tracker, tenant, phrases):
        dispatcher.utter_message(text=phrases.say("greet_back"))
        return []


class ActionThank(LineAction):
    def name(self) -> Text:
        return "action_thank"

    def respond(self, dispatcher, tracker, tenant, phrases):
        return answered(dispatcher, phrases, phrases.say("you_are_welcome"))


class ActionChitchat(LineAction):
    """Small talk ("how are you", "are you a robot") gets a friendly word that steers back to
    what the line can do; it is neither a miss nor a topic."""

    def name(self) -> Text:
        return "action_chitchat"

    def respond(self, dispatcher, tracker, tenant, phrases):
        answer = follow_up(dispatcher, tracker, tenant, phrases)  # "and what about tomorrow?"
        if answer is not None:
            return answer
        dispatcher.utter_message(text=phrases.say("chitchat"))
        return [SlotSet("awaiting", None)]


class ActionGoodbye(LineAction):
    def name(self) -> Text:
        return "action_goodbye"

    def respond(self, dispatcher, tracker, tenant, phrases):
        dispatcher.utter_message(text=phrases.say("goodbye"))
        dispatcher.utter_message(json_message=payloads.hangup("goodbye"))
        return [SlotSet("awaiting", None)]


class ActionAffirm(LineAction):
    def name(self) -> Text:
        return "action_affirm"

    def respond(self, dispatcher, tracker, tenant, phrases):
        awaiting = tracker.get_slot("awaiting")
        if awaiting == "callback_offer":
            return [SlotSet("awaiting", None), FollowupAction("callback_form")]
        if awaiting != "anything_else":  # a "yes" (or "erm yeah so") to no question says nothing
            return ActionNotUnderstood().respond(dispatcher, tracker, tenant, phrases)
        answer = follow_up(dispatcher, tracker, tenant, phrases)  # "yes, and on Saturday?"
        if answer is not None:
            return answer
        dispatcher.utter_message(text=phrases.say("how_can_i_help"))
        return [SlotSet("awaiting", None)]


class ActionDeny(LineAction):
    def name(self) -> Text:
        return "action_deny"

    def respond(self, dispatcher, tracker, tenant, phrases):
        awaiting = tracker.get_slot("awaiting")
        if awaiting == "callback_offer":
            dispatcher.utter_message(text=phrases.say("anything_else"))
            return [SlotSet("awaiting", "anything_else")]
        if awaiting != "anything_else":  # a "no" to no question says nothing
            return ActionNotUnderstood().respond(dispatcher, tracker, tenant, phrases)
        answer = follow_up(dispatcher, tracker, tenant, phrases)  # "no, sorry, I meant Sunday" corrects
        if answer is not None:
            return answer
        return ActionGoodbye().respond(dispatcher, tracker, tenant, phrases)


class ActionTopic(LineAction):
    """A topic of topics.yml, done as the line says: an answer, a handoff or a callback offer."""

    def name(self) -> Text:
        return "action_topic"

    def respond(self, dispatcher, tracker, tenant, phrases):
        topic = tracker.get_intent_of_latest_message()
        behaviour = tenant.topics.get(topic)
        if behaviour is None:  # a model trained with a topic the configuration has dropped since
            logger.warning("line %s: the model knows the topic %r, which topics.yml no longer has: retrain",
                           tenant.id, topic)
            return ActionNotUnderstood().respond(dispatcher, tracker, tenant, phrases)
        if topic == "book_appointment" and _asks_about_another_place(tracker, tenant):
            return missed(dispatcher, tracker, tenant, phrases, out_of_scope=True)
        if behaviour.hand_off:
            return hand_off(dispatcher, tracker, tenant, phrases, behaviour.hand_off, behaviour.queue)
        if behaviour.offer_callback:
            if behaviour.answer:
                dispatcher.utter_message(text=behaviour.answer)
            dispatcher.utter_message(text=phrases.say("callback_offer_topic"))
            return [SlotSet("asked", None), SlotSet("awaiting", "callback_offer")]
        answer = behaviour.answer
        if behaviour.with_hours:
            answer += " " + OpeningHoursAnswer(tenant, None, phrases).answer(When(), _now(tracker))
        return [SlotSet("asked", None)] + answered(dispatcher, phrases, answer)


# What the last question about an office asked (slot "asked"), so that a follow-up that names only
# a day or an office ("and the library?", "no, I meant Sunday") reuses the rest of it.
OFFICE_TOPICS = ("opening_hours", "office_location")
# Words that open a follow-up: the rest of the previous question still holds ("and tomorrow?").
FOLLOW_UP = {
    "en": ("and", "what about", "how about"), "da": ("og", "hvad med", "hvad så med", "men"),
    "de": ("und", "was ist mit", "wie ist es mit", "wie sieht es", "aber"), "ko": (),
    "nb": ("og", "hva med", "hva så med", "men"), "sv": ("och", "hur är det med", "vad gäller", "men"),
}


def _asked_now(tracker: Tracker, tenant: Tenant) -> dict:
    """The office, day and time this turn names (the last ones, after a correction)."""
    text = tracker.latest_message.get("text") or ""
    when = when_asked(tenant, text, _now(tracker), time_text=next(tracker.get_latest_entity_values("time"), ""))
    entity = next(filter(None, (find_office(tenant, v) for v in tracker.get_latest_entity_values("office"))), None)
    return {"office": office_asked(tenant, text) or entity,
            "date": when.date.isoformat() if when.date else None,
            "time": when.time.strftime("%H:%M") if when.time else None}


def _office_question(tracker: Tracker, tenant: Tenant, topic: str, named: dict, follow_up: bool) -> dict:
    """The question about an office this turn asks, filled in from the last one: its office unless
    this turn names another (the caller is still talking about it), and on a follow-up ("and
    tomorrow?") its day and time too."""
    question = {"topic": topic, **named}
    last = tracker.get_slot("asked") or {}
    if last.get("topic") in OFFICE_TOPICS:
        text = tracker.latest_message.get("text") or ""
        if _names_only_an_office(text, tenant):  # "and the town hall?" asks the last question again
            question["topic"], follow_up = last["topic"], True
        question["office"] = question["office"] or last.get("office")
        if follow_up or _follows_up(text, tenant.language):
            for key in ("date", "time"):
                question[key] = question[key] or last.get(key)
    return question


_LITTLE_WORDS = {"the", "a", "then", "den", "det", "de", "så", "der", "die", "das", "dem", "beim", "im", "zum",
                 "zur", "dann", "då"}


def _names_only_an_office(text: str, tenant: Tenant) -> bool:
    """Whether the turn is an office's name and little else ("and the library?", "og rådhuset")."""
    text = " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())
    if not find_office(tenant, text):
        return False
    aliases = {a for office_id, office in tenant.offices.items()
               for a in (*office.aliases, office.name.lower(), office_id.replace("_", " "))}
    for alias in sorted(aliases, key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(alias)}\b", " ", text)
    markers = {w for marker in FOLLOW_UP.get(tenant.language, ()) for w in marker.split()}
    return all(word in markers or word in _LITTLE_WORDS for word in text.split())


def _may_follow_up(tracker: Tracker, lang: str) -> bool:
    """A follow-up opens with "and" or "what about", corrects ("I meant"), or is short ("no,
    Sunday"); a longer turn the NLU found out of scope ("what's the weather like tomorrow") is not."""
    text = tracker.latest_message.get("text") or ""
    if _follows_up(text, lang) or corrects(text, lang):
        return True
    return len(text.split()) <= 4 and tracker.get_intent_of_latest_message() != "out_of_scope"


def _follows_up(text: str, lang: str) -> bool:
    words = " ".join(text.lower().replace(",", " ").split())
    return any(words == w or words.startswith(w + " ") for w in FOLLOW_UP.get(lang, ()))


def answer_office_question(dispatcher, tracker: Tracker, tenant: Tenant, phrases: Phrasebook,
                           question: dict) -> List[EventType]:
    """Answer an opening-hours or address question, and remember it for follow-ups."""
    if question["topic"] == "office_location":
        answer = location_answer(tenant, question["office"], phrases)
    else:
        when = When(date=question["date"] and dt.date.fromisoformat(question["date"]),
                    time=question["time"] and dt.time.fromisoformat(question["time"]))
        answer = OpeningHoursAnswer(tenant, question["office"], phrases).answer(when, _now(tracker))
    return [SlotSet("asked", question)] + answered(dispatcher, phrases, answer)


def follow_up(dispatcher, tracker: Tracker, tenant: Tenant, phrases: Phrasebook) -> Optional[List[EventType]]:
    """A turn the NLU did not read as a question ("no, I meant Sunday", "and the library?") that
    names a day, a time or an office after a question about an office: answered as that question
    with the new values. None for any other turn."""
    last = tracker.get_slot("asked") or {}
    if last.get("topic") not in OFFICE_TOPICS or not _may_follow_up(tracker, tenant.language):
        return None
    named = _asked_now(tracker, tenant)
    if not any(named.values()):
        return None
    question = _office_question(tracker, tenant, last["topic"], named, follow_up=True)
    return answer_office_question(dispatcher, tracker, tenant, phrases, question)


# Below this confidence an office question must show it is one: it names an office or a day, asks
# the line itself, or follows an office question. "how many MPs are there in parliament" is not.
SURE_OF_OFFICE_QUESTION = 0.7


def answer_if_about_our_offices(dispatcher, tracker: Tracker, tenant: Tenant, phrases: Phrasebook,
                                topic: str) -> List[EventType]:
    """Answer an hours or address question, unless it is about somebody else's place (the
    out-of-scope answer) or the model was unsure and nothing shows it is about ours (a rephrase)."""
    if _asks_about_another_place(tracker, tenant):
        return missed(dispatcher, tracker, tenant, phrases, out_of_scope=True)
    named = _asked_now(tracker, tenant)
    confidence = (tracker.latest_message.get("intent") or {}).get("confidence") or 0.0
    follows_office_question = (tracker.get_slot("asked") or {}).get("topic") in OFFICE_TOPICS
    if confidence < SURE_OF_OFFICE_QUESTION and not follows_office_question:
        hours_day = topic == "opening_hours" and (named["date"] or named["time"])
        text = tracker.latest_message.get("text") or ""
        if not (named["office"] or hours_day or addresses_the_line(text, tenant.language)):
            return missed(dispatcher, tracker, tenant, phrases, out_of_scope=False)
    question = _office_question(tracker, tenant, topic, named, follow_up=False)
    return answer_office_question(dispatcher, tracker, tenant, phrases, question)


def _asks_about_another_place(tracker: Tracker, tenant: Tenant) -> bool:
    """Whether the turn asks about somebody else's place ("the bank's opening hours", "an
    appointment with my GP") rather than the line's: then the line has no answer."""
    place = other_place(tenant, tracker.latest_message.get("text") or "", _now(tracker))
    if place:
        logger.info("asked about another place: %r", place)
    return bool(place)


def about_our_office(dispatcher, tracker: Tracker, tenant: Tenant, phrases: Phrasebook) -> Optional[List[EventType]]:
    """A turn the NLU found off-topic or was unsure of, whose next best intent is a question about
    an office, and that names one of the line's offices or asks the line itself about a day ("is
    the library open on the twenty fourth of december", "haben Sie am zweiten Weihnachtsfeiertag
    auf"), is that question: the model learns shops' and banks' hours as off-topic, and must not
    take ours along. A day or time named makes it an hours question. None for any other turn."""
    if (tracker.latest_message.get("intent") or {}).get("name") not in ("out_of_scope", "nlu_fallback"):
        return None
    ranking = [r.get("name") for r in tracker.latest_message.get("intent_ranking") or []]
    # The best guess that is a request: "hello good afternoon where is the library" is a greeting
    # and a question, and the greeting does not compete with it.
    topic = next((name for name in ranking if name not in ("out_of_scope", "nlu_fallback", *SMALL_TALK)), None)
    if topic not in OFFICE_TOPICS:
        return None
    text = tracker.latest_message.get("text") or ""
    named = _asked_now(tracker, tenant)
    when_named = named["date"] or named["time"]
    if not (named["office"] or (when_named and addresses_the_line(text, tenant.language))):
        return None
    topic = "opening_hours" if when_named else topic
    question = _office_question(tracker, tenant, topic, named, follow_up=False)
    return answer_office_question(dispatcher, tracker, tenant, phrases, question)


class ActionOpeningHours(LineAction):
    def name(self) -> Text:
        return "action_opening_hours"

    def respond(self, dispatcher, tracker, tenant, phrases):
        return answer_if_about_our_offices(dispatcher, tracker, tenant, phrases, "opening_hours")


class ActionOfficeLocation(LineAction):
    def name(self) -> Text:
        return "action_office_location"

    def respond(self, dispatcher, tracker, tenant, phrases):
        return answer_if_about_our_offices(dispatcher, tracker, tenant, phrases, "office_location")


class ActionHandoff(LineAction):
    def name(self) -> Text:
        return "action_handoff"

    def respond(self, dispatcher, tracker, tenant, phrases):  # the caller asked for a person
        return hand_off(dispatcher, tracker, tenant, phrases, "requested")


class ActionNotUnderstood(LineAction):
    """One rephrase request; the second miss in a conversation goes to a person. A turn that says
    nothing ("erm yeah so") is a miss too."""

    def name(self) -> Text:
        return "action_not_understood"

    def respond(self, dispatcher, tracker, tenant, phrases):
        answer = (follow_up(dispatcher, tracker, tenant, phrases)  # "what about tomorrow?"
                  or about_our_office(dispatcher, tracker, tenant, phrases))
        if answer is not None:
            return answer
        out_of_scope = tracker.get_intent_of_latest_message() == "out_of_scope"
        return missed(dispatcher, tracker, tenant, phrases, out_of_scope)


def missed(dispatcher, tracker: Tracker, tenant: Tenant, phrases: Phrasebook, out_of_scope: bool) -> List[EventType]:
    """A turn the line cannot answer: the out-of-scope answer or a rephrase request; the second
    miss in a conversation goes to a person."""
    misses = int(tracker.get_slot("misses") or 0) + 1
    events: List[EventType] = [SlotSet("misses", float(misses))]
    if misses >= MAX_MISSES:
        return events + hand_off(dispatcher, tracker, tenant, phrases, "misunderstood")
    dispatcher.utter_message(text=phrases.say("out_of_scope" if out_of_scope else "rephrase"))
    return events + [SlotSet("awaiting", None)]


class ActionAskCallbackNumber(LineAction):
    def name(self) -> Text:
        return "action_ask_callback_number"

    def respond(self, dispatcher, tracker, tenant, phrases):
        attempts = int(tracker.get_slot("callback_attempts") or 0)
        dispatcher.utter_message(text=phrases.say("callback_bad_number" if attempts else "callback_ask_number"))
        return []


class ActionAskCallerIdOk(LineAction):
    def name(self) -> Text:
        return "action_ask_caller_id_ok"

    def respond(self, dispatcher, tracker, tenant, phrases):
        last_digits = " ".join(str(tracker.get_slot("caller_id"))[-4:])
        dispatcher.utter_message(text=phrases.say("callback_confirm_caller", last_digits=last_digits))
        return []


class ValidateCallbackForm(FormValidationAction):
    """The callback number: the caller's own (caller ID) once they say yes to it, else the one
    they say."""

    def name(self) -> Text:
        return "validate_callback_form"

    async def required_slots(self, domain_slots: List[Text], dispatcher, tracker: Tracker, domain) -> List[Text]:
        if tracker.get_slot("caller_id"):
            return domain_slots
        return [slot for slot in domain_slots if slot != "caller_id_ok"]

    def validate_caller_id_ok(self, value: Any, dispatcher, tracker: Tracker, domain) -> Dict[Text, Any]:
        """Yes uses caller ID; no, or a second unclear answer, asks for a number; a number said
        with the answer ("no, call me on ...") is taken."""
        said = phone_number(str(value), _tenant(tracker).language)
        if said:
            return {"caller_id_ok": "no", "callback_number": said}
        intent = tracker.get_intent_of_latest_message()
        if intent == "affirm":
            return {"caller_id_ok": "yes", "callback_number": tracker.get_slot("caller_id")}
        attempts = int(tracker.get_slot("callback_attempts") or 0) + 1
        if intent == "deny" or attempts >= MAX_NUMBER_ATTEMPTS:
            return {"caller_id_ok": "no", "callback_attempts": 0.0}
        return {"caller_id_ok": None, "callback_attempts": float(attempts)}

    def validate_callback_number(self, value: Any, dispatcher, tracker: Tracker, domain) -> Dict[Text, Any]:
        if value == NO_NUMBER:
            return {"callback_number": value}
        number = phone_number(str(value), _tenant(tracker).language)
        if number:
            return {"callback_number": number}
        attempts = int(tracker.get_slot("callback_attempts") or 0) + 1
        if attempts >= MAX_NUMBER_ATTEMPTS:
            return {"callback_number": NO_NUMBER, "callback_attempts": float(attempts)}
        return {"callback_number": None, "callback_attempts": float(attempts)}


class ActionCallback(LineAction):
    """Records a callback for the number the form collected (or caller ID the caller said yes to)."""

    def name(self) -> Text:
        return "action_callback"

    def respond(self, dispatcher, tracker, tenant, phrases):
        number = tracker.get_slot("callback_number")
        reset = [SlotSet("callback_attempts", 0.0)]
        if not number or number == NO_NUMBER:
            return reset + [SlotSet("callback_number", None)] + hand_off(
                dispatcher, tracker, tenant, phrases, "callback_failed")
        topics = [t for t in _topics(tracker) if t != "callback_request"]
        try:
            callback_store().add_callback(tenant.id, tracker.sender_id, number, topics[-1] if topics else "",
                                 _now(tracker))
        except Exception:
            logger.exception("could not store the callback for conversation %s", tracker.sender_id)
            return reset + hand_off(dispatcher, tracker, tenant, phrases, "technical_fault")
        dispatcher.utter_message(json_message=payloads.callback_recorded(topics[-1] if topics else ""))
        spoken_digits = " ".join(number[-4:])
        return reset + answered(dispatcher, phrases, phrases.say(
            "callback_recorded", last_digits=spoken_digits, promise=tenant.callback_promise))
