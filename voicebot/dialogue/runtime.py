"""Drives conversations: one Rasa per language (in this process, or a Rasa server that several
workers share), a conversation per call or chat.

A turn always ends in something to say. If the NLU or the action server fails, the caller is
told and handed to a person (reason technical_fault): Rasa itself would just go silent.
"""

import asyncio
import copy
import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Union

from voicebot.config import ConfigError, Installation, Tenant
from voicebot.dialogue import payloads
from voicebot.dialogue.backends import LocalRasa, RemoteRasa
from voicebot.dialogue.priority import CallsFirst
from voicebot.dialogue.training import is_stale, model_path
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.memory import freeze_long_lived

logger = logging.getLogger(__name__)

# Longer input is cut: no caller says this much in one breath, and it bounds parse time.
MAX_UTTERANCE_CHARS = 1000
# Words that join two questions in one turn, and how sure the NLU must be of each half alone.
REQUEST_JOINERS = {"en": ("and",), "da": ("og",), "de": ("und",), "nb": ("og",), "sv": ("och",), "ko": ()}
SPLIT_CONFIDENCE = 0.6
MAX_JOINS_TRIED = 3  # each costs two parses


@dataclass
class BotReply:
    texts: List[str]
    handoff: Optional[dict] = None
    hangup: Optional[dict] = None
    callback: Optional[dict] = None  # a callback request was stored in this turn
    municipality: Optional[str] = None  # on a shared line: the one the caller means (its id)
    municipality_named: bool = False  # ... named in this turn
    intent: Optional[str] = None
    confidence: Optional[float] = None
    entities: List[dict] = field(default_factory=list)
    sent: List[str] = field(default_factory=list)  # the messages Rasa was sent for it, in order

    @property
    def ends_conversation(self) -> bool:
        return bool(self.handoff or self.hangup)

    def as_event(self) -> dict:
        """The reply as a call record's "bot" event."""
        return {"intent": self.intent, "confidence": self.confidence, "entities": self.entities, "texts": self.texts,
                "handoff": self.handoff, "hangup": self.hangup, "callback": self.callback,
                **({"municipality": self.municipality, "municipality_named": self.municipality_named}
                   if self.municipality else {})}

    def as_dict(self) -> dict:
        return {"messages": self.texts, "handoff": self.handoff, "hangup": self.hangup, "callback": self.callback,
                "intent": self.intent, "confidence": self.confidence, "entities": self.entities,
                "municipality": self.municipality}


def clean_utterance(text: str) -> str:
    """Plain caller text: a leading "/" would make Rasa read it as an intent command."""
    text = " ".join(str(text or "").split())[:MAX_UTTERANCE_CHARS]
    return text.lstrip("/").strip()


class Dialogue:
    """`servers` maps a language to the URL of the Rasa server that runs it; the other languages'
    models are loaded into this process. `actions_up` says whether the action server answers
    (ours, restarted by a watchdog when it dies): a turn waits for it rather than fail at once."""

    def __init__(self, inst: Installation, action_server_url: str, languages: Optional[Iterable[str]] = None,
                 servers: Optional[Dict[str, str]] = None, actions_up: Callable[[], bool] = lambda: True):
        self.inst = inst
        self.action_server_url = action_server_url
        self.actions_up = actions_up
        self.languages = sorted(set(languages or inst.languages))
        self.servers = {lang: url for lang, url in {**inst.settings.rasa_servers, **(servers or {})}.items()
                        if lang in self.languages}
        self.agents: Dict[str, Union[LocalRasa, RemoteRasa]] = {}
        self.calls_first = CallsFirst(inst.settings.text.wait_for_calls_s)

    @property
    def local_languages(self) -> list:
        """Languages whose model this process loads (the rest have Rasa servers)."""
        return [lang for lang in self.languages if lang not in self.servers]

    def load(self) -> "Dialogue":
        for lang, url in self.servers.items():
            self.agents[lang] = RemoteRasa(url, os.environ.get("VOICEBOT_RASA_TOKEN"))
        for lang in self.local_languages:
            path = model_path(self.inst, lang)
            if not path.exists():
                raise ConfigError(f"no trained model for {lang!r} at {path}: run 'voicebot train'")
            if is_stale(self.inst, lang):
                logger.warning("the %s model is older than its training data: run 'voicebot train'", lang)
            self.reload(lang)
        return self

    def reload(self, lang: str) -> None:
        """Load the language's model from disk; conversations going on keep their trackers."""
        from voicebot.dialogue.action_server import endpoint
        from voicebot.dialogue.quick_load import load_agent

        previous = self.agents.get(lang)
        trackers = previous and getattr(previous.agent.tracker_store, "_tracker_store", previous.agent.tracker_store)
        self.agents[lang] = LocalRasa(load_agent(str(model_path(self.inst, lang)),
                                                 action_endpoint=endpoint(self.action_server_url),
                                                 tracker_store=trackers))

    def with_model(self, lang: str, rasa: LocalRasa) -> "Dialogue":
        """This dialogue with another model for one language: a new one a trainer tries before
        it goes live (its conversations are its own)."""
        other = copy.copy(self)
        other.agents = {**self.agents, lang: rasa}
        return other

    async def load_new_model(self, lang: str) -> None:
        """After retraining: the language's new model replaces the old, here or on its Rasa server."""
        rasa = self.agents[lang]
        if isinstance(rasa, RemoteRasa):
            await rasa.replace_model(model_path(self.inst, lang))
        else:
            await asyncio.get_running_loop().run_in_executor(None, self.reload, lang)
            freeze_long_lived()

    async def parse(self, lang: str, text: str) -> dict:
        text = clean_utterance(text)
        if not text:
            return {"text": "", "intent": {"name": None, "confidence": 0.0}, "entities": []}
        return await self.agents[lang].parse(text)

    async def handle(self, tenant: Tenant, conversation_id: str, text: str,
                     caller: Optional[str] = None, intent: Optional[str] = None,
                     queue_refusal: Optional[str] = None, at: Optional[dt.datetime] = None) -> BotReply:
        """The bot's reply to what the caller said, or to a chosen intent (a keypad choice).
        `queue_refusal` says why the line's queue would not take a caller now ('no_agents',
        'full'): a handoff then becomes a callback offer. `at` is the turn's instant for an action
        server that honours one (benchmarks). Two questions in one turn get both answers."""
        text = clean_utterance(text)
        metadata = {"tenant": tenant.id, "caller": caller, "queue_refusal": queue_refusal}
        if at:
            metadata["clock"] = at.isoformat()
        requests = [text] if intent else await self._requests(tenant.language, text)
        replies = []
        for request in requests:
            replies.append(await self._turn(tenant, conversation_id, request, intent, metadata))
            if replies[-1].ends_conversation:
                break
        return self._joined(tenant, replies)

    async def _turn(self, tenant: Tenant, conversation_id: str, text: str, intent: Optional[str],
                    metadata: dict) -> BotReply:
        rasa = self.agents[tenant.language]
        # Silence or an empty message counts as not understood, like any other miss.
        message_text = f"/{intent}" if intent else text or "/nlu_fallback"
        timeout_s = self.inst.settings.action_server.timeout_s
        try:
            messages = await asyncio.wait_for(self._send(rasa, conversation_id, message_text, metadata), timeout_s)
        except asyncio.TimeoutError:
            logger.error("no reply within %.0f s on conversation %s (action_server.timeout_s)",
                         timeout_s, conversation_id)
            messages = []
        except Exception:
            logger.exception("the dialogue failed on conversation %s", conversation_id)
            messages = []
        reply = self._reply(messages)
        await self._understood(rasa, conversation_id, reply)
        if not reply.texts and not reply.ends_conversation:
            reply = self.technical_fault(tenant, text, self._unanswered(tenant))
        reply.sent = [message_text]
        return reply

    async def _requests(self, lang: str, text: str) -> List[str]:
        """The turn as one request, or as two when it joins two different routine questions with
        "and" ("is the library open tomorrow and how do I renew my passport"), both halves
        understood with confidence on their own."""
        words = text.split()
        joins = [i for i, word in enumerate(words) if word.lower() in REQUEST_JOINERS.get(lang, ())]
        for i in joins[:MAX_JOINS_TRIED]:
            first, second = " ".join(words[:i]), " ".join(words[i + 1:])
            if len(first.split()) < 3 or len(second.split()) < 3:
                continue
            try:
                found = [(await self.parse(lang, half))["intent"] for half in (first, second)]
            except Exception:  # the turn goes on whole; its own failure is told to the caller
                logger.exception("could not parse the halves of a turn")
                return [text]
            if (all(f["name"] in self.inst.routine_intents and (f["confidence"] or 0) >= SPLIT_CONFIDENCE for f in found)
                    and found[0]["name"] != found[1]["name"]):
                return [first, second]
        return [text]

    @staticmethod
    def _joined(tenant: Tenant, replies: List[BotReply]) -> BotReply:
        """One reply from the answers to a turn's requests: "anything else?" only once, at the end."""
        if len(replies) == 1:
            return replies[0]
        anything_else = phrasebook(tenant.language).say("anything_else")
        texts = [t for reply in replies[:-1] for t in reply.texts if t != anything_else] + replies[-1].texts
        last = replies[-1]
        return BotReply(texts=texts, handoff=last.handoff, hangup=last.hangup,
                        callback=next((r.callback for r in replies if r.callback), None),
                        municipality=next((r.municipality for r in reversed(replies) if r.municipality), None),
                        intent=replies[0].intent, confidence=replies[0].confidence,
                        entities=[e for reply in replies for e in reply.entities],
                        sent=[m for reply in replies for m in reply.sent])

    async def _send(self, rasa, conversation_id: str, message_text: str, metadata: dict) -> List[dict]:
        # Rasa would run the turn without its actions (it logs the failure and goes on) and the
        # conversation would lose them; a restart takes a few seconds, within the turn's timeout.
        while not self.actions_up():
            await asyncio.sleep(0.05)
        return await rasa.send(conversation_id, message_text, metadata)

    async def take_back(self, tenant: Tenant, conversation_id: str, reply: BotReply) -> None:
        """The conversation as before the turn that made `reply` (answered early; the caller went
        on): Rasa rewinds its messages, slots the actions set with them. A failure leaves the turn
        in the conversation, which then reads as the caller having said more."""
        try:
            await self.agents[tenant.language].take_back(conversation_id, reply.sent)
        except Exception:
            logger.exception("could not take back a turn of conversation %s", conversation_id)

    def forget(self, tenant: Tenant, conversation_id: str) -> None:
        """A finished call's conversation is no longer needed."""
        self.agents[tenant.language].forget(conversation_id)

    async def _understood(self, rasa, conversation_id: str, reply: BotReply) -> None:
        """What Rasa took the caller's words for: the intent, its confidence, the entities."""
        try:
            latest = await asyncio.wait_for(rasa.latest_message(conversation_id),
                                            self.inst.settings.action_server.timeout_s)
        except Exception:  # the reply stands; only the record lacks the intent
            logger.exception("could not read what conversation %s was understood as", conversation_id)
            return
        if latest.get("intent"):
            reply.intent = latest["intent"].get("name")
            reply.confidence = latest["intent"].get("confidence")
            reply.entities = [{k: e.get(k) for k in ("entity", "value", "start", "end")}
                              for e in latest.get("entities") or []]

    @staticmethod
    def _reply(messages: List[dict]) -> BotReply:
        reply = BotReply(texts=[])
        for message in messages:
            if message.get("text"):
                reply.texts.append(message["text"])
            decision = (message.get("custom") or {}).get("voicebot") or {}
            if decision.get("action") == "handoff":
                reply.handoff = decision
            elif decision.get("action") == "hangup":
                reply.hangup = decision
            elif decision.get("action") == "callback":
                reply.callback = decision
            elif decision.get("action") == "municipality":
                reply.municipality, reply.municipality_named = decision["id"], bool(decision.get("named_now"))
        return reply

    def _unanswered(self, tenant: Tenant) -> str:
        return (f"no answer from the dialogue for line {tenant.id}: is the action server at {self.action_server_url} up"
                + (f", and the Rasa server at {self.servers[tenant.language]}" if tenant.language in self.servers else "")
                + "?")

    def technical_fault(self, tenant: Tenant, text: str, why: str) -> BotReply:
        """Something broke: the caller is told so and handed to a person (reason technical_fault)."""
        logger.error("%s", why)
        decision = payloads.handoff("technical_fault", tenant.handoff.queue, [], text)["voicebot"]
        return BotReply(texts=[phrasebook(tenant.language).say("handoff_technical")], handoff=decision)
