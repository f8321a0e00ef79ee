"""HTTP text channel: the same dialogue as the phone line, as JSON, for trainers and tests.

POST /lines/<line>/conversations                      -> {conversation_id, messages: [greeting]}
POST /lines/<line>/conversations/<id>/messages {text} -> {messages, handoff, hangup, intent, ...}
GET  /lines, GET /health, GET /calls, GET /calls/<sip call id>
GET  /queues (agents, callers waiting, per-queue figures); POST /agents/<id>/state {"state": "available"|"paused"}
GET  /lines/<line>/callbacks (open callback requests, oldest first)
"""

import collections
import time
import uuid

from sanic import Sanic, response
from sanic.exceptions import SanicException

from voicebot.clock import ms
from voicebot.config import ConfigError, Installation
from voicebot.dashboard.pages import dashboard, off_loop
from voicebot.dialogue.runtime import MAX_UTTERANCE_CHARS, Dialogue
from voicebot.store import CallRecord, RecordStore

# Text conversations have no hang-up: one quiet this long, or the least recently active beyond
# this many, is over (its record ended, so it counts in the figures).
IDLE_CONVERSATION_S = 30 * 60
OPEN_CONVERSATIONS = 1000
# A request body larger than this is refused (413) before it is read: a text turn needs a few
# kB, a dashboard form less. (Sanic's default, 100 MB, let one request hold the loop that also
# carries every call: a 4 MB text turn took 29 s of redaction.)
MAX_REQUEST_BYTES = 64 * 1024
MAX_CALLER_CHARS = 32


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
    app.blueprint(dashboard(inst, dialogue, records, phone_line, inst.settings.dashboard.session_minutes))
    conversations: "collections.OrderedDict[str, CallRecord]" = collections.OrderedDict()

    def conversation(tenant, conversation_id: str, caller=None) -> CallRecord:
        record = conversations.get(conversation_id)
        if record is None:
            record = conversations[conversation_id] = records.record(conversation_id, tenant.id, tenant.language,
                                                                     caller, channel="text")
            record.state = "talking"
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
        return response.json({"error": str(error)}, status=getattr(error, "status_code", 500))

    @app.get("/health")
    async def health(request):
        return response.json({"status": "ok", "languages": sorted(dialogue.agents)})

    @app.get("/lines")
    async def lines(request):
        return response.json([{"id": t.id, "name": t.name, "language": t.language, "numbers": t.numbers}
                              for t in inst.tenants.values()])

    @app.post("/lines/<line_id>/conversations")
    async def start(request, line_id: str):
        tenant = line(line_id)
        conversation_id = uuid.uuid4().hex
        conversation(tenant, conversation_id).add("answered")
        return response.json({"conversation_id": conversation_id, "messages": [tenant.greeting]}, status=201)

    @app.post("/lines/<line_id>/conversations/<conversation_id>/messages")
    async def message(request, line_id: str, conversation_id: str):
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
        # Cut before anything reads it: the dialogue never sees more, so neither does redaction.
        text = body["text"][:MAX_UTTERANCE_CHARS]
        record = conversation(tenant, conversation_id, caller)
        record.add("heard", text=text, source="text")
        started = time.monotonic()
        reply = await dialogue.handle(tenant, conversation_id, text, caller=caller)
        record.add("bot", **reply.as_event(), dialogue_ms=ms(time.monotonic() - started))
        if reply.ends_conversation:
            record.state = "ended"
            conversations.pop(conversation_id, None)
            record.end()
        return response.json(reply.as_dict())

    @app.get("/metrics")
    async def metrics(request):
        """Prometheus exposition."""
        if records.metrics is None:
            raise SanicException("no metrics in this process", status_code=404)
        return response.raw(records.metrics.exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/calls")
    async def calls(request):
        """Live and recent phone calls with their timelines (newest last)."""
        return response.json([r.as_dict() for r in phone_line.records()] if phone_line else [])

    @app.get("/calls/<call_id>")
    async def call(request, call_id: str):
        for record in phone_line.records() if phone_line else []:
            if record.call_id == call_id:
                return response.json(record.as_dict())
        raise SanicException(f"no call {call_id!r}", status_code=404)

    @app.get("/lines/<line_id>/callbacks")
    async def callbacks(request, line_id: str):
        """Callback requests for agents to work through, oldest first."""
        tenant = line(line_id)
        return response.json([{"id": c.id, "number": c.number, "topic": c.topic, "conversation_id": c.conversation_id,
                               "requested_at": c.requested_at.isoformat()}
                              for c in await off_loop(records.open_callbacks, tenant.id)])

    @app.get("/queues")
    async def queues(request):
        """Agents and their states, callers waiting, and each queue's figures since start-up."""
        if phone_line is None:
            raise SanicException("no phone line in this process", status_code=404)
        return response.json(phone_line.queues.snapshot())

    @app.post("/agents/<agent_id>/state")
    async def agent_state(request, agent_id: str):
        """An agent (or a supervisor) pauses or resumes, e.g. after being paused for not answering."""
        if phone_line is None or agent_id not in phone_line.queues.agents:
            raise SanicException(f"no agent {agent_id!r}", status_code=404)
        body = request.json if request.body else None
        if not isinstance(body, dict) or body.get("state") not in ("available", "paused"):
            raise SanicException('send JSON like {"state": "available"} or {"state": "paused"}', status_code=400)
        agent = phone_line.queues.set_available(agent_id, body["state"] == "available")
        return response.json(agent.as_dict(phone_line.queues.clock()))

    return app
