"""The agent's desk: their own state (available, paused with a reason, a wrap-up ended early,
logged out for the day),
and the screen pop, which arrives by itself (server-sent events) when the queue rings the
agent's phone for a caller and follows the call: ringing, connecting, connected, wrap-up, ended.
Operators change any agent's state from the operations page. And the callbacks, worked to the
line's promise: claimed by one agent at a time, each attempt's outcome and note kept, due by
the line's working days, overdue first, in the line's local time, numbers to click and dial.

A dashboard login acts as the queue agent of the same id (voicebot.yml's `agents`). The pop
is read from the call's own record, as the live list is, so the two agree. Where workers share
the queue, a caller on another worker pops up too: that worker shares its rung calls' records
through the queue (`rung_elsewhere`), and one that is gone from there is over."""

import asyncio
import datetime as dt
import json
import time
import urllib.parse
from typing import Dict, List, Optional

import phonenumbers
from sanic import Blueprint, response
from sanic.exceptions import SanicException

from voicebot.dashboard.topics import Kit, intent_names
from voicebot.knowledge.working_days import callback_due
from voicebot.queue.model import PAUSE_REASONS, PAUSED_BY_REQUEST, AgentState, AgentStatus, presence_refusal
from voicebot.store import CallRecord
from voicebot.store.records import CALLBACK_OUTCOMES, CLAIM_LAPSES_MIN
from voicebot.store.record import utcnow
from voicebot.timeline import Kind

CHECK_EVERY_S = 0.5  # how soon a ring or a state change reaches the open desk
HEARTBEAT_S = 15  # a comment line keeps proxies (and Sanic's response timeout) from closing the stream
STREAM_S = 600  # then the browser reconnects, and the login is checked again
MAX_NOTE_CHARS = 500
# The agent's side of a call, from the events that name the agent (by the events' stored names:
# every open desk reads the calls twice a second).
PHASES = {Kind.AGENT_RINGING.value: "ringing", Kind.AGENT_MISSED.value: "missed",
          Kind.QUEUE_ANSWERED.value: "connecting", Kind.BRIDGED.value: "connected", Kind.AGENT_LOST.value: "lost",
          Kind.AGENT_HUNG_UP.value: "ended"}
RECENT_ENDED = 50  # of the calls ended lately, those a desk looks through for the agent's last one


def add_desk_pages(bp: Blueprint, kit: Kit, phone_line) -> None:
    def queue_agent(agent_id: str) -> Optional[AgentStatus]:
        return phone_line.queues.agents.get(agent_id) if phone_line else None

    seen_elsewhere: Dict[str, CallRecord] = {}  # agent id -> the last call on another worker that rang them

    def desk_view(agent: AgentStatus) -> dict:
        now = phone_line.queues.clock()
        return {"agent": agent.as_dict(now),
                "call": latest_pop(phone_line.live, phone_line.queues.rung_elsewhere, seen_elsewhere, agent, kit.inst)}

    @bp.get("/desk")
    async def desk(request):
        """The agent's home page; a login that is no queue agent here is told so (callbacks work)."""
        user = kit.signed_in(request, "agent")
        agent = queue_agent(user.name)
        return kit.page(request, "desk.html", view=desk_view(agent) if agent else None, reasons=PAUSE_REASONS,
                        intents=intent_names(kit.inst))

    @bp.get("/desk/events")
    async def desk_events(request):
        """The desk's live part as server-sent events: {"html", "phase", "call"} whenever the
        agent's state or their call changes (ticking seconds alone do not count)."""
        user = kit.signed_in(request, "agent")
        agent, names = queue_agent(user.name), intent_names(kit.inst)
        if agent is None:
            raise SanicException(f"the login {user.name!r} is not one of this bot's queue agents", status_code=404)
        stream = await request.respond(content_type="text/event-stream",
                                       headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        await stream.send("retry: 2000\n\n")
        sent, last_sent, ends = None, time.monotonic(), time.monotonic() + STREAM_S
        while time.monotonic() < ends:
            view = desk_view(agent)
            changed = json.dumps([view["agent"]["state"], view["agent"]["reason"],
                                  view["call"] and {**view["call"], "waited_s": None}], default=str)
            if changed != sent:
                message = {"html": kit.fragment("desk_view.html", view=view, intents=names,
                                                sip_domain=kit.inst.settings.dashboard.dial_sip_domain),
                           "call": view["call"] and view["call"]["id"],
                           "phase": view["call"] and view["call"]["phase"]}
                await stream.send(f"data: {json.dumps(message)}\n\n")
                sent, last_sent = changed, time.monotonic()
            elif time.monotonic() - last_sent > HEARTBEAT_S:
                await stream.send(": still here\n\n")
                last_sent = time.monotonic()
            await asyncio.sleep(CHECK_EVERY_S)
        await stream.eof()

    @bp.post("/agents/<agent_id>/state")
    async def agent_state(request, agent_id: str):
        """An agent sets their own state; an operator anyone's."""
        user = kit.signed_in(request, "agent", "operator")
        if queue_agent(agent_id) is None:
            raise SanicException(f"no agent {agent_id!r}", status_code=404)
        if user.role == "agent" and agent_id != user.name:
            raise SanicException("an agent sets only their own state; an operator may set anyone's", status_code=403)
        state, reason = request.form.get("state"), request.form.get("reason") or PAUSED_BY_REQUEST
        if refusal := presence_refusal(state, reason):
            raise SanicException(refusal, status_code=400)
        phone_line.queues.set_presence(agent_id, state, reason)
        await kit.off_loop(kit.records.audit, user.name, "agent_state", agent=agent_id, state=state,
                           **({"reason": reason} if state == "paused" else {}))
        return response.redirect("/dashboard/desk" if user.role == "agent" else "/dashboard/operations#agents")


def add_callback_pages(bp: Blueprint, kit: Kit) -> None:
    @bp.get("/callbacks")
    async def callbacks(request):
        user = kit.signed_in(request, "agent", "operator")
        line_id = request.args.get("line") or None
        if line_id is not None and line_id not in kit.inst.tenants:
            raise SanicException("choose a line from the list", status_code=400)
        rows = []
        for tenant_id in ([line_id] if line_id else kit.inst.tenants):
            tenant = kit.inst.tenant(tenant_id)
            rows += [callback_row(tenant, c, user.name) for c in await kit.off_loop(kit.records.open_callbacks, tenant_id)]
        rows.sort(key=lambda r: (r["later"], r["retry_at"] if r["later"] else r["due"]))
        return kit.page(request, "callbacks.html", rows=rows, line_id=line_id, outcomes=CALLBACK_OUTCOMES,
                        notice=request.args.get("notice"))

    @bp.post("/callbacks/<callback_id:int>/claim")
    async def claim(request, callback_id: int):
        user = kit.signed_in(request, "agent", "operator")
        holder = await kit.off_loop(kit.records.claim_callback, callback_id, user.name)
        if holder:
            raise SanicException(f"{holder} is working on that callback", status_code=409)
        if holder == "":
            raise SanicException("that callback is done already", status_code=409)
        return response.redirect(f"/dashboard/callbacks#callback-{callback_id}")

    @bp.post("/callbacks/<callback_id:int>")
    async def attempt(request, callback_id: int):
        """What came of calling: reached, no answer (it comes back later) or wrong number."""
        user = kit.signed_in(request, "agent", "operator")
        outcome, note = request.form.get("outcome"), " ".join((request.form.get("note") or "").split())
        if outcome not in CALLBACK_OUTCOMES or len(note) > MAX_NOTE_CHARS:
            raise SanicException(f"choose what came of the call ({', '.join(CALLBACK_OUTCOMES)}), and keep the "
                                 f"note under {MAX_NOTE_CHARS} characters", status_code=400)
        callback = await kit.off_loop(kit.records.callback_attempt, callback_id, user.name, outcome, note)
        if callback is None:
            raise SanicException("claim that callback first (or it is done already)", status_code=409)
        told = {"reached": "Marked as done.", "wrong_number": "Closed: wrong number."}.get(outcome) or (
            "No answer: it comes back later." if callback.status == "open" else "No answer again: given up.")
        return response.redirect("/dashboard/callbacks?" + urllib.parse.urlencode({"notice": told}))


def callback_row(tenant, callback, me: str) -> dict:
    """A callback as the list shows it: times in the line's zone, due by its working days."""
    zone, now = tenant.zone, utcnow().replace(tzinfo=dt.timezone.utc)
    due = callback_due(tenant, callback.requested_at)
    retry_at = _aware(callback.retry_at)
    lapsed = callback.claimed_at is None or _aware(callback.claimed_at) < now - dt.timedelta(minutes=CLAIM_LAPSES_MIN)
    held_by = None if lapsed else callback.claimed_by
    return {"id": callback.id, "line": tenant.name, "number": callback.number,
            "dial": e164(callback.number, tenant.country), "topic": callback.topic,
            "conversation_id": callback.conversation_id,
            "requested": _aware(callback.requested_at).astimezone(zone), "due": due, "overdue": due < now,
            "attempts": callback.attempts, "last_outcome": callback.last_outcome,
            "retry_at": retry_at.astimezone(zone) if retry_at else None,
            "later": bool(retry_at and retry_at > now), "notes": (callback.notes or "").splitlines(),
            "claimed_by": held_by, "mine": held_by == me}


def _aware(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """The store gives back naive UTC on SQLite and aware on PostgreSQL."""
    return moment.replace(tzinfo=dt.timezone.utc) if moment is not None and moment.tzinfo is None else moment


def latest_pop(live, elsewhere: List[dict], seen_elsewhere: Dict[str, CallRecord], agent: AgentStatus,
               inst) -> Optional[dict]:
    """The newest call the queue rang this agent for (calls in progress first, here or on another
    worker), as the pop shows it. `seen_elsewhere` remembers, per agent, the last call in progress
    on another worker: once gone from there, it is over."""
    remote = [CallRecord(c["call_id"], c["tenant"], c["caller"], started=c["started"], events=c["events"])
              for c in elsewhere]
    for record, here in [(s.record, True) for s in reversed(list(live.sessions.values()))] + [(r, False) for r in remote]:
        pop = screen_pop(record, agent, inst, over=False)
        if pop is not None:
            if not here:
                seen_elsewhere[agent.id] = record
            return pop
    ended = list(live.finished)[-RECENT_ENDED:]
    if agent.id in seen_elsewhere:
        ended.append(seen_elsewhere[agent.id])
    for record in sorted(ended, key=lambda r: r.started, reverse=True):
        pop = screen_pop(record, agent, inst, over=True)
        if pop is not None:
            return pop
    return None


def screen_pop(record: CallRecord, agent: AgentStatus, inst, over: bool) -> Optional[dict]:
    """What the agent's screen shows of a call they were rung for; None if they were not."""
    mine = [e for e in record.events if e["event"] in PHASES and e.get("agent") == agent.id]
    if not mine:
        return None
    phase = PHASES[mine[-1]["event"]]
    if over and phase in ("connecting", "connected"):
        phase = "ended"
    if phase == "ended" and agent.state == AgentState.WRAP_UP:
        phase = "wrap-up"
    line = inst.tenants.get(record.tenant)
    handoff = next((e["handoff"] for e in reversed(record.events) if e["event"] == Kind.BOT and e.get("handoff")), {})
    municipality = line.municipalities.get(handoff.get("municipality") or "") if line else None
    topics = handoff.get("topics") or []
    return {"id": record.call_id, "phase": phase, "line": line.name if line else record.tenant,
            "municipality": municipality.name if municipality else None,
            "number": record.caller, "dial": e164(record.caller, line.country if line else None),
            "topic": intent_names(inst).get(topics[-1], topics[-1]) if topics else None,
            "reason": (handoff.get("reason") or "").replace("_", " ") or None, "summary": handoff.get("summary"),
            "waited_s": waited_s(record), "conversation": conversation(record.events)}


def waited_s(record: CallRecord) -> Optional[float]:
    """In the queue until an agent answered (or until now, while still waiting)."""
    entered = next((e["t"] for e in record.events if e["event"] == Kind.QUEUE_ENTERED), None)
    answered = [e for e in record.events if e["event"] == Kind.QUEUE_ANSWERED]
    if answered:
        return answered[-1].get("waited_s")
    return None if entered is None else round(time.time() - record.started - entered, 1)


def e164(number: Optional[str], country: Optional[str]) -> Optional[str]:
    """A caller's number as a tel: link takes it (+4512345678), read in the line's country; None
    if it is no phone number (withheld, a SIP user name)."""
    try:
        parsed = phonenumbers.parse(number or "", country)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) \
        if phonenumbers.is_possible_number(parsed) else None


def conversation(events: List[Dict]) -> List[Dict]:
    """Both sides: what the caller said or pressed and what the bot said back."""
    turns = []
    for event in events:
        if event["event"] == Kind.HEARD and event.get("text"):
            turns.append({"who": "caller", "text": event["text"]})
        elif event["event"] == Kind.DTMF:
            turns.append({"who": "caller", "text": f"(key {event['digit']})"})
        elif event["event"] == Kind.BOT:
            turns.append({"who": "bot", "text": " ".join(event.get("texts") or []), "intent": event.get("intent")})
        elif event["event"] == Kind.TAKEN_BACK:
            _mark_taken_back(turns)
    return turns


def _mark_taken_back(turns: List[Dict]) -> None:
    """The bot's last answer was given early and taken back (voicebot.call.session): the caller
    went on, or the turn's final words asked something else; the whole turn was answered after it."""
    answer = next((turn for turn in reversed(turns) if turn["who"] == "bot"), None)
    if answer is not None:
        answer["taken_back"] = True
