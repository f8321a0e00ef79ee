"""The JSON API: the text channel (the same dialogue as the phone line) and the live state.

Every route but /health wants "Authorization: Bearer TOKEN", a token made with
`voicebot users token NAME --role ROLE` (admin may do everything):
POST /lines/<line>/conversations                      channel, trainer -> {conversation_id, messages: [greeting]}
POST /lines/<line>/conversations/<id>/messages {text[, caller: channel only]} channel, trainer -> {messages, ...}
POST /lines/<line>/conversations/<id>/end             channel, trainer: the citizen left -> {ended}
GET  /lines                                           any role
GET  /calls, GET /calls/<sip call id>                 operator, agent (the caller's whole number: agent only)
GET  /queues; POST /agents/<id>/state {"state": "available"|"paused", "reason"}   operator, agent
GET  /lines/<line>/callbacks (open callback requests, oldest first)     agent
GET  /metrics                                         operator (Prometheus: authorization credentials_file)
GET  /health                                          no token: says only whether the process answers
"""

import asyncio
import collections
import contextlib
import hashlib
import hmac
import os
import secrets
import time
import uuid

from sanic import Sanic, response
from sanic.exceptions import SanicException, Unauthorized

from voicebot.clock import ms
from voicebot.config import ConfigError, Installation
from voicebot.dashboard.auth import Logins
from voicebot.dashboard.pages import dashboard, off_loop
from voicebot.dialogue.priority import CallsFirst
from voicebot.dialogue.runtime import MAX_UTTERANCE_CHARS, Dialogue
from voicebot.knowledge.working_days import callback_due
from voicebot.queue.model import PAUSED_BY_REQUEST, presence_refusal
from voicebot.store import CallRecord, RecordStore
from voicebot.timeline import Kind

# Text conversations have no hang-up: one quiet this long, or the least recently active beyond
# this many, is over (its record ended, so it counts in the figures).
IDLE_CONVERSATION_S = 30 * 60
OPEN_CONVERSATIONS = 1000
# A request body larger than this is refused (413) before it is read: a text turn needs a few
# kB, a dashboard form less. (Sanic's default, 100 MB, let one request hold the loop that also
# carries every call: a 4 MB text turn took 29 s of redaction.)
MAX_REQUEST_BYTES = 64 * 1024
MAX_CALLER_CHARS = 32
# Signs text conversation ids; workers that share conversations share it (cluster up sets it).
CONVERSATION_KEY_ENV = "VOICEBOT_CONVERSATION_KEY"
EVERY_ROLE = ("operator", "trainer", "agent", "channel")


class Busy(SanicException):
    status_code = 503
    headers = {"Retry-After": "5"}  # sooner, and the turns sent again cost the loop more than they gain


class TextTurns:
    """Text turns let into the dialogue: at most `at_once` at a time (in one process Rasa shares
    the calls' cores and interpreter, so a burst of chats must not line up there ahead of a
    caller's turn), none while a call's turn is being answered (`calls_first`), at most
    `max_waiting` more in line; beyond that a chat is told to send again."""

    def __init__(self, at_once: int, max_waiting: int, calls_first: CallsFirst):
        self.slots = asyncio.Semaphore(at_once)
        self.waiting, self.max_waiting = 0, max_waiting
        self.calls_first = calls_first

    @contextlib.asynccontextmanager
    async def turn(self):
        if self.waiting >= self.max_waiting:
            raise Busy("the bot has too many messages to answer: send this one again in a moment")
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        try:
            await self.calls_first.text_turn_may_start()
            yield
        finally:
            self.slots.release()


def close_quiet(conversations: "collections.OrderedDict[str, CallRecord]", now: float) -> None:
    """End the conversations quiet for IDLE_CONVERSATION_S, and the least recently active ones
    beyond OPEN_CONVERSATIONS (`conversations` is in order of activity, oldest first)."""
    while conversations:
        oldest = next(iter(conversations.values()))
        if len(conversations) <= OPEN_CONVERSATIONS and oldest.last_active > now - IDLE_CONVERSATION_S:
            return
        conversations.popitem(last=False)
        oldest.state = "ended"
        oldest.end()


def create_app(inst: Installation, dialogue: Dialogue, records: RecordStore, name: str = "voicebot_text",
               phone_line=None) -> Sanic:
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = MAX_REQUEST_BYTES
    app.blueprint(dashboard(inst, dialogue, records, phone_line))
    conversations: "collections.OrderedDict[str, CallRecord]" = collections.OrderedDict()
    logins = Logins(records.session)
    text_turns = TextTurns(inst.settings.text.turns_at_once, inst.settings.text.max_waiting, dialogue.calls_first)

    def owner(request, *roles: str) -> str:
        """The role of the request's token, if it is one of `roles` (or admin)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = logins.signed_in(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise Unauthorized('send "Authorization: Bearer TOKEN" (voicebot users token)', scheme="Bearer")
        if user.role not in roles and user.role != "admin":
            raise SanicException(f"a {user.role} token cannot use this", status_code=403)
        return user.role

    key = os.environ.get(CONVERSATION_KEY_ENV, "").encode() or secrets.token_bytes(32)

    def signature(nonce: str, tenant) -> str:
        return hmac.new(key, f"{tenant.id}:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]

    def new_conversation(tenant, conversation_id: str) -> CallRecord:
        record = conversations[conversation_id] = records.record(conversation_id, tenant.id, tenant.language,
                                                                 channel="text")
        record.state = "talking"
        return record

    def issued(tenant, conversation_id: str) -> None:
        """404 unless the text channel issued this id for this line (its signature)."""
        nonce, signed = conversation_id[:32], conversation_id[32:]
        if len(conversation_id) != 64 or not hmac.compare_digest(signed.encode(), signature(nonce, tenant).encode()):
            raise SanicException(f"no conversation {conversation_id[:64]!r} at line {tenant.id}: "
                                 f"start one with POST /lines/{tenant.id}/conversations", status_code=404)

    def open_conversation(tenant, conversation_id: str) -> CallRecord:
        """The text conversation a turn is for. Its id must be one the text channel issued for
        this line (signed), so a turn under any other (a phone call's Call-ID, another line's
        conversation, a guess) goes nowhere; a worker sharing the key takes up one begun on another."""
        issued(tenant, conversation_id)
        record = conversations.get(conversation_id) or new_conversation(tenant, conversation_id)
        conversations.move_to_end(conversation_id)
        close_quiet(conversations, time.time())
        return record

    def line(line_id: str):
        try:
            return inst.tenant(line_id)
        except ConfigError:
            raise SanicException(f"no line {line_id!r}", status_code=404) from None

    @app.exception(SanicException)
    async def as_json(request, error: SanicException):
        return response.json({"error": str(error)}, status=getattr(error, "status_code", 500),
                             headers=getattr(error, "headers", None))

    @app.get("/health")
    async def health(request):
        return response.json({"status": "ok"})

    @app.get("/lines")
    async def lines(request):
        owner(request, *EVERY_ROLE)
        return response.json([{"id": t.id, "name": t.name, "language": t.language, "numbers": t.numbers}
                              for t in inst.tenants.values()])

    @app.post("/lines/<line_id>/conversations")
    async def start(request, line_id: str):
        owner(request, "channel", "trainer")
        tenant = line(line_id)
        nonce = uuid.uuid4().hex
        conversation_id = nonce + signature(nonce, tenant)
        new_conversation(tenant, conversation_id).add(Kind.ANSWERED)
        close_quiet(conversations, time.time())
        return response.json({"conversation_id": conversation_id, "messages": [tenant.greeting]}, status=201)

    @app.post("/lines/<line_id>/conversations/<conversation_id>/messages")
    async def message(request, line_id: str, conversation_id: str):
        role = owner(request, "channel", "trainer")
        tenant = line(line_id)
        try:
            body = request.json
        except Exception:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise SanicException('send JSON like {"text": "..."}', status_code=400)
        caller = body.get("caller")
        if caller is not None and (not isinstance(caller, str) or len(caller) > MAX_CALLER_CHARS):
            raise SanicException(f"caller must be a phone number (at most {MAX_CALLER_CHARS} characters)",
                                 status_code=400)
        if caller is not None and role == "trainer":
            # The number becomes a callback without the bot asking: only a front end that vouches
            # for it (a channel token, say a web chat whose citizens log in) may give it.
            raise SanicException("only a channel front end may give the caller's number; without it the bot "
                                 "asks for one when a callback is wanted", status_code=403)
        # Cut before anything reads it: the dialogue never sees more, so neither does redaction.
        text = body["text"][:MAX_UTTERANCE_CHARS]
        record = open_conversation(tenant, conversation_id)
        async with text_turns.turn():  # a turn refused as busy leaves no trace: it is sent again
            record.add(Kind.HEARD, text=text, source="text")
            started = time.monotonic()
            reply = await dialogue.handle(tenant, conversation_id, text, caller=caller)
            record.add(Kind.BOT, **reply.as_event(), dialogue_ms=ms(time.monotonic() - started))
        if reply.ends_conversation:
            record.state = "ended"
            conversations.pop(conversation_id, None)
            record.end()
        return response.json(reply.as_dict())

    @app.post("/lines/<line_id>/conversations/<conversation_id>/end")
    async def end(request, line_id: str, conversation_id: str):
        """The citizen left (closed the chat, its page unloaded): the conversation ends now, as a
        call the caller hangs up, not after IDLE_CONVERSATION_S."""
        owner(request, "channel", "trainer")
        issued(line(line_id), conversation_id)
        record = conversations.pop(conversation_id, None)
        if record is None:  # ended already (by the bot, or idle), or open on another worker
            return response.json({"ended": False})
        record.add(Kind.HANGUP, by="caller")
        record.state = "ended"
        record.end()
        return response.json({"ended": True})

    @app.get("/metrics")
    async def metrics(request):
        """Prometheus exposition."""
        owner(request, "operator")
        if records.metrics is None:
            raise SanicException("no metrics in this process", status_code=404)
        return response.raw(records.metrics.exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/calls")
    async def calls(request):
        """Live and recent phone calls with their timelines (newest last)."""
        whole = owner(request, "operator", "agent") != "operator"
        return response.json([r.as_dict(whole) for r in phone_line.live.records()] if phone_line else [])

    @app.get("/calls/<call_id>")
    async def call(request, call_id: str):
        whole = owner(request, "operator", "agent") != "operator"
        for record in phone_line.live.records() if phone_line else []:
            if record.call_id == call_id:
                return response.json(record.as_dict(whole))
        raise SanicException(f"no call {call_id!r}", status_code=404)

    @app.get("/lines/<line_id>/callbacks")
    async def callbacks(request, line_id: str):
        """Callback requests for agents to work through, oldest first, with when each is due."""
        owner(request, "agent")
        tenant = line(line_id)
        return response.json([{"id": c.id, "number": c.number, "topic": c.topic, "conversation_id": c.conversation_id,
                               "requested_at": c.requested_at.isoformat(),
                               "due_at": callback_due(tenant, c.requested_at).isoformat(), "attempts": c.attempts,
                               "claimed_by": c.claimed_by}
                              for c in await off_loop(records.open_callbacks, tenant.id)])

    @app.get("/queues")
    async def queues(request):
        """Agents and their states, callers waiting, and each queue's figures since start-up."""
        owner(request, "operator", "agent")
        if phone_line is None:
            raise SanicException("no phone line in this process", status_code=404)
        return response.json(phone_line.queues.snapshot())

    @app.post("/agents/<agent_id>/state")
    async def agent_state(request, agent_id: str):
        """An agent (or a supervisor) pauses, resumes (e.g. after being paused for not answering) or
        logs out for the day."""
        owner(request, "operator", "agent")
        if phone_line is None or agent_id not in phone_line.queues.agents:
            raise SanicException(f"no agent {agent_id!r}", status_code=404)
        body = request.json if request.body else None
        refusal = presence_refusal(body.get("state"), body.get("reason", PAUSED_BY_REQUEST)) \
            if isinstance(body, dict) else "send a JSON object"
        if refusal:
            raise SanicException(f'{refusal}: send JSON like {{"state": "paused", "reason": "break"}}',
                                 status_code=400)
        agent = phone_line.queues.set_presence(agent_id, body["state"], body.get("reason", PAUSED_BY_REQUEST))
        return response.json(agent.as_dict(phone_line.queues.clock()))

    return app
