"""`voicebot bench records`: the store, the report and the dashboard at a realistic size.

Generates calls through the store's own API, as the bot writes them (RecordStore.record(...),
.add(...) for each event, .end(); the RecordWriter batches the rows off the caller's thread),
spread over the last `days` days on the three demo lines, then times what operators and
trainers wait for: RecordStore.report() for the last 7 days and for the whole period, all lines
and one line, and the dashboard's operations and inbox pages served by the bot's own app.
Target: under 1 s each with 100,000 calls stored.

The mix: ~60% settled by the bot in 1-3 turns, ~25% handed to a person (requested,
case_handling, misunderstood; queued on the bot's own queue, or a SIP REFER transfer on the
line configured so), ~10% given up after a turn the bot did not understand, ~5% callbacks.
"""

import datetime as dt
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from voicebot.metrics import Metrics
from voicebot.store import RecordStore
from voicebot.store.models import Call, CallEvent, Callback, Turn
from voicebot.store.record import utcnow

SECTION = "Records and report"
TARGET_MS = 1000
REPETITIONS = 7
SEED = 20261124

# (tenant, language, country code, queue, handoff via, share of calls); as in tenants/*.yml.
LINES = (("demo-city", "en", "+44", "demo-city-contact-centre", "refer", 0.40),
         ("demo-kommune", "da", "+45", "demo-kommune-borgerservice", "queue", 0.35),
         ("stadt-kreis", "de", "+49", "stadt-kreis-pool", "queue", 0.25))
SERVICE_LEVEL_S = 60  # voicebot.yml: the queues' default service_level_s
TOPICS = ("opening_hours", "passport", "change_address", "digital_id_help", "waste_collection")
TOPIC_WEIGHTS = (0.30, 0.22, 0.18, 0.15, 0.15)
# Calls per UTC hour of a day and per weekday (Monday first): a municipal phone line's curve.
HOURS = {7: 0.5, 8: 1.0, 9: 1.4, 10: 1.3, 11: 1.1, 12: 0.8, 13: 1.0, 14: 0.9, 15: 0.7, 16: 0.4, 17: 0.2}
WEEKDAYS = (1.2, 1.0, 1.0, 1.0, 0.8, 0.3, 0.2)

PHRASES = {
    "en": {
        "opening_hours": (["when are you open", "what are your opening hours on saturday",
                           "is the town hall open today"], "The citizens' service is open weekdays from 8 to 6."),
        "passport": (["I need a new passport", "how do I renew my passport", "my passport has expired"],
                     "You can book a passport appointment online or with me now."),
        "change_address": (["I am moving house", "I need to change my address", "how do I register my new address"],
                           "You can register your move online up to four weeks ahead."),
        "digital_id_help": (["I can't log in with my digital ID", "my digital ID app stopped working",
                             "I forgot my digital ID password"], "You can reset your digital ID at the citizens' service."),
        "waste_collection": (["when do they collect the bins", "my bin was not emptied",
                              "when is the garden waste collected"], "Household waste is collected every other Tuesday."),
        "goodbye": (["thank you goodbye", "that's all thanks bye", "great thank you"], "Goodbye."),
        "request_agent": (["can I speak to a person", "I want to talk to someone", "agent please"],
                          "I'll put you through to a colleague."),
        "case_status": (["what is happening with my case", "I sent an application three weeks ago",
                         "I want to complain about my case"], "A colleague can look at your case; please hold."),
        "callback_request": (["can someone call me back", "please call me back later"], "Which number can we call?"),
        "number": (["my number is 07700 900123", "it's 07700 900456"], "We will call you back within two working days."),
        "fallback": "Sorry, I didn't catch that. Could you say it in other words?",
        "odd": ["the thing with the green bins on the corner", "is it the blue form or the other one",
                "my neighbour's hedge", "hello hello is this the council", "what about the bridge toll",
                "I got a letter", "uh yes the thing", "can I park on the square"],
    },
    "da": {
        "opening_hours": (["hvornår har I åbent", "hvad er åbningstiden på lørdag", "har borgerservice åbent i dag"],
                          "Borgerservice har åbent på hverdage fra 8 til 18."),
        "passport": (["jeg skal have nyt pas", "hvordan fornyer jeg mit pas", "mit pas er udløbet"],
                     "Du kan bestille tid til pas på nettet eller hos mig nu."),
        "change_address": (["jeg skal flytte", "jeg skal melde flytning", "hvordan skifter jeg adresse"],
                           "Du kan melde flytning på borger.dk op til fire uger før."),
        "digital_id_help": (["jeg kan ikke logge på med MitID", "min MitID app virker ikke", "jeg har glemt min MitID"],
                            "Du kan få hjælp til MitID i borgerservice."),
        "waste_collection": (["hvornår bliver skraldet hentet", "min skraldespand blev ikke tømt",
                              "hvornår henter I haveaffald"], "Dagrenovation hentes hver anden tirsdag."),
        "goodbye": (["tak farvel", "det var det hele tak", "tusind tak"], "Farvel."),
        "request_agent": (["kan jeg tale med en medarbejder", "jeg vil gerne tale med et menneske", "medarbejder tak"],
                          "Jeg stiller dig videre til en kollega."),
        "case_status": (["hvordan går det med min sag", "jeg sendte en ansøgning for tre uger siden",
                         "jeg vil klage over min sag"], "En kollega kan se på din sag; bliv venligst ved telefonen."),
        "callback_request": (["kan I ringe mig op", "ring venligst tilbage senere"], "Hvilket nummer kan vi ringe til?"),
        "number": (["mit nummer er 20 30 40 50", "det er 31 42 53 64"], "Vi ringer dig op inden for to hverdage."),
        "fallback": "Undskyld, det forstod jeg ikke. Kan du sige det på en anden måde?",
        "odd": ["det med de grønne spande på hjørnet", "er det den blå blanket eller den anden", "naboens hæk",
                "hallo hallo er det kommunen", "hvad med broafgiften", "jeg har fået et brev", "øh ja det der",
                "må jeg parkere på torvet"],
    },
    "de": {
        "opening_hours": (["wann haben Sie geöffnet", "wie sind die Öffnungszeiten am Samstag",
                           "ist das Bürgeramt heute offen"], "Das Bürgeramt ist werktags von 8 bis 18 Uhr geöffnet."),
        "passport": (["ich brauche einen neuen Reisepass", "wie verlängere ich meinen Pass",
                      "mein Reisepass ist abgelaufen"], "Sie können online oder jetzt bei mir einen Termin buchen."),
        "change_address": (["ich ziehe um", "ich muss meine Adresse ändern", "wie melde ich meinen Umzug an"],
                           "Sie können sich bis zu vier Wochen vorher online ummelden."),
        "digital_id_help": (["ich komme mit der Online-Ausweisfunktion nicht rein", "die AusweisApp geht nicht",
                             "ich habe meine PIN vergessen"], "Eine neue PIN bekommen Sie im Bürgeramt."),
        "waste_collection": (["wann wird der Müll abgeholt", "meine Tonne wurde nicht geleert",
                              "wann kommt die Biotonne"], "Der Restmüll wird jeden zweiten Dienstag abgeholt."),
        "goodbye": (["danke tschüss", "das war alles danke", "vielen Dank auf Wiederhören"], "Auf Wiederhören."),
        "request_agent": (["kann ich mit einem Mitarbeiter sprechen", "ich möchte einen Menschen sprechen",
                           "Mitarbeiter bitte"], "Ich verbinde Sie mit einer Kollegin."),
        "case_status": (["was ist mit meinem Antrag", "ich habe vor drei Wochen einen Antrag gestellt",
                         "ich möchte mich über meinen Bescheid beschweren"],
                        "Eine Kollegin kann sich Ihren Vorgang ansehen; bitte bleiben Sie dran."),
        "callback_request": (["können Sie mich zurückrufen", "bitte rufen Sie mich später an"],
                             "Unter welcher Nummer erreichen wir Sie?"),
        "number": (["meine Nummer ist 0151 23456789", "das ist 030 1234567"],
                   "Wir rufen Sie innerhalb von zwei Werktagen zurück."),
        "fallback": "Entschuldigung, das habe ich nicht verstanden. Können Sie es anders sagen?",
        "odd": ["das mit den grünen Tonnen an der Ecke", "ist es das blaue Formular oder das andere",
                "die Hecke vom Nachbarn", "hallo hallo ist da die Stadt", "was ist mit der Brückenmaut",
                "ich habe einen Brief bekommen", "äh ja das Ding", "darf ich auf dem Marktplatz parken"],
    },
}
ODD_WEIGHTS = [1 / (rank + 1) for rank in range(8)]  # a few odd phrases come up again and again

Event = Tuple[str, dict]


class Caller:
    """Writes one made-up call's events: what the bot records on a real call, with per-turn
    latencies (end of speech, recogniser, dialogue, first audio)."""

    def __init__(self, rng: random.Random, language: str):
        self.rng, self.words = rng, PHRASES[language]
        self.events: List[Event] = []

    def turn(self, intent: Optional[str], said: str, answer: str, confidence: Optional[float] = None,
             keypad: Optional[str] = None, **decision) -> None:
        rng = self.rng
        if keypad:
            self.events.append(("dtmf", {"digit": keypad}))
            confidence = 1.0
        else:
            speech_ms = rng.randint(700, 4000)
            self.events.append(("heard", {"text": said, "confidence": round(rng.uniform(0.6, 0.98), 3),
                                          "end_of_speech_ms": rng.randint(295, 330), "asr_ms": rng.randint(8, 40),
                                          "speech_ms": speech_ms,
                                          "asr_busy_ms": int(speech_ms * rng.uniform(0.05, 0.35))}))
        if confidence is None:
            confidence = round(rng.uniform(0.5, 0.7) if rng.random() < 0.12 else rng.uniform(0.7, 0.99), 3)
        dialogue_ms = int(rng.lognormvariate(3.7, 0.35))  # ~40 ms, p95 ~75 ms
        self.events.append(("bot", {"intent": intent, "confidence": confidence, "entities": [], "texts": [answer],
                                    "dialogue_ms": dialogue_ms, **decision}))
        turn_ms = (0 if keypad else 300 + rng.randint(8, 40)) + dialogue_ms + rng.randint(1, 15) + rng.randint(30, 90)
        self.events.append(("playing", {"purpose": "answer", "text": answer, "turn_ms": turn_ms}))

    def topic(self, topic: str) -> None:
        utterances, answer = self.words[topic]
        if self.rng.random() < 0.1:  # chosen from the keypad menu
            self.turn(topic, "", answer, keypad=str(TOPICS.index(topic) + 1))
        else:
            self.turn(topic, self.rng.choice(utterances), answer)

    def not_understood(self, **decision) -> None:
        said = self.rng.choices(self.words["odd"], ODD_WEIGHTS)[0]
        self.turn("nlu_fallback", said, self.words["fallback"], round(self.rng.uniform(0.15, 0.45), 3), **decision)

    def said(self, intent: str, key: Optional[str] = None, **decision) -> None:
        utterances, answer = self.words[key or intent]
        self.turn(intent, self.rng.choice(utterances), answer, **decision)


def call_events(rng: random.Random, kind: str, line: tuple) -> Tuple[List[Event], Optional[Tuple[str, str]]]:
    """One call's events, and (number, topic) if the caller asked to be called back."""
    tenant, language, country, queue, via, _ = line
    caller, callback = Caller(rng, language), None
    caller.events.append(("answered", {}))
    topic = rng.choices(TOPICS, TOPIC_WEIGHTS)[0]
    if kind == "settled":
        for n in range(rng.choices((1, 2, 3), (0.55, 0.30, 0.15))[0]):
            if rng.random() < 0.08:  # not understood at first; the caller puts it another way
                caller.not_understood()
            caller.topic(topic if n == 0 else rng.choices(TOPICS, TOPIC_WEIGHTS)[0])
        if rng.random() < 0.7:
            caller.said("goodbye", hangup={"reason": "goodbye"})
            caller.events.append(("hangup", {"by": "bot"}))
        else:
            caller.events.append(("hangup", {"by": "caller"}))
    elif kind == "handoff":
        reason = rng.choices(("requested", "case_handling", "misunderstood"), (0.5, 0.35, 0.15))[0]
        topics = [topic]
        handoff = {"action": "handoff", "reason": reason, "queue": queue, "topics": topics}
        if reason == "requested":
            if rng.random() < 0.4:
                caller.topic(topic)
            if rng.random() < 0.4:
                caller.turn("request_agent", "", caller.words["request_agent"][1], keypad="0",
                            handoff={**handoff, "summary": f"topics: {topic}; last: (keypad: 0)"})
            else:
                caller.said("request_agent", handoff={**handoff, "summary": f"topics: {topic}; last: ..."})
        elif reason == "case_handling":
            caller.said("case_status", handoff={**handoff, "topics": ["case_status"],
                                                "summary": "topics: case_status; last: ..."})
        else:
            caller.not_understood()
            caller.not_understood()
            caller.not_understood(handoff={**handoff, "topics": [], "summary": "topics: none; last: ..."})
        if via == "refer":
            caller.events.append(("transfer", {"uri": "sip:contact-centre@127.0.0.1:5070", "headers": {}}))
            caller.events.append(("transfer_result", {"code": 202 if rng.random() < 0.95 else 486}))
            caller.events.append(("hangup", {"by": "bot"}))
        else:
            caller.events.append(("queue_entered", {"queue": queue, "position": rng.randint(1, 6)}))
            if rng.random() < 0.8:
                waited = round(min(300.0, 5 + rng.expovariate(1 / 45)), 1)
                if waited > 30:
                    caller.events.append(("queue_position", {"queue": queue, "position": rng.randint(1, 3)}))
                caller.events += [("agent_ringing", {"queue": queue, "agent": "anna", "handoff_ms": rng.randint(2, 12)}),
                                  ("agent_alerting", {"queue": queue, "agent": "anna", "handoff_ms": rng.randint(3, 15)}),
                                  ("queue_answered", {"queue": queue, "agent": "anna", "waited_s": waited}),
                                  ("bridged", {"queue": queue, "agent": "anna", "two_way_ms": rng.randint(1, 12)}),
                                  ("hangup", {"by": rng.choice(("caller", "agent"))})]
            else:
                caller.events += [("queue_abandoned", {"queue": queue, "waited_s": round(rng.uniform(20, 300), 1)}),
                                  ("hangup", {"by": "caller"})]
    elif kind == "abandoned":
        for _ in range(rng.choices((1, 2), (0.75, 0.25))[0]):
            caller.not_understood()
        caller.events.append(("hangup", {"by": "caller"}))
    else:  # callback
        asked = rng.random() < 0.5
        if asked:
            caller.topic(topic)
        caller.said("callback_request")
        number = country + "".join(str(rng.randint(0, 9)) for _ in range(9 if country == "+44" else 8))
        caller.said("callback_request", "number", callback={"action": "callback", "topic": topic},
                    hangup={"reason": "callback"})
        caller.events.append(("hangup", {"by": "bot"}))
        callback = (number, topic if asked else "")
    return caller.events, callback


KINDS = ("settled", "handoff", "abandoned", "callback")
KIND_WEIGHTS = (0.60, 0.25, 0.10, 0.05)


def hour_buckets(calls: int, days: int, now: dt.datetime, rng: random.Random) -> List[Tuple[dt.datetime, int]]:
    """(start of the hour, calls in it) over the last `days` days up to an hour ago."""
    start, hours = now - dt.timedelta(days=days), []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < now:
        for hour, weight in HOURS.items():
            at = day.replace(hour=hour)
            if start <= at < now - dt.timedelta(hours=1):
                hours.append((at, weight * WEEKDAYS[at.weekday()]))
        day += dt.timedelta(days=1)
    total = sum(w for _, w in hours)
    counts = [int(calls * w / total) for _, w in hours]
    for i in rng.sample(range(len(hours)), calls - sum(counts)):
        counts[i] += 1
    return [(at, n) for (at, _), n in zip(hours, counts) if n]


def generate(store: RecordStore, calls: int, days: int, rng: random.Random,
             say: Callable[[str], None] = print) -> List[Tuple[dt.datetime, dt.datetime, dt.datetime]]:
    """Writes the calls through the store's API, one hour of calls after another, each at the real
    time; returns (written from, written until, the hour they belong to) for shift_into_place()."""
    buckets, placed, done = hour_buckets(calls, days, utcnow(), rng), [], 0
    report_every = max(1, calls // 10)
    for hour, count in buckets:
        began = utcnow()
        for _ in range(count):
            line = rng.choices(LINES, [share for *_, share in LINES])[0]
            kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
            events, callback = call_events(rng, kind, line)
            call_id = f"{rng.getrandbits(96):024x}@bench.invalid"
            caller = line[2] + "".join(str(rng.randint(0, 9)) for _ in range(8))
            record = store.record(call_id, line[0], line[1], caller)
            for event, data in events:
                record.add(event, **data)
            if callback:  # as the action server does: the number kept whole, for the agents
                when = (hour + (utcnow() - began)).replace(tzinfo=dt.timezone.utc)  # where the call will be
                store.add_callback(line[0], call_id, callback[0], callback[1], when)
            record.end()
            done += 1
            if done % report_every == 0:
                say(f"  {done} calls")
            if done % 500 == 0:  # keep the writer's backlog (and memory) bounded; also faster
                store.flush(600)
        # The boundaries are in the stamps the records take when created, not in when the writer
        # gets to them: no need to wait for it here. The pauses keep two hours' stamps apart.
        time.sleep(0.001)
        placed.append((began, utcnow(), hour))
        time.sleep(0.001)
    if not store.flush(1800):
        raise RuntimeError("the record writer did not finish within 30 minutes")
    return placed


def shift_into_place(store: RecordStore, placed: Sequence[Tuple[dt.datetime, dt.datetime, dt.datetime]]) -> None:
    """Moves each hour's calls, turns and events from when they were written to the hour they
    belong to. The store stamps rows with the wall clock (Journal reads CallRecord.started when the
    record is created, and each event's time from time.time()), and its API has no way to write a
    call that happened earlier; so the calls are written now and shifted afterwards with one UPDATE
    per table and hour: the rows go through the store's own code, only their times are moved.
    Within an hour the calls keep the spacing they were written with, so each hour's calls sit in
    its first seconds (what the report and the per-day chart group by is unchanged)."""
    sqlite = store.engine.dialect.name == "sqlite"

    def moved(column, seconds: int):
        if sqlite:  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff': shift the seconds, keep the fraction
            whole = sa.func.substr(column, 1, 19)  # datetime() would round .9995 s up a second
            return sa.func.datetime(whole, f"{seconds:+d} seconds").op("||")(sa.func.substr(column, 20))
        return column + sa.literal(dt.timedelta(seconds=seconds), sa.Interval())

    with store.session.begin() as session:
        for began, until, hour in placed:
            seconds = int((hour - began).total_seconds())
            ids = sa.select(Call.id).where(Call.started_at >= began, Call.started_at < until).scalar_subquery()
            for table in (Turn, CallEvent):
                session.execute(sa.update(table).where(table.call_id.in_(ids))
                                .values(at=moved(table.at, seconds)).execution_options(synchronize_session=False))
            session.execute(sa.update(Call).where(Call.started_at >= began, Call.started_at < until)
                            .values(started_at=moved(Call.started_at, seconds), ended_at=moved(Call.ended_at, seconds))
                            .execution_options(synchronize_session=False))


def timed(work: Callable[[], object], repetitions: int = REPETITIONS) -> Dict[str, float]:
    times = []
    for _ in range(repetitions):
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    ordered = sorted(times)
    return {"p50_ms": round(ordered[(len(ordered) - 1) // 2], 1), "max_ms": round(ordered[-1], 1), "n": repetitions}


class DashboardPages:
    """The bot's own web app (voicebot.channels.http.create_app, dashboard included) on this
    store, driven in-process over ASGI and signed in as an admin: a page load is Sanic's routing,
    the session check, the page's store queries and its template, without a network between."""

    def __init__(self, store: RecordStore, nlu: bool = False):
        import asyncio
        import logging
        import secrets

        from voicebot.channels.http import create_app
        from voicebot.config.settings import load_installation
        from voicebot.dashboard.auth import Logins
        from voicebot.dialogue.runtime import Dialogue
        from voicebot.testing.lines import REPO

        inst = load_installation(REPO / "voicebot.yml")
        # Without the trained models loaded the inbox page shows no NLU guesses (and is quicker).
        dialogue = Dialogue(inst, "http://127.0.0.1:9")
        if nlu:
            dialogue.load()
        self.app = create_app(inst, dialogue, store, name=f"bench_records_{secrets.token_hex(4)}")
        logging.getLogger("sanic.root").setLevel(logging.WARNING)  # after Sanic configured logging
        logins, name, password = Logins(store.session), f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        logins.add_user(name, "admin", password)
        self.cookie = f"voicebot_session={logins.sign_in(name, password, '127.0.0.1')}".encode()
        self.loop = asyncio.new_event_loop()
        self.lifespan: "asyncio.Queue" = asyncio.Queue()
        self.started = asyncio.Event()
        self.task = self.loop.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                                   self.lifespan.get, self._lifespan_sent))
        self.lifespan.put_nowait({"type": "lifespan.startup"})
        self.loop.run_until_complete(asyncio.wait_for(self.started.wait(), 30))

    async def _lifespan_sent(self, message: dict) -> None:
        if message["type"].startswith("lifespan.startup"):
            self.started.set()

    def get(self, path: str, **query) -> bytes:
        import urllib.parse

        status, body = self.loop.run_until_complete(self._get(path, urllib.parse.urlencode(query)))
        if status != 200:
            raise RuntimeError(f"GET {path}?{urllib.parse.urlencode(query)}: {status} {body[:300]!r}")
        return body

    async def _get(self, path: str, query: str) -> Tuple[int, bytes]:
        import asyncio

        status, body, done, asked = [0], [], asyncio.Event(), [False]

        async def receive():
            if not asked[0]:
                asked[0] = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    done.set()

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                 "root_path": "", "headers": [(b"host", b"bench.invalid"), (b"cookie", self.cookie)],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
        await self.app(scope, receive, send)
        return status[0], b"".join(body)

    def close(self) -> None:
        import asyncio

        self.lifespan.put_nowait({"type": "lifespan.shutdown"})
        try:
            self.loop.run_until_complete(asyncio.wait_for(self.task, 10))
        except Exception:
            pass
        self.loop.close()


def run(calls: int = 100_000, store_url: Optional[str] = None, days: int = 30,
        say: Callable[[str], None] = print, nlu: bool = False) -> dict:
    """Generates `calls` calls into a fresh SQLite store in a temporary folder (or into store_url,
    e.g. an empty PostgreSQL database), times the report and the dashboard's pages, and prints
    and returns the figures (`lines`: the text for benchmarks/RESULTS.md). With `nlu` the trained
    models are loaded (about a minute), so the inbox page shows the trainers' NLU guesses."""
    with tempfile.TemporaryDirectory(prefix="bench-records-") as scratch:
        url = store_url or f"sqlite:///{Path(scratch) / 'records.sqlite3'}"
        store = RecordStore(url, Path(scratch), metrics=Metrics())
        try:
            return _run(store, url, calls, days, say, None if store_url else Path(scratch) / "records.sqlite3", nlu)
        finally:
            store.close()


def _run(store: RecordStore, url: str, calls: int, days: int, say: Callable[[str], None],
         database: Optional[Path], nlu: bool = False) -> dict:
    rng = random.Random(SEED)
    shown_url = make_url(url).render_as_string(hide_password=True)
    with store.session() as session:
        if session.scalar(sa.select(sa.func.count()).select_from(Call)):
            raise RuntimeError(f"{shown_url} already holds calls: the benchmark needs an empty store")
    say(f"writing {calls} calls over {days} days to {shown_url}")
    began = time.perf_counter()
    placed = generate(store, calls, days, rng, say)
    generate_s = time.perf_counter() - began
    began = time.perf_counter()
    shift_into_place(store, placed)
    shift_s = time.perf_counter() - began
    with store.session() as session:
        rows = {table.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(table))
                for table in (Call, Turn, CallEvent, Callback)}
    size_mb = round(sum(f.stat().st_size for f in database.parent.glob(database.name + "*")) / 1e6, 1) if database else None
    say(f"written in {generate_s:.1f} s ({calls / generate_s:.0f} calls/s), moved into place in {shift_s:.1f} s")

    now = utcnow()
    levels = {line[3]: SERVICE_LEVEL_S for line in LINES}
    one = "demo-kommune"
    reports = {}
    for label, since, line in (("last 7 days, all lines", now - dt.timedelta(days=7), None),
                               (f"last 7 days, {one}", now - dt.timedelta(days=7), one),
                               (f"last {days} days, all lines", now - dt.timedelta(days=days), None),
                               (f"last {days} days, {one}", now - dt.timedelta(days=days), one)):
        reports[label] = timed(lambda: store.report(since, line=line, service_levels=levels))
        say(f"  RecordStore.report(), {label}: p50 {reports[label]['p50_ms']} ms, max {reports[label]['max_ms']} ms")
    report = store.report(now - dt.timedelta(days=days), service_levels=levels)
    total = report.total

    pages, today = {}, now.date()
    if nlu:
        say("loading the trained models for the inbox page's NLU guesses")
    dashboard = DashboardPages(store, nlu)
    guesses = "with NLU guesses" if nlu else "no NLU guesses"
    try:
        period = {"since": str(today - dt.timedelta(days=days - 1)), "until": str(today)}
        for label, path, query in (("/dashboard/operations, last 7 days, all lines", "/dashboard/operations", {}),
                                   (f"/dashboard/operations, last 7 days, {one}", "/dashboard/operations",
                                    {"line": one}),
                                   (f"/dashboard/operations, last {days} days, all lines", "/dashboard/operations",
                                    period),
                                   (f"/dashboard/operations, last {days} days, {one}", "/dashboard/operations",
                                    {**period, "line": one}),
                                   (f"/dashboard/inbox, all lines, {guesses}", "/dashboard/inbox", {}),
                                   (f"/dashboard/inbox, {one}, {guesses}", "/dashboard/inbox", {"line": one})):
            pages[label] = timed(lambda: dashboard.get(path, **query))
            say(f"  GET {label}: p50 {pages[label]['p50_ms']} ms, max {pages[label]['max_ms']} ms")
        page_kb = round(len(dashboard.get("/dashboard/operations", **period)) / 1000, 1)
    finally:
        dashboard.close()

    worst = max(c["max_ms"] for c in {**reports, **pages}.values())
    lines = [f"{calls} calls over {days} days on the 3 demo lines, written through RecordStore.record/.add/.end"
             f" ({'SQLite, WAL' if store.engine.dialect.name == 'sqlite' else store.engine.dialect.name})",
             "  rows: " + ", ".join(f"{n} {name}" for name, n in rows.items())
             + (f"; database {size_mb} MB" if size_mb is not None else ""),
             f"  generation: {generate_s:.1f} s, {calls / generate_s:.0f} calls/s written"
             f" (then {shift_s:.1f} s to move each hour's rows to their hour in the past)",
             f"  mix ({days} days): containment {_pc(total.containment)}, handoff {_pc(total.handoff_rate)}"
             f" ({', '.join(f'{r} {n}' for r, n in total.handoff_reasons.most_common())}),"
             f" service level {_pc(total.service_level)}, abandoned in queue {_pc(total.abandon_rate)},"
             f" callbacks open {report.callbacks_open}",
             "  not understood most often: " + ", ".join(f"{t!r} {n}" for t, n in report.not_understood[:3]),
             "",
             f"  {'(ms, ' + str(REPETITIONS) + ' runs each)':<58}{'p50':>7}{'max':>7}",
             *[f"  RecordStore.report(), {label:<36}{c['p50_ms']:>7.0f}{c['max_ms']:>7.0f}"
               for label, c in reports.items()],
             *[f"  GET {label:<54}{c['p50_ms']:>7.0f}{c['max_ms']:>7.0f}" for label, c in pages.items()],
             f"  (pages: the bot's own app in-process over ASGI, signed in; no network. The operations page"
             f" for {days} days is {page_kb} kB.",
             "   The inbox page lists the newest 50 utterances waiting for review"
             + ("; it parses each for the trainers' NLU guesses.)" if nlu else
                "; without the models loaded (--nlu) it skips the NLU guesses it shows the trainers.)"),
             f"Target: report and page under {TARGET_MS} ms with {calls} calls: "
             f"{'met' if worst < TARGET_MS else 'NOT met'} (slowest run {worst:.0f} ms)"]
    for line in lines:
        say(line)
    return {"calls": calls, "days": days, "store": shown_url, "rows": rows, "database_mb": size_mb,
            "generate_s": round(generate_s, 1), "calls_per_s": round(calls / generate_s), "shift_s": round(shift_s, 1),
            "report": reports, "pages": pages, "operations_page_kb": page_kb, "mix": total.as_dict(),
            "nlu": nlu, "target_met": worst < TARGET_MS, "lines": lines}


def _pc(value: Optional[float]) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.0%}"


def main(calls: int = 100_000, store_url: Optional[str] = None, days: int = 30, output: Optional[Path] = None,
         say: Callable[[str], None] = print, nlu: bool = False) -> dict:
    """What `voicebot bench records --calls N [--days D] [--store-url URL] [--nlu] [--output FILE]`
    runs: the benchmark, its figures printed and written to benchmarks/RESULTS.md ("Records and
    report")."""
    from voicebot.bench.results import record
    from voicebot.testing.lines import REPO

    figures = run(calls, store_url, days, say, nlu)
    command = (f"voicebot bench records --calls {calls}" + (f" --days {days}" if days != 30 else "")
               + (" --nlu" if nlu else ""))
    if store_url:
        command += f" --store-url {make_url(store_url).render_as_string(hide_password=True)}"
    path = record(output or REPO / "benchmarks" / "RESULTS.md", SECTION, command, figures["lines"])
    say(f"results written to {path}")
    return figures


if __name__ == "__main__":  # python -m voicebot.bench.records [CALLS] [--nlu]
    import sys

    from voicebot import logs

    logs.configure()
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    main(numbers[0] if numbers else 100_000, nlu="--nlu" in sys.argv)
