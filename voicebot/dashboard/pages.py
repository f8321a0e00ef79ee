"""The dashboard's pages on the bot's own Sanic app: /dashboard/...

Operators: live calls, queues and agents, and the figures over a period (per line and topic,
with charts). Trainers: the review inbox and retraining. Both: past conversations, turn by turn.
Agents: their desk (voicebot.dashboard.desk), callbacks, and a call's conversation.
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
from typing import Dict, List, Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, response
from sanic.exceptions import SanicException

from voicebot.config import ConfigError, Installation
from voicebot.config.live import LiveConfiguration
from voicebot.dashboard.auth import LockedOut, Logins, SignedIn
from voicebot.dashboard.desk import add_callback_pages, add_desk_pages, conversation
from voicebot.dashboard.retrain import Retrainer
from voicebot.dashboard.topics import Kit, add_topic_pages, intent_names
from voicebot.dialogue.examples import add_example
from voicebot.dialogue.runtime import Dialogue
from voicebot.dialogue.versions import Versions
from voicebot.queue.health import queue_health
from voicebot.queue.model import PAUSE_REASONS
from voicebot.store import RecordStore
from voicebot.store.csv_export import calls_csv, figures_csv
from voicebot.store.models import OUTCOMES
from voicebot.store.record import NOT_TOPICS, REVIEW_REASONS, utcnow
from voicebot.timeline import Kind, frames_late_or_missing

HERE = Path(__file__).parent
MAX_TRIED_CHARS = 500
CONVERSATIONS_PER_PAGE = 50
MAX_PAGE = 1000  # deeper than anyone reads; bounds the offset a URL can ask the database for
COOKIE = "voicebot_session"
HOME = {"operator": "/dashboard/operations", "admin": "/dashboard/operations", "trainer": "/dashboard/inbox",
        "agent": "/dashboard/desk"}
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
    configuration = LiveConfiguration(inst.settings_file)  # with the topics trainers added since the start

    async def intents() -> Dict[str, str]:
        return intent_names(await off_loop(configuration))

    # Each queue's service level time: what the figures count as answered in time.
    levels = {queue_id: queue.service_level_s for queue_id, queue in inst.settings.queues.items()}

    def page(request, template: str, status: int = 200, **values):
        html = templates.get_template(template).render(user=request.ctx.user, lines=inst.tenants,
                                                       sip_domain=settings.dial_sip_domain, **values)
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
        # A refusal (role, expired form) comes before signed_in sets the user: look the session up
        # again, so that the error page keeps the signed-in person's navigation.
        if getattr(request.ctx, "user", None) is None:
            user = logins.signed_in(request.cookies.get(COOKIE))
            request.ctx.user = user if user is not None and user.role in HOME else None
        return page(request, "error.html", status=getattr(error, "status_code", 500), message=str(error))

    @bp.get("/static/<name>")
    async def static(request, name: str):
        if name not in ("dashboard.js", "dashboard.css", "desk.js", "wallboard.js"):
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
        return page(request, "operations.html", reasons=PAUSE_REASONS, **await figures(request), **_live(phone_line))

    @bp.get("/operations/figures")
    async def operations_figures(request):
        """The period's figures alone, which the wallboard puts in place of its own every few seconds."""
        signed_in(request, "operator")
        return page(request, "operations_figures.html", **await figures(request))

    async def figures(request) -> dict:
        since, until, line_id = _period(request, inst)
        report = await off_loop(records.report, since, until, line_id, levels)
        days = [(day[5:], calls) for day, calls, _ in report.per_day]
        step = _chosen(request, "step", ("hour", "day")) or ("hour" if until - since <= dt.timedelta(days=2) else "day")
        group = _chosen(request, "by", ("topic", "line", "municipality")) or "topic"
        if (until - since) / (dt.timedelta(hours=1) if step == "hour" else dt.timedelta(days=1)) > MAX_TREND_PERIODS:
            raise SanicException(f"the tables over time show at most {MAX_TREND_PERIODS} {step}s: choose a shorter "
                                 "period" + (", or per day" if step == "hour" else ""), status_code=400)
        trend = await off_loop(records.trend, since, until, step, group, line_id, levels)
        return dict(report=report, days=days, since=since.date(), until=(until - dt.timedelta(days=1)).date(),
                    line_id=line_id, trend=trend, group=group)

    @bp.get("/operations.csv")
    async def operations_csv(request):
        """The period's figures (what=figures) or calls as stored (what=calls), for a spreadsheet."""
        signed_in(request, "operator")
        since, until, line_id = _period(request, inst)
        what = _chosen(request, "what", ("figures", "calls")) or "figures"
        if what == "calls":
            text = calls_csv(await off_loop(records.calls_between, since, until, line_id))
        else:
            text = figures_csv(await off_loop(records.report, since, until, line_id, levels))
        name = f"voicebot-{what}-{since:%Y-%m-%d}-{until - dt.timedelta(days=1):%Y-%m-%d}.csv"
        return response.text(text, content_type="text/csv; charset=utf-8",
                             headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})

    @bp.get("/live.json")
    async def live(request):
        signed_in(request, "operator", "agent", "trainer")  # whoever sees the calls page, which refreshes from it
        return response.json(_live(phone_line))

    # -- trainers
    def trained_lines(user: SignedIn, line_id: Optional[str]) -> list:
        """The line asked for, or every line the trainer may change; another's is refused."""
        if line_id is not None and not user.may_change(line_id):
            raise SanicException(f"you train only {', '.join(user.lines)}: not {line_id}", status_code=403)
        return [line_id] if line_id else list(user.lines or inst.tenants)

    def trained_language(user: SignedIn, lang: Optional[str]) -> str:
        """A language this bot has a model for, and one of the trainer's lines speaks."""
        if lang not in dialogue.agents:
            raise SanicException(f"no model for language {lang!r} in this bot", status_code=400)
        if user.lines is not None and lang not in {inst.tenant(line).language for line in user.lines}:
            raise SanicException(f"you train only {', '.join(user.lines)}: not the {lang} model", status_code=403)
        return lang

    @bp.get("/inbox")
    async def inbox(request):
        user = signed_in(request, "trainer")
        line_id = _line(request, inst)
        turns = await off_loop(records.inbox, trained_lines(user, line_id), 50)
        guesses = {}
        for turn in turns:
            if turn.language in dialogue.agents:
                parsed = await dialogue.parse(turn.language, turn.text or "")
                guesses[turn.id] = [(g["name"], g["confidence"]) for g in parsed.get("intent_ranking", [])[:3]]
        return page(request, "inbox.html", turns=turns, guesses=guesses, intents=await intents(), line_id=line_id,
                    job=retrainer.job, notice=request.args.get("notice"), reasons=REVIEW_REASONS)

    @bp.post("/inbox/<turn_id:int>")
    async def review(request, turn_id: int):
        user = signed_in(request, "trainer")
        action, intent = request.form.get("action"), request.form.get("intent") or None  # blank: no choice
        if action not in ("assign", "discard") or (action == "assign" and intent is None):
            raise SanicException("choose what the caller meant, or mark it as not a topic", status_code=400)
        intent = intent if action == "assign" else None
        if intent is not None and intent not in await intents():
            raise SanicException(f"no intent {intent!r}", status_code=400)
        turn = await off_loop(records.pending_review, turn_id)
        if turn is None:
            raise SanicException("that utterance was reviewed already", status_code=409)
        trained_lines(user, turn.tenant)
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
        user = signed_in(request, "trainer")
        line_id, text = _line(request, inst), (request.args.get("text") or "").strip()[:MAX_TRIED_CHARS]
        results = {}
        if line_id and text:
            trained_lines(user, line_id)
            tenant = inst.tenant(line_id)
            if tenant.language not in dialogue.agents:
                raise SanicException(f"this bot does not serve line {line_id!r}", status_code=400)
            results["live"] = await _tried(dialogue, tenant, text)
            candidate, job = retrainer.candidate, retrainer.job
            if candidate is not None and job.lang == tenant.language:
                results[f"new, of {job.version}"] = await _tried(candidate, tenant, text)
        return page(request, "try.html", line_id=line_id, text=text, results=results, intents=await intents(),
                    job=retrainer.job if retrainer.candidate else None)

    @bp.post("/retrain")
    async def retrain(request):
        user = signed_in(request, "trainer")
        lang = trained_language(user, request.form.get("lang"))
        try:
            retrainer.start(lang, await off_loop(records.labelled, lang), user.name,
                            try_first=request.form.get("try_first") == "yes")
        except RuntimeError as error:
            raise SanicException(str(error), status_code=409)
        await off_loop(records.audit, user.name, "retrain", language=lang)
        return response.redirect("/dashboard/training")

    @bp.post("/training/decision")
    async def training_decision(request):
        user = signed_in(request, "trainer")
        switch = request.form.get("action") == "switch"
        if retrainer.job is not None:
            trained_language(user, retrainer.job.lang)
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
            retrainer.roll_back(trained_language(user, lang), version_id, user.name)
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
        return page(request, "training.html", job=retrainer.job, versions=versions, intents=await intents())

    @bp.get("/training.json")
    async def training_state(request):
        signed_in(request, "trainer")
        return response.json(retrainer.job.as_dict() if retrainer.job else None)

    kit = Kit(inst, configuration, records, page, signed_in, off_loop, lambda: sorted(dialogue.agents),
              trained_lines, trained_language, lambda template, **values: templates.get_template(template).render(**values))
    add_topic_pages(bp, kit)
    add_desk_pages(bp, kit, phone_line)
    add_callback_pages(bp, kit)

    # -- conversations: what callers said and the bot answered, for trainers (and operators)
    @bp.get("/conversations")
    async def conversations(request):
        user = signed_in(request, "trainer", "operator")
        since, until, line_id = _period(request, inst)
        topics = {intent: name for intent, name in (await intents()).items() if intent not in NOT_TOPICS}
        topic, outcome = _chosen(request, "topic", topics), _chosen(request, "outcome", OUTCOMES)
        number = _page_number(request)
        found = await off_loop(records.conversations, trained_lines(user, line_id), since, until,
                               topic, outcome, CONVERSATIONS_PER_PAGE + 1, (number - 1) * CONVERSATIONS_PER_PAGE)
        filters = {"line": line_id or "", "topic": topic or "", "outcome": outcome or "", "since": since.date(),
                   "until": (until - dt.timedelta(days=1)).date()}
        return page(request, "conversations.html", calls=found[:CONVERSATIONS_PER_PAGE], topics=topics,
                    outcomes=OUTCOMES, line_id=line_id, number=number, **filters,
                    next_page=_page_link(filters, number + 1) if len(found) > CONVERSATIONS_PER_PAGE else None,
                    previous_page=_page_link(filters, number - 1) if number > 1 else None)

    # -- agents (their desk and callbacks: voicebot.dashboard.desk) and everyone: calls now
    @bp.get("/calls")
    async def calls(request):
        signed_in(request, "agent", "operator", "trainer")
        return page(request, "calls.html", calls=_live(phone_line)["calls"])

    @bp.get("/calls/<call_id>")
    async def screen_pop(request, call_id: str):
        user = signed_in(request, "agent", "operator", "trainer")
        record = next((r for r in (phone_line.live.records() if phone_line else []) if r.call_id == call_id), None)
        # A live call is freshest in memory; an ended one is whole in the store (outcome, confidences).
        ended = record is None or (record.journal is not None and record.journal.ended)
        stored = await off_loop(records.export, call_id) if ended else None
        if stored is not None:
            turns = _stored_conversation(stored["turns"], stored["events"])
            call = {"id": call_id, "state": stored["call"]["outcome"] or "live",
                    **{key: stored["call"][key] for key in ("tenant", "outcome", "topic", "handoff_reason")},
                    "municipality": _municipality_name(inst, stored["call"]["tenant"], stored["call"]["municipality"]),
                    **_audio(_hangup_data(stored["events"]))}
        elif record is not None:
            turns = conversation(record.events)
            said = [e["municipality"] for e in record.events if e["event"] == Kind.BOT and e.get("municipality")]
            call = {"id": record.call_id, "tenant": record.tenant, "state": record.state,
                    "municipality": _municipality_name(inst, record.tenant, said[-1] if said else None)}
        else:
            raise SanicException(f"no call {call_id!r}", status_code=404)
        trained_lines(user, call["tenant"])  # a login for some lines reads only their conversations
        return page(request, "call.html", call=call, turns=turns, intents=await intents())

    return bp


class _Redirect(Exception):
    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


def _hangup_data(events: List[dict]) -> dict:
    """What the call's hangup event recorded (its audio both ways), empty before it."""
    return next((e["data"] for e in events if e["kind"] == "hangup" and e["data"]), {})


def _audio(hangup: dict) -> dict:
    return {"audio_in": _audio_in(hangup.get("audio_in")), "audio_out": _audio_out(hangup.get("audio_out"))}


def _audio_in(received: Optional[dict]) -> Optional[str]:
    """How the caller's audio reached the bot (the hangup event's audio_in): what to look at first
    when a caller was not understood."""
    if not received:
        return None
    packets, lost = received["rtp_packets"], received["rtp_lost"]
    return (f"{packets} packets, {lost} lost ({lost / max(1, packets + lost):.1%}), "
            f"{frames_late_or_missing(received)} frames late or missing, "
            f"jitter {received['jitter_ms']:g} ms")


def _audio_out(sent: Optional[dict]) -> Optional[str]:
    """How punctually the bot sent its audio (the hangup event's audio_out): frames sent 20 ms
    late or more are the bot's doing, whatever the caller's line made of them."""
    if not sent:
        return None
    return (f"{sent['ticks']} frames, {sent['late_20ms']} sent 20 ms late or more "
            f"(the latest {sent['max_late_ms']:g} ms)")


def _municipality_name(inst: Installation, line_id: str, municipality: Optional[str]) -> Optional[str]:
    """On a shared line, the name of the municipality a call was about."""
    line = inst.tenants.get(line_id)
    return line.municipalities[municipality].name if line and municipality in line.municipalities else municipality


def _line(request, inst: Installation) -> Optional[str]:
    line_id = request.args.get("line") or None
    if line_id is not None and line_id not in inst.tenants:
        raise SanicException("choose a line from the list", status_code=400)
    return line_id


def _chosen(request, name: str, choices) -> Optional[str]:
    """A filter's value, one of `choices`; None for all."""
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        raise SanicException(f"no {name} {value!r}: choose one from the list", status_code=400)
    return value


def _page_number(request) -> int:
    try:
        number = int(request.args.get("page") or 1)
    except ValueError:
        raise SanicException("give the page as a number", status_code=400) from None
    if not 1 <= number <= MAX_PAGE:
        raise SanicException(f"pages run from 1 to {MAX_PAGE}", status_code=400)
    return number


def _page_link(filters: dict, number: int) -> str:
    return "?" + urllib.parse.urlencode({**filters, "page": number})


# Columns of the tables over time: every empty hour or day is one, so a period of centuries
# would fill the memory (a month by hour, about three years by day).
MAX_TREND_PERIODS = 1000


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
    until = min(until, dt.date.max - dt.timedelta(days=1))  # 9999-12-31 means no end; the day after it cannot be
    start = dt.datetime.combine(since, dt.time())
    return start, dt.datetime.combine(until + dt.timedelta(days=1), dt.time()), _line(request, inst)


async def _tried(dialogue: Dialogue, tenant, text: str) -> dict:
    """What a model makes of a sentence on a line, and what the bot would answer; nothing kept."""
    parsed = await dialogue.parse(tenant.language, text)
    conversation_id = f"try-{uuid.uuid4().hex}"
    try:
        reply = await dialogue.handle(tenant, conversation_id, text)
    finally:
        dialogue.forget(tenant, conversation_id)
    return {"ranking": [(g["name"], g["confidence"]) for g in parsed.get("intent_ranking", [])[:5]],
            "entities": [(e["entity"], e["value"]) for e in parsed.get("entities", [])], "reply": reply}


async def off_loop(fn, *args, **kwargs):
    """Store queries and password hashing run on a worker thread: the event loop also runs calls."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))


def _live(phone_line) -> dict:
    """The calls in progress (on every worker, where workers share the queue), this worker's
    view of the queues, and how each queue stands against its thresholds."""
    if phone_line is None:
        return {"calls": [], "queues": None, "health": []}
    snapshot = phone_line.queues.snapshot()
    return {"calls": phone_line.live.listed() + phone_line.queues.calls_elsewhere, "queues": snapshot,
            "health": queue_health(phone_line.queues.settings, snapshot)}


def _stored_conversation(turns: list, events: list) -> list:
    """A stored call's turns: what the caller said or pressed, what the bot understood of it and
    how sure it was, then what the bot said back (and whether it took that back)."""
    said = []
    taken_back = {(e["data"] or {}).get("turn") for e in events if e["kind"] == Kind.TAKEN_BACK}
    for turn in turns:
        understood = {"intent": turn["intent"], "confidence": turn["confidence"]}
        if turn["text"]:
            text = f"(key {turn['text']})" if turn["source"] == "keypad" else turn["text"]
            said.append({"who": "caller", "text": text, **understood})
            understood = {}
        if turn["replies"]:
            said.append({"who": "bot", "text": " ".join(turn["replies"]), **understood,
                         **({"taken_back": True} if turn["seq"] in taken_back else {})})
    return said
