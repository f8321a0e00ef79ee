"""The dashboard's pages on the bot's own Sanic app: /dashboard/...

Operators: live calls, queues and agents, and the figures over a period (per line and topic,
with charts). Trainers: the review inbox and retraining. Agents: the screen pop of a call.
Every page needs a login; every form carries the session's CSRF token; pages are rendered
with autoescaping (callers can say anything) and a content security policy without inline
scripts.
"""

import asyncio
import datetime as dt
import functools
import urllib.parse
import uuid
from pathlib import Path
from typing import Dict, Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, response
from sanic.exceptions import SanicException

from voicebot.config import ConfigError, Installation
from voicebot.dashboard.auth import LockedOut, Logins, SignedIn
from voicebot.dashboard.retrain import Retrainer
from voicebot.dialogue.examples import add_example
from voicebot.dialogue.runtime import Dialogue
from voicebot.dialogue.versions import Versions
from voicebot.intents import BUILT_IN_INTENTS
from voicebot.store import RecordStore
from voicebot.store.record import REVIEW_REASONS, utcnow

HERE = Path(__file__).parent
BUILT_IN_NAMES = {"greet": "Greeting", "goodbye": "Goodbye", "thank": "Thanks", "affirm": "Yes", "deny": "No",
                  "chitchat": "Small talk", "opening_hours": "Opening hours", "office_location": "Where an office is",
                  "request_agent": "Asks for a person", "callback_request": "Asks for a callback",
                  "out_of_scope": "Not for the council (off-topic)"}
MAX_TRIED_CHARS = 500
COOKIE = "voicebot_session"
HOME = {"operator": "/dashboard/operations", "admin": "/dashboard/operations", "trainer": "/dashboard/inbox",
        "agent": "/dashboard/callbacks"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def dashboard(inst: Installation, dialogue: Dialogue, records: RecordStore, phone_line=None) -> Blueprint:
    bp = Blueprint("dashboard", url_prefix="/dashboard")
    settings = inst.settings.dashboard
    logins = Logins(records.session, settings.session_minutes)
    retrainer = Retrainer(inst, dialogue)
    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    intents = _intent_names(inst)

    def page(request, template: str, status: int = 200, **values):
        html = templates.get_template(template).render(user=request.ctx.user, lines=inst.tenants, **values)
        return response.html(html, status=status, headers=SECURITY_HEADERS)

    def signed_in(request, *roles: str) -> SignedIn:
        user = logins.signed_in(request.cookies.get(COOKIE))
        if user is None or user.role not in HOME:  # an API token of a front end is no person
            raise _Redirect("/dashboard/login")
        if roles and user.role not in roles and user.role != "admin":
            raise SanicException("your role cannot see this page", status_code=403)
        if request.method == "POST" and request.form.get("csrf") != user.csrf_token:
            raise SanicException("the form expired: reload the page and try again", status_code=403)
        request.ctx.user = user
        return user

    @bp.middleware("request")
    async def same_origin_posts(request):
        request.ctx.user = None
        origin = request.headers.get("origin")
        if request.method == "POST" and origin and origin.split("://", 1)[-1] != request.host:
            return response.text("cross-site form refused", status=403)

    @bp.exception(_Redirect)
    async def redirect(request, error):
        return response.redirect(error.location)

    @bp.exception(SanicException)
    async def error_page(request, error):
        return page(request, "error.html", status=getattr(error, "status_code", 500), message=str(error))

    @bp.get("/static/<name>")
    async def static(request, name: str):
        if name not in ("dashboard.js", "dashboard.css"):
            raise SanicException("not found", status_code=404)
        return await response.file(HERE / "static" / name, headers={"Cache-Control": "max-age=300"})

    # -- signing in and out
    @bp.get("/login")
    async def login_form(request):
        return page(request, "login.html")

    @bp.post("/login")
    async def login(request):
        name, password = request.form.get("name", ""), request.form.get("password", "")
        try:
            token = await off_loop(logins.sign_in, name, password, request.ip)
        except LockedOut as locked:
            seconds = max(1, round(locked.seconds))
            return page(request, "login.html", status=429, name=name,
                        message=f"Too many failed sign-ins with this name or from this address: "
                                f"locked for {seconds} s. Wait, then try again.")
        if token is None:
            return page(request, "login.html", status=401, name=name, message="Wrong name or password.")
        user = logins.signed_in(token)
        target = response.redirect(HOME[user.role])
        set_cookie(target, token, settings.session_minutes * 60)
        return target

    def set_cookie(target, value: str, max_age: int) -> None:
        target.cookies[COOKIE] = value
        # The same path and flags when it is cleared: a browser keeps a cookie cleared on another path.
        target.cookies[COOKIE].update({"httponly": True, "samesite": "Strict", "path": "/dashboard",
                                       "max-age": max_age, "secure": settings.secure_cookie})

    @bp.post("/logout")
    async def logout(request):
        signed_in(request)
        logins.sign_out(request.cookies.get(COOKIE))
        target = response.redirect("/dashboard/login")
        set_cookie(target, "", 0)
        return target

    @bp.get("/")
    async def home(request):
        return response.redirect(HOME[signed_in(request).role])

    # -- operators
    @bp.get("/operations")
    async def operations(request):
        signed_in(request, "operator")
        since, until, line_id = _period(request, inst)
        levels = {q: queue.service_level_s for q, queue in inst.settings.queues.items()}
        report = await off_loop(records.report, since, until, line_id, levels)
        days = [(day[5:], calls) for day, calls, _ in report.per_day]
        return page(request, "operations.html", report=report, days=days, since=since.date(), until=(until - dt.timedelta(days=1)).date(),
                    line_id=line_id, **_live(phone_line))

    @bp.get("/live.json")
    async def live(request):
        signed_in(request, "operator")
        return response.json(_live(phone_line))

    # -- trainers
    @bp.get("/inbox")
    async def inbox(request):
        signed_in(request, "trainer")
        line_id = _line(request, inst)
        turns = await off_loop(records.inbox, [line_id] if line_id else inst.tenants, 50)
        guesses = {}
        for turn in turns:
            if turn.language in dialogue.agents:
                parsed = await dialogue.parse(turn.language, turn.text or "")
                guesses[turn.id] = [(g["name"], g["confidence"]) for g in parsed.get("intent_ranking", [])[:3]]
        return page(request, "inbox.html", turns=turns, guesses=guesses, intents=intents, line_id=line_id,
                    job=retrainer.job, notice=request.args.get("notice"), reasons=REVIEW_REASONS)

    @bp.post("/inbox/<turn_id:int>")
    async def review(request, turn_id: int):
        user = signed_in(request, "trainer")
        action, intent = request.form.get("action"), request.form.get("intent") or None  # blank: no choice
        if action not in ("assign", "discard") or (action == "assign" and intent is None):
            raise SanicException("choose what the caller meant, or mark it as not a topic", status_code=400)
        intent = intent if action == "assign" else None
        if intent is not None and intent not in intents:
            raise SanicException(f"no intent {intent!r}", status_code=400)
        turn = await off_loop(records.pending_review, turn_id)
        if turn is None:
            raise SanicException("that utterance was reviewed already", status_code=409)
        notice = "Not a topic: nothing learnt from it."
        if intent:
            try:
                added = add_example(inst, turn.language, intent, turn.text)
            except ConfigError as error:
                raise SanicException(str(error), status_code=409) from None
            notice = f"Added to {intent}: retrain to use it." if added else f"Already an example of {intent}."
        await off_loop(records.review, turn_id, intent)
        await off_loop(records.audit, user.name, "example_added" if intent else "not_a_topic", language=turn.language,
                       text=turn.text, **({"intent": intent} if intent else {}))
        return response.redirect("/dashboard/inbox?" + urllib.parse.urlencode({"notice": notice}))

    @bp.get("/try")
    async def try_it(request):
        """A sentence on a line: what the live model makes of it, and what the bot would answer."""
        signed_in(request, "trainer")
        line_id, text = _line(request, inst), (request.args.get("text") or "").strip()[:MAX_TRIED_CHARS]
        result = None
        if line_id and text:
            tenant = inst.tenant(line_id)
            if tenant.language not in dialogue.agents:
                raise SanicException(f"this bot does not serve line {line_id!r}", status_code=400)
            parsed = await dialogue.parse(tenant.language, text)
            conversation_id = f"try-{uuid.uuid4().hex}"
            try:
                reply = await dialogue.handle(tenant, conversation_id, text)
            finally:
                dialogue.forget(tenant, conversation_id)
            result = {"ranking": [(g["name"], g["confidence"]) for g in parsed.get("intent_ranking", [])[:5]],
                      "entities": [(e["entity"], e["value"]) for e in parsed.get("entities", [])], "reply": reply}
        return page(request, "try.html", line_id=line_id, text=text, result=result, intents=intents)

    def language_of_this_bot(lang: Optional[str]) -> str:
        if lang not in dialogue.agents:
            raise SanicException(f"no model for language {lang!r} in this bot", status_code=400)
        return lang

    @bp.post("/retrain")
    async def retrain(request):
        user = signed_in(request, "trainer")
        lang = language_of_this_bot(request.form.get("lang"))
        try:
            retrainer.start(lang, await off_loop(records.labelled, lang), user.name)
        except RuntimeError as error:
            raise SanicException(str(error), status_code=409)
        await off_loop(records.audit, user.name, "retrain", language=lang)
        return response.redirect("/dashboard/training")

    @bp.post("/training/decision")
    async def training_decision(request):
        user = signed_in(request, "trainer")
        switch = request.form.get("action") == "switch"
        try:
            retrainer.decide(switch)
        except RuntimeError as error:
            raise SanicException(str(error), status_code=409)
        await off_loop(records.audit, user.name, "worse_model_switched" if switch else "worse_model_kept_out",
                       language=retrainer.job.lang, version=retrainer.job.version)
        return response.redirect("/dashboard/training")

    @bp.post("/models/<lang>/<version_id>")
    async def make_live(request, lang: str, version_id: str):
        user = signed_in(request, "trainer")
        try:
            retrainer.roll_back(language_of_this_bot(lang), version_id, user.name)
        except (RuntimeError, ConfigError) as error:
            raise SanicException(str(error), status_code=409)
        await off_loop(records.audit, user.name, "model_live", language=lang, version=version_id)
        return response.redirect("/dashboard/training")

    @bp.get("/audit")
    async def audit(request):
        signed_in(request, "admin")
        return page(request, "audit.html", entries=await off_loop(records.audit_log))

    @bp.get("/training")
    async def training(request):
        signed_in(request, "trainer")
        versions = {lang: Versions(inst, lang) for lang in sorted(dialogue.agents)}
        return page(request, "training.html", job=retrainer.job, versions=versions, intents=intents)

    @bp.get("/training.json")
    async def training_state(request):
        signed_in(request, "trainer")
        return response.json(retrainer.job.as_dict() if retrainer.job else None)

    # -- agents: callbacks to make, and the screen pop
    @bp.get("/callbacks")
    async def callbacks(request):
        signed_in(request, "agent", "operator")
        line_id = _line(request, inst)
        waiting = [(tenant, await off_loop(records.open_callbacks, tenant))
                   for tenant in ([line_id] if line_id else inst.tenants)]
        return page(request, "callbacks.html", waiting=waiting, line_id=line_id, notice=request.args.get("notice"))

    @bp.post("/callbacks/<callback_id:int>")
    async def callback_done(request, callback_id: int):
        user = signed_in(request, "agent", "operator")
        if not await off_loop(records.close_callback, callback_id, user.name):
            raise SanicException("that callback is done already", status_code=409)
        return response.redirect("/dashboard/callbacks?notice=Marked+as+done.")


    @bp.get("/calls")
    async def calls(request):
        signed_in(request, "agent", "operator", "trainer")
        return page(request, "calls.html", calls=_live(phone_line)["calls"])

    @bp.get("/calls/<call_id>")
    async def screen_pop(request, call_id: str):
        signed_in(request, "agent", "operator", "trainer")
        record = next((r for r in (phone_line.records() if phone_line else []) if r.call_id == call_id), None)
        if record is not None:
            turns = _conversation(record.events)
            call = {"id": record.call_id, "tenant": record.tenant, "state": record.state}
        else:
            stored = await off_loop(records.export, call_id)
            if stored is None:
                raise SanicException(f"no call {call_id!r}", status_code=404)
            turns = [{"who": "caller", "text": t["text"], "intent": t["intent"]} for t in stored["turns"] if t["text"]]
            call = {"id": call_id, "tenant": stored["call"]["tenant"], "state": stored["call"]["outcome"] or "live"}
        return page(request, "call.html", call=call, turns=turns)

    return bp


class _Redirect(Exception):
    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


def _intent_names(inst: Installation) -> Dict[str, str]:
    """What a trainer can say an utterance meant, by name: the built-in intents and every topic."""
    return {**{intent: BUILT_IN_NAMES.get(intent, intent) for intent in BUILT_IN_INTENTS},
            **{topic_id: topic.name("en") for topic_id, topic in inst.topics.items()}}


def _line(request, inst: Installation) -> Optional[str]:
    line_id = request.args.get("line") or None
    if line_id is not None and line_id not in inst.tenants:
        raise SanicException("choose a line from the list", status_code=400)
    return line_id


def _period(request, inst: Installation):
    """since/until days from the filter form (default: the last 7 days); until is inclusive."""
    today = utcnow().date()
    try:
        since = dt.date.fromisoformat(request.args.get("since") or str(today - dt.timedelta(days=6)))
        until = dt.date.fromisoformat(request.args.get("until") or str(today))
    except ValueError:
        raise SanicException("give dates as YYYY-MM-DD", status_code=400) from None
    if since > until:
        raise SanicException("the period starts after it ends", status_code=400)
    start = dt.datetime.combine(since, dt.time())
    return start, dt.datetime.combine(until + dt.timedelta(days=1), dt.time()), _line(request, inst)


async def off_loop(fn, *args, **kwargs):
    """Store queries and password hashing run on a worker thread: the event loop also runs calls."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))


def _live(phone_line) -> dict:
    """The calls in progress (on every worker, where workers share the queue) and this worker's
    view of the queues, from one snapshot."""
    if phone_line is None:
        return {"calls": [], "queues": None}
    queues = phone_line.queues.snapshot()
    return {"calls": phone_line.live_calls(queues) + phone_line.queues.calls_elsewhere, "queues": queues}


def _conversation(events: list) -> list:
    turns = []
    for event in events:
        if event["event"] == "heard" and event.get("text"):
            turns.append({"who": "caller", "text": event["text"]})
        elif event["event"] == "dtmf":
            turns.append({"who": "caller", "text": f"(key {event['digit']})"})
        elif event["event"] == "bot":
            turns.append({"who": "bot", "text": " ".join(event.get("texts") or []), "intent": event.get("intent")})
    return turns
