"""A call's record: its timeline in memory (live calls, GET /calls) and, event by event, rows
in the store. Everything is redacted as it is added, so no identifier reaches memory dumps,
the database or the dashboard."""

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

from voicebot.intents import BUILT_IN_INTENTS, OFFICE_INTENTS
from voicebot.knowledge.when import corrects
from voicebot.privacy import ends_in_number, redact_across, redact_value
from voicebot.store.models import Call, CallEvent, Turn
from voicebot.store.writer import Write
from voicebot.timeline import STORED_EVENTS, Kind

if TYPE_CHECKING:
    from voicebot.metrics import Metrics

logger = logging.getLogger(__name__)

# Intents that say nothing about why someone called: never a call's topic.
NOT_TOPICS = {"greet", "goodbye", "thank", "affirm", "deny", "nlu_fallback", "out_of_scope"}
# Why a caller's turn goes to the trainers' inbox. The others catch confident mistakes: an
# answer the caller meets at once with a request for a person, the same question again, a "no"
# that corrects it or is said over it, or by hanging up before its words were out.
REVIEW_REASONS = {"not_understood": "not understood", "unsure": "understood with little confidence",
                  "asked_for_a_person": "answered, and the caller asked for a person at once",
                  "asked_again": "answered, and the caller asked the same again at once",
                  "said_no": "answered, and the caller said no to it at once",
                  "hung_up": "answered, and the caller hung up while the answer was being said"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class CallRecord:
    """What happened on a call or text conversation, in order."""

    call_id: str
    tenant: str
    caller: Optional[str] = None
    channel: str = "phone"
    language: str = ""
    started: float = field(default_factory=time.time)
    state: str = "ringing"
    events: List[dict] = field(default_factory=list)
    journal: Optional["Journal"] = None
    metrics: Optional["Metrics"] = None
    # The caller's last words, which the next turn may go on with ("mit cpr nummer er 010190", "1234"),
    # and, if it ended in a number, not logged yet.
    last_heard: Optional[dict] = field(default=None, repr=False)
    unlogged: Optional[dict] = field(default=None, repr=False)

    def add(self, kind: Kind, **data) -> None:
        kind = Kind(kind)
        event = {"t": round(time.time() - self.started, 3), "event": kind.value, **redact_value(data)}
        if kind == Kind.HEARD and event.get("text"):
            self._heard(event)
        elif kind == Kind.BOT:  # with --verbose: the conversation, already redacted
            logger.info("%s %s bot: %s %s", self.tenant, self.call_id[:12], event.get("intent"), event.get("texts"))
        self.events.append(event)
        if self.journal:
            self.journal.add(event)
        if self.metrics:
            self.metrics.observe(self, event)

    def _heard(self, event: dict) -> None:
        """An identifier said over two turns is redacted in both, the earlier one where it is kept:
        this timeline and its turn row (see Journal.reword). A turn that ends in a number is logged
        when the next one has shown whether that number was part of one."""
        previous, self.last_heard = self.last_heard, event
        joined = previous and redact_across(previous["text"], event["text"])
        if joined:
            previous["text"], event["text"] = joined
            if self.journal:
                self.journal.reword(previous)
        self._log_unlogged()
        if ends_in_number(event["text"]):
            self.unlogged = event
        else:
            self._log_heard(event)

    def _log_unlogged(self) -> None:
        if self.unlogged:
            self._log_heard(self.unlogged)
            self.unlogged = None

    def _log_heard(self, event: dict) -> None:
        logger.info("%s %s heard: %s", self.tenant, self.call_id[:12], event["text"])

    @property
    def last_active(self) -> float:
        return self.started + (self.events[-1]["t"] if self.events else 0)

    def end(self) -> None:
        self._log_unlogged()
        if self.journal and not self.journal.ended:
            outcome = self.journal.end()
            if self.metrics:
                self.metrics.ended_call(self, outcome)

    def forget_caller(self) -> None:
        """The call is over: from now on its number is known as the store keeps it."""
        self.caller = _masked(self.caller)

    def as_dict(self, whole_caller: bool = True) -> dict:
        """`whole_caller` False: the caller's number as the store keeps it, its last four digits."""
        return {"call_id": self.call_id, "tenant": self.tenant, "channel": self.channel,
                "caller": self.caller if whole_caller else _masked(self.caller), "started": self.started,
                "state": self.state, "events": self.events}


class Journal:
    """Turns a record's events into store writes: a turn per bot reply (with what the caller
    said or pressed before it), the call's outcome fields, and the other events as rows."""

    def __init__(self, record: CallRecord, submit: Callable[[Write], None], review_below: float,
                 worker: Optional[str] = None):
        self.record, self.submit, self.review_below = record, submit, review_below
        self.heard: Optional[dict] = None
        self.heard_event: Optional[dict] = None  # the record's event self.heard was taken from
        self.stored_heard: Optional[Tuple[dict, int]] = None  # the last such event in a turn row, its seq
        self.seq = 0
        self.answered: Optional[Tuple[int, str]] = None  # the last turn the bot answered sure of itself: seq, intent
        self.talked_over = False  # the caller spoke over the last reply's own words (phone)
        self.fields: dict = {}
        self.errors = self.silences = 0
        self.called_back = False
        self.ended = False
        self.submit(Write(Call.__tablename__, dict(
            id=record.call_id, channel=record.channel, tenant=record.tenant, caller_ending=_ending(record.caller),
            started_at=_at(record.started, 0), turns=0, worker=worker)))

    def add(self, event: dict) -> None:
        kind = Kind(event["event"])
        more = {}  # stored with the event
        if kind == Kind.HEARD and event.get("text"):
            self.heard, self.heard_event = {
                "source": event.get("source", "speech"), "text": event["text"],
                "end_of_speech_ms": event.get("end_of_speech_ms"), "asr_ms": event.get("asr_ms")}, event
        elif kind == Kind.DTMF:
            self.heard, self.heard_event = {"source": "keypad", "text": event["digit"]}, None
        elif kind == Kind.BOT:
            self._turn(event)
        elif kind == Kind.PLAYING and event.get("turn_ms") is not None and self.seq:
            self._update(Turn, {"turn_ms": event["turn_ms"]}, seq=self.seq)
        elif kind == Kind.BARGE_IN and event.get("during") == "answer":
            self.talked_over = True
        elif kind == Kind.TAKEN_BACK:  # the caller's fuller words follow: not a doubt on that answer
            self.answered = None
            more = {"turn": self.seq}  # the turn row of the answer taken back (the call page marks it)
        elif kind == Kind.HANGUP and event.get("during") == "answer":  # see Speaker.cut_off
            self._doubt("hung_up")
        if kind in STORED_EVENTS:
            self._event(event, **more)
        self._follow_outcome(event)

    def reword(self, event: dict) -> None:
        """A heard event's text was redacted once more after it was added (an identifier it began
        ended in the next turn). Its turn row was submitted when the bot replied, before that next
        turn, so the row is updated: one writer thread applies writes in the order submitted (and
        spools them in that order), so the update always follows the insert. Holding turns back
        instead would delay every turn that ends in a number, and the updates (turn_ms) that follow it."""
        if event is self.heard_event:
            self.heard["text"] = event["text"]  # the bot has not replied yet: written redacted
        elif self.stored_heard and event is self.stored_heard[0]:
            self._update(Turn, {"text": event["text"]}, seq=self.stored_heard[1])

    def end(self) -> str:
        self.ended = True
        self.fields.update(ended_at=utcnow(), outcome=self._outcome())
        self._update(Call, dict(self.fields))
        return self.fields["outcome"]

    # -- writes
    def _turn(self, event: dict) -> None:
        heard, self.heard = self.heard or {"source": "text" if self.record.channel == "text" else "speech"}, None
        self.seq += 1
        if self.heard_event:
            self.stored_heard, self.heard_event = (self.heard_event, self.seq), None
        intent, confidence = event.get("intent"), event.get("confidence")
        spoken = heard["source"] != "keypad" and heard.get("text")
        # A turn that only names the caller's municipality (on a shared line) was understood.
        unsure = not event.get("municipality_named") and (
            intent == "nlu_fallback" or (confidence is not None and confidence < self.review_below))
        reason = ("not_understood" if intent == "nlu_fallback" else "unsure") if spoken and unsure else None
        self._doubt_the_last_answer(intent if spoken else None, heard.get("text") or "")
        self.talked_over = False
        self.answered = (self.seq, intent) if (spoken and not unsure and not event.get("handoff")
                                               and intent not in NOT_TOPICS | {"request_agent"}) else None
        self.submit(Write(Turn.__tablename__, dict(
            call_id=self.record.call_id, seq=self.seq, at=_at(self.record.started, event["t"]),
            tenant=self.record.tenant, language=self.record.language, source=heard["source"],
            text=heard.get("text"), intent=intent, confidence=confidence,
            entities=event.get("entities") or None, replies=event.get("texts") or None,
            end_of_speech_ms=heard.get("end_of_speech_ms"), asr_ms=heard.get("asr_ms"),
            dialogue_ms=event.get("dialogue_ms"), review="pending" if reason else None, review_reason=reason)))
        self.fields["turns"] = self.seq
        if intent and not (event.get("municipality_named") and intent in NOT_TOPICS):
            if intent not in NOT_TOPICS:
                self.fields.setdefault("topic", intent)
            self.fields["last_intent"] = intent
        if event.get("municipality"):  # the latest one the caller named, on a shared line
            self.fields["municipality"] = event["municipality"]
        if event.get("handoff"):
            self.fields.update(handoff_reason=event["handoff"].get("reason"), queue=event["handoff"].get("queue"))
            self._event({"t": event["t"], "event": "handoff", **event["handoff"]})
        self._update(Call, dict(self.fields))

    def _doubt_the_last_answer(self, intent: Optional[str], text: str) -> None:
        """A confident answer the caller meets at once with a request for a person, the same
        question again or a "no" to it was likely wrong: its turn goes to the inbox too. Every
        answer ends asking "anything else?", so a plain "no" after it is a content caller; a "no"
        doubts the answer only when it corrects the question ("no, I meant Sunday") or was said
        over the answer."""
        if self.answered is None or intent is None:
            return
        answered = self.answered[1]
        said_no = (intent == "deny" and (answered in OFFICE_INTENTS or answered not in BUILT_IN_INTENTS)
                   and (self.talked_over or corrects(text, self.record.language)))
        self._doubt("asked_for_a_person" if intent == "request_agent" else "asked_again" if intent == answered
                    else "said_no" if said_no else None)

    def _doubt(self, reason: Optional[str]) -> None:
        if reason and self.answered is not None:
            self._update(Turn, {"review": "pending", "review_reason": reason}, seq=self.answered[0])

    def _event(self, event: dict, **more) -> None:
        data = {**{k: v for k, v in event.items() if k not in ("t", "event")}, **more}
        self.submit(Write(CallEvent.__tablename__, dict(
            call_id=self.record.call_id, at=_at(self.record.started, event["t"]), kind=event["event"],
            data=data or None)))

    def _update(self, table, values: dict, **where) -> None:
        key = "call_id" if table is Turn else "id"
        self.submit(Write(table.__tablename__, values, {key: self.record.call_id, **where}))

    # -- the outcome
    def _follow_outcome(self, event: dict) -> None:
        kind = Kind(event["event"])
        result = {Kind.QUEUE_ANSWERED: "answered", Kind.QUEUE_ABANDONED: "abandoned", Kind.QUEUE_REFUSED: "refused",
                  Kind.CALLBACK_REQUESTED: "callback"}.get(kind)
        if kind == Kind.TRANSFER_RESULT:
            result = "transferred" if 200 <= event.get("code", 0) < 300 else "failed"
        if result:
            self.fields["queue_result"] = result
            if event.get("waited_s") is not None:
                self.fields["waited_s"] = event["waited_s"]
            self._update(Call, dict(self.fields))
        self.errors += kind == Kind.ERROR
        self.silences = event.get("count", self.silences) if kind == Kind.SILENCE else self.silences
        self.called_back = self.called_back or result == "callback" or bool(event.get("callback"))

    def _outcome(self) -> str:
        fields = self.fields
        if self.called_back:
            return "callback"
        if fields.get("handoff_reason"):
            return "handoff"
        if self.errors:
            return "error"
        if self.silences >= 3:
            return "silence"
        if not fields.get("turns") or fields.get("last_intent") == "nlu_fallback":
            return "abandoned"
        return "settled"


def _at(started: float, offset: float) -> dt.datetime:
    return dt.datetime.utcfromtimestamp(started + offset)


def _ending(caller: Optional[str]) -> Optional[str]:
    digits = "".join(c for c in caller or "" if c.isdigit())
    return digits[-4:] or None


def _masked(caller: Optional[str]) -> Optional[str]:
    return caller and f"…{_ending(caller) or ''}"
