"""The store on its own: records written from call events, outcomes, redaction before writing,
data subject requests, retention, the report's figures, SQLite and a real PostgreSQL."""

import datetime as dt
import json
import logging
import re
import os
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa

from conftest import REPO
from voicebot.config import ConfigError
from voicebot.store import RecordStore
from voicebot.store.records import spool_folder
from voicebot.store.writer import Write
from voicebot.store.models import Call, CallEvent, Turn

CPR = "120385-1234"


@pytest.fixture
def store(tmp_path):
    records = RecordStore(f"sqlite:///{tmp_path / 'records.sqlite3'}", review_below=0.7)
    yield records
    records.close()


def answered_call(store, call_id="call-1", tenant="demo-city", caller="+4512345678", topic="passport"):
    """A call the bot settles: a question, its answer, the caller says goodbye."""
    record = store.record(call_id, tenant, "en", caller)
    record.add("answered")
    record.add("heard", text=f"my cpr is {CPR} and I need a passport", confidence=0.9, end_of_speech_ms=300, asr_ms=14)
    record.add("bot", intent=topic, confidence=0.93, texts=["You can renew it online."], dialogue_ms=41)
    record.add("playing", purpose="answer", text="You can renew it online.", turn_ms=410)
    record.add("heard", text="goodbye", confidence=0.9, end_of_speech_ms=300, asr_ms=9)
    record.add("bot", intent="goodbye", confidence=0.99, texts=["Goodbye."], hangup={"reason": "goodbye"}, dialogue_ms=20)
    record.add("hangup", by="bot")
    record.end()
    return record


def handed_off_call(store, call_id, tenant="demo-kommune", waited_s=12.0, result="queue_answered", reason="requested"):
    record = store.record(call_id, tenant, "da", None)
    record.add("answered")
    record.add("dtmf", digit="0")
    record.add("bot", intent="request_agent", confidence=1.0, texts=["Et øjeblik."],
               handoff={"reason": reason, "queue": "borgerservice"}, dialogue_ms=5)
    record.add("queue_entered", queue="borgerservice", position=1)
    record.add(result, queue="borgerservice", agent="anna", waited_s=waited_s)
    record.add("hangup", by="caller")
    record.end()


def test_a_call_becomes_a_call_row_turns_and_events_with_identifiers_redacted(store):
    answered_call(store)
    data = store.export("call-1")
    assert data["call"]["outcome"] == "settled" and data["call"]["topic"] == "passport"
    assert data["call"]["caller_ending"] == "5678" and data["call"]["turns"] == 2
    first, second = data["turns"]
    assert first["text"] == "my cpr is [cpr] and I need a passport"
    assert (first["source"], first["intent"], first["confidence"]) == ("speech", "passport", 0.93)
    assert (first["end_of_speech_ms"], first["asr_ms"], first["dialogue_ms"], first["turn_ms"]) == (300, 14, 41, 410)
    assert first["review"] is None and second["intent"] == "goodbye"
    assert [e["kind"] for e in data["events"]] == ["answered", "hangup"]
    assert "1234" not in json.dumps(data) and "120385" not in json.dumps(data)


@pytest.mark.parametrize("first, second, stored", [
    ("mit cpr nummer er 010190", "1234", ["mit cpr nummer er [cpr]", "[cpr]"]),
    ("mit cpr nummer er nul et nul et ni nul.", "Et to tre fire, tak.", ["mit cpr nummer er [cpr].", "[cpr], tak."]),
    ("min mail er anna (at) kommune.dk og mit nummer er 12 34", "56 78",
     ["min mail er [email] og mit nummer er [phone]", "[phone]"]),
])
def test_an_identifier_said_over_two_turns_is_redacted_in_both_rows(store, tmp_path, caplog, first, second, stored):
    caplog.set_level(logging.INFO, logger="voicebot.store.record")
    record = store.record("split", "demo-kommune", "da", "+4512345678")
    record.add("heard", text=first, confidence=0.9)
    record.add("bot", intent="nlu_fallback", confidence=0.3, texts=["Undskyld, hvad sagde du?"])
    record.add("playing", purpose="answer", turn_ms=420)
    assert store.flush()  # the first turn is in the database before the caller goes on
    record.add("heard", text=second, confidence=0.9)
    record.add("bot", intent="nlu_fallback", confidence=0.3, texts=["Tak."])
    record.end()
    assert store.flush()
    with sqlite3.connect(tmp_path / "records.sqlite3") as db:
        rows = db.execute("SELECT text, turn_ms FROM turns WHERE call_id = 'split' ORDER BY seq").fetchall()
        dump = "\n".join(db.iterdump())
    assert rows == [(stored[0], 420), (stored[1], None)]
    assert [e["text"] for e in record.events if e["event"] == "heard"] == stored  # as the dashboard shows it
    for where, text in (("database", dump), ("log", caplog.text)):
        assert not any(part in text for part in ("010190", "1234", "nul et nul", "to tre fire", "12 34", "56 78")), where
    assert [r.getMessage().split("heard: ")[1] for r in caplog.records if "heard: " in r.getMessage()] == stored


def test_two_turns_before_the_reply_and_numbers_that_are_no_identifier(store, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="voicebot.store.record")
    record = store.record("split", "demo-kommune", "da")
    for text in ("mit cpr nummer er 010190", "1234", "jeg har to", "tre børn", "og de er 12"):
        record.add("heard", text=text)
        if text != "mit cpr nummer er 010190":  # the caller went on before the bot replied
            record.add("bot", intent="nlu_fallback", confidence=0.3, texts=["..."])
    record.end()  # logs the last turn, held back because it ended in a number
    assert store.flush()
    with sqlite3.connect(tmp_path / "records.sqlite3") as db:
        texts = [text for text, in db.execute("SELECT text FROM turns WHERE call_id = 'split' ORDER BY seq")]
    assert texts == ["[cpr]", "jeg har to", "tre børn", "og de er 12"]
    assert [e["text"] for e in record.events if e["event"] == "heard"] == [
        "mit cpr nummer er [cpr]", "[cpr]", "jeg har to", "tre børn", "og de er 12"]
    assert "010190" not in caplog.text and "1234" not in caplog.text
    assert caplog.text.count(" heard: ") == 5 and "heard: og de er 12" in caplog.text


@pytest.mark.parametrize("events, outcome", [
    ([("bot", {"intent": "nlu_fallback", "confidence": 0.3})], "abandoned"),
    ([], "abandoned"),
    ([("silence", {"count": 1}), ("silence", {"count": 2}), ("silence", {"count": 3})], "silence"),
    ([("bot", {"intent": "callback_request", "confidence": 0.9, "callback": {"action": "callback"}})], "callback"),
    ([("bot", {"intent": "complaint", "confidence": 0.9, "handoff": {"reason": "case_handling", "queue": "q"}}),
      ("callback_requested", {"queue": "q", "number_ending": "5678"})], "callback"),
    ([("bot", {"intent": "passport", "confidence": 0.9}), ("error", {})], "error"),
])
def test_how_a_call_ended_decides_its_outcome(store, events, outcome):
    record = store.record("c", "demo-city", "en")
    for kind, data in events:
        if kind == "bot":
            record.add("heard", text="something", confidence=0.5)
        record.add(kind, **data)
    record.end()
    assert store.export("c")["call"]["outcome"] == outcome


def test_fallback_and_low_confidence_speech_goes_to_the_review_inbox_keypad_does_not(store):
    record = store.record("c", "demo-city", "en")
    for source, text, intent, confidence in [("speech", "blorp the flange", "nlu_fallback", 0.31),
                                             ("speech", "pass port thing", "passport", 0.62),
                                             ("speech", "opening hours please", "opening_hours", 0.97)]:
        record.add("heard", text=text, source=source)
        record.add("bot", intent=intent, confidence=confidence, texts=["..."])
    record.add("dtmf", digit="9")
    record.add("bot", intent="nlu_fallback", confidence=0.0, texts=["..."])
    record.end()
    turns = store.export("c")["turns"]
    assert [(t["text"], t["review"]) for t in turns] == [
        ("blorp the flange", "pending"), ("pass port thing", "pending"), ("opening hours please", None), ("9", None)]


def test_a_confident_answer_met_with_a_request_for_a_person_or_the_same_question_goes_to_the_inbox(store):
    record = store.record("c", "demo-city", "en")
    for text, intent, handoff in [("can i get a parking permit", "office_location", None),
                                  ("no i want to talk to a person", "request_agent", {"reason": "requested"}),
                                  ("when do the bins go out", "waste_collection", None),
                                  ("what day are the bins collected", "waste_collection", None),
                                  ("thanks bye", "goodbye", None)]:
        record.add("heard", text=text)
        record.add("bot", intent=intent, confidence=0.95, texts=["..."], handoff=handoff)
    record.end()
    turns = store.export("c")["turns"]
    assert [(t["text"], t["review"]) for t in turns] == [
        ("can i get a parking permit", "pending"), ("no i want to talk to a person", None),
        ("when do the bins go out", "pending"), ("what day are the bins collected", None), ("thanks bye", None)]
    reasons = {t.text: t.review_reason for t in store.inbox(["demo-city"])}
    assert reasons == {"can i get a parking permit": "asked_for_a_person", "when do the bins go out": "asked_again"}


def test_a_confident_answer_met_with_a_no_or_hung_up_on_goes_to_the_inbox_a_content_caller_does_not(store):
    """Every answer ends "Anything else?": a plain "no" to that, or hanging up on it, is a caller
    who has had the answer. A "no" that corrects the question or is said over the answer, and a
    hang-up before the answer's own words were out (CallSession._cut_off), doubt it."""
    def no(text: str, ends_call: bool = True) -> list:
        reply = {"hangup": {"reason": "goodbye"}} if ends_call else {}
        return [("heard", {"text": text}), ("bot", {"intent": "deny", "confidence": 0.9, "texts": ["..."], **reply})]

    talked_over = [("barge_in", {"stop_ms": 120, "dropped_ms": 2400, "during": "answer"})]
    over_the_question = [("barge_in", {"stop_ms": 120, "dropped_ms": 600})]
    calls = [("when is the tip open on saturday", "opening_hours", no("no, I meant Sunday", ends_call=False)),
             ("how do i renew my passport", "passport", talked_over + no("no")),
             ("where is the town hall", "office_location", no("no thanks")),
             ("what are the library hours", "opening_hours", over_the_question + no("no")),
             ("are you a robot", "chitchat", talked_over + no("no")),
             ("when do the bins go out", "waste_collection", [("hangup", {"by": "caller", "during": "answer"})]),
             ("can i get a parking permit", "office_location", [("hangup", {"by": "caller"})])]
    for number, (question, intent, after) in enumerate(calls):
        record = store.record(f"c{number}", "demo-city", "en")
        record.add("heard", text=question)
        record.add("bot", intent=intent, confidence=0.95, texts=["The answer.", "Anything else?"])
        for kind, data in after:
            record.add(kind, **data)
        record.end()
    reasons = {t.text: t.review_reason for t in store.inbox(["demo-city"])}
    assert reasons == {"when is the tip open on saturday": "said_no", "how do i renew my passport": "said_no",
                       "when do the bins go out": "hung_up"}


def test_conversations_are_found_by_line_topic_outcome_and_period_newest_first(store):
    answered_call(store, "settled-city", topic="passport")
    answered_call(store, "settled-kommune", tenant="demo-kommune", topic="passport")
    handed_off_call(store, "handed-off-city", tenant="demo-city")
    answered_call(store, "years-ago", topic="passport")
    store.flush()  # its row is written before it is moved back in time
    with store.session.begin() as session:
        session.execute(sa.update(Call).where(Call.id == "years-ago").values(started_at=dt.datetime(2020, 1, 1)))
    today = dt.datetime.combine(dt.date.today(), dt.time())
    week = (today - dt.timedelta(days=6), today + dt.timedelta(days=1))

    def found(*args, **kwargs) -> list:
        return [call.id for call in store.conversations(["demo-city"], *week, *args, **kwargs)]

    assert found() == ["handed-off-city", "settled-city"]
    assert found(topic="passport") == ["settled-city"]
    assert found(outcome="handoff") == ["handed-off-city"] and found(topic="passport", outcome="handoff") == []
    assert found(limit=1) == ["handed-off-city"] and found(limit=1, offset=1) == ["settled-city"]
    assert [c.id for c in store.conversations(["demo-city"], dt.datetime(2019, 12, 31), dt.datetime(2020, 1, 2))] == [
        "years-ago"]


def test_export_and_delete_answer_a_data_subject_request(store):
    answered_call(store, "keep")
    answered_call(store, "forget")
    store.add_callback("demo-city", "forget", "+4512345678", "passport", dt.datetime.now(dt.timezone.utc))
    assert store.export("forget")["callbacks"][0]["number"] == "+4512345678"
    assert store.delete("forget") == {"turns": 2, "call_events": 2, "callbacks": 1, "calls": 1}
    assert store.export("forget") is None and store.export("keep") is not None
    assert store.delete("forget")["calls"] == 0


def test_retention_deletes_what_is_older_than_the_line_keeps(store):
    answered_call(store, "old", tenant="demo-city")
    answered_call(store, "other-line", tenant="stadt-kreis")
    answered_call(store, "new", tenant="demo-city")
    store.flush()
    long_ago = dt.datetime.utcnow() - dt.timedelta(days=40)
    with store.session.begin() as session:
        session.execute(sa.update(Call).where(Call.id.in_(["old", "other-line"])).values(started_at=long_ago))

    class Line:
        def __init__(self, id, retention_days):
            self.id, self.retention_days = id, retention_days

    assert store.purge_expired([Line("demo-city", 30), Line("stadt-kreis", 60)]) == {"demo-city": 1, "stadt-kreis": 0}
    with store.session() as session:
        assert sorted(session.scalars(sa.select(Call.id))) == ["new", "other-line"]
        assert session.scalar(sa.select(sa.func.count()).select_from(Turn).where(Turn.call_id == "old")) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(CallEvent).where(CallEvent.call_id == "old")) == 0


def test_the_report_counts_containment_handoffs_service_level_and_misses(store):
    answered_call(store, "a1")
    answered_call(store, "a2", topic="opening_hours")
    handed_off_call(store, "h1", waited_s=10)  # within the 60 s service level
    handed_off_call(store, "h2", waited_s=95)  # answered late
    handed_off_call(store, "h3", waited_s=30, result="queue_abandoned", reason="misunderstood")
    for n, text in enumerate(["blorp", "blorp", "flange"]):
        record = store.record(f"m{n}", "demo-city", "en")
        record.add("heard", text=text)
        record.add("bot", intent="nlu_fallback", confidence=0.2, texts=["Sorry?"])
        record.add("hangup", by="caller")
        record.end()
    live = store.record("live", "demo-city", "en")
    live.add("answered")

    since = dt.datetime.utcnow() - dt.timedelta(hours=1)
    report = store.report(since, service_levels={"borgerservice": 60})
    total = report.total
    assert (total.calls, total.ended) == (9, 8)
    assert total.outcomes == {"settled": 2, "handoff": 3, "abandoned": 3}
    assert total.containment == 0.25 and total.handoff_rate == 0.375
    assert total.handoff_reasons == {"requested": 2, "misunderstood": 1}
    assert (total.queued, total.answered, total.abandoned) == (3, 2, 1)
    assert total.service_level == round(1 / 3, 3) and total.abandon_rate == round(1 / 3, 3)
    assert total.average_wait_s == round((10 + 95 + 30) / 3, 1)
    assert report.by_line["demo-kommune"].handoff_rate == 1.0 and report.by_line["demo-city"].containment == 0.4
    assert report.by_topic["passport"].calls == 1 and report.by_topic["request_agent"].calls == 3
    assert report.not_understood == [("blorp", 2), ("flange", 1)]
    only = store.report(since, line="demo-kommune", service_levels={"borgerservice": 60})
    assert only.total.calls == 3 and list(only.by_line) == ["demo-kommune"]
    assert store.report(dt.datetime.utcnow() + dt.timedelta(minutes=1)).total.calls == 0


def test_stores_opened_on_several_threads_at_once_are_all_migrated(tmp_path):
    """Alembic keeps a migration's context in module globals; a test harness opened two bots' stores
    at once and one failed with KeyError: 'config'. Eight threads, released together, four rounds."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier
    from voicebot.store.database import open_store

    start = Barrier(8)

    def migrated_tables(name):
        start.wait()
        engine = open_store(f"sqlite:///{tmp_path / name}.sqlite3")
        try:
            return set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()

    for round_ in range(4):
        with ThreadPoolExecutor(8) as pool:
            tables = list(pool.map(migrated_tables, [f"r{round_}-{n}" for n in range(8)]))
        assert all({"calls", "turns", "alembic_version"} <= found for found in tables), tables


def test_postgresql_is_migrated_and_a_database_away_costs_a_delay_not_a_record(postgres, tmp_path):
    store = RecordStore(postgres.url, tmp_path)
    try:
        answered_call(store, "before")
        assert store.flush()
        postgres.stop()
        for n in range(5):
            answered_call(store, f"while-down-{n}")
        assert not store.flush(timeout=1)  # waiting for the database, records kept on disk
        assert "while-down-4" in spooled(postgres.url, tmp_path)
        postgres.start()
        assert store.flush(timeout=30)
        assert spooled(postgres.url, tmp_path) == ""
        with store.session() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(Call)) == 6
            assert session.scalar(sa.select(sa.func.count()).select_from(Turn)) == 12
        assert store.export("while-down-4")["call"]["outcome"] == "settled"
    finally:
        store.close()
    RecordStore(postgres.url).close()  # a second start finds the schema up to date


SPOOLING_WORKER = """
import datetime as dt, sys, time
sys.path.insert(0, "tests")
from test_records import answered_call
from voicebot.store import RecordStore
from voicebot.store.records import spool_folder
from voicebot.store.writer import Write
store = RecordStore(sys.argv[1], __import__("pathlib").Path(sys.argv[2]), migrate=False)
for n in range(5):
    answered_call(store, f"spooled-{n}")
store.add_callback("demo-city", "spooled-4", "+4512345678", "passport", dt.datetime.now(dt.timezone.utc))
assert not store.flush(timeout=3)
print("spooled", flush=True)
time.sleep(600)
"""


def test_records_spooled_by_a_worker_killed_while_postgresql_is_away_are_written_by_the_next_start(postgres, tmp_path):
    """The worker is killed (SIGKILL: no shutdown) with its records only in its spool file."""
    RecordStore(postgres.url, tmp_path).close()  # migrated
    postgres.stop()
    worker = subprocess.Popen([sys.executable, "-c", SPOOLING_WORKER, postgres.url, str(tmp_path)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "spooled"
    finally:
        worker.kill()
        worker.wait()
    postgres.start()
    assert spooled(postgres.url, tmp_path).count("spooled-3") >= 2  # the call row and its turns
    store = RecordStore(postgres.url, tmp_path)  # the restarted worker adopts the spool
    try:
        assert store.flush(timeout=30)
        assert spooled(postgres.url, tmp_path) == ""
        assert store.export("spooled-4")["call"]["outcome"] == "settled"
        with store.session() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(Call)) == 5
            assert session.scalar(sa.select(sa.func.count()).select_from(Turn)) == 10
        assert [c.conversation_id for c in store.open_callbacks("demo-city")] == ["spooled-4"]
    finally:
        store.close()


def test_a_spool_line_cut_short_by_a_crash_is_skipped_and_the_rest_written(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    RecordStore(url, tmp_path).close()
    folder = spool_folder(url, tmp_path)
    folder.mkdir(parents=True)
    call = Write("calls", {"id": "crashed", "channel": "phone", "tenant": "demo-city", "turns": 0,
                           "started_at": dt.datetime(2026, 11, 24, 9, 30)})
    (folder / "records-1-dead.jsonl").write_text(call.to_json() + "\n" + call.to_json()[:20])
    store = RecordStore(url, tmp_path)
    try:
        assert store.flush(timeout=10)
        assert store.export("crashed")["call"]["started_at"] == "2026-11-24T09:30:00"
        assert not list(folder.iterdir())
    finally:
        store.close()


def spooled(url, root) -> str:
    return "".join(path.read_text() for path in spool_folder(url, root).glob("records-*.jsonl"))


def test_an_unreachable_postgresql_at_start_up_is_a_clear_error(postgres):
    postgres.stop()
    with pytest.raises(ConfigError, match=r"store_url: cannot reach the database at .*127\.0\.0\.1:\d+/voicebot.*"):
        RecordStore(postgres.url)


def test_the_bot_does_not_start_on_an_unreachable_database_and_says_why(postgres):
    postgres.stop()
    env = {**os.environ, "VOICEBOT_STORE_URL": postgres.url}
    done = subprocess.run([sys.executable, "-m", "voicebot.cli", "serve", "--no-sip", "--port", "0"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "store_url: cannot reach the database at postgresql+psycopg2://postgres@127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_records_benchmark_runs_and_writes_its_figures(tmp_path):
    results = tmp_path / "RESULTS.md"
    done = subprocess.run([sys.executable, "-m", "voicebot.cli", "bench", "records", "--calls", "200",
                           "--output", str(results)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = results.read_text()
    assert "## Records and report" in text and "200 calls over 30 days" in text
    assert re.search(r"GET /dashboard/operations, last 30 days, all lines\s+\d+\s+\d+", text)


def test_a_quiet_text_conversation_is_over_after_half_an_hour(store):
    import collections
    import time

    from voicebot.channels.http import IDLE_CONVERSATION_S, close_quiet

    conversations = collections.OrderedDict()
    for name in ("quiet", "active"):
        record = conversations[name] = store.record(name, "demo-city", "en", channel="text")
        record.add("heard", text="when are you open", source="text")
        record.add("bot", intent="opening_hours", confidence=0.9, texts=["..."])
    conversations["quiet"].started -= IDLE_CONVERSATION_S + 1
    close_quiet(conversations, time.time())
    assert list(conversations) == ["active"]
    assert store.export("quiet")["call"]["outcome"] == "settled" and store.export("active")["call"]["outcome"] is None


def test_a_worker_started_again_ends_the_calls_it_left_open_and_only_those(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    before = RecordStore(url, tmp_path, worker="host:8080")
    other = RecordStore(url, tmp_path, worker="host:8081")
    try:
        for store, call_id in ((before, "cut-off"), (other, "elsewhere")):
            store.record(call_id, "demo-city", "en", "+4512345678").add("answered")
        answered_call(before, "finished")
        before.record("chat-1", "demo-city", "en", channel="text").add("bot", intent="greet", texts=["Hello"])
        assert before.flush() and other.flush()
    finally:
        before.writer.stop()  # as if killed: nothing more is written, nothing is ended
    again = RecordStore(url, tmp_path, worker="host:8080")
    try:
        assert again.end_orphans() == 2
        assert again.end_orphans() == 0
        assert [again.export(c)["call"]["outcome"] for c in ("cut-off", "chat-1", "finished")] == ["error", "error", "settled"]
        assert "worker_lost" in {e["kind"] for e in again.export("cut-off")["events"]}
        assert again.export("elsewhere")["call"]["outcome"] is None  # another worker's live call
    finally:
        again.close()
        other.close()


def test_a_call_id_a_spreadsheet_would_run_is_exported_as_text():
    """A Call-ID is whatever the caller's phone sent: in the calls CSV it is never a formula."""
    import csv
    import datetime as dt

    from voicebot.store.csv_export import calls_csv
    from voicebot.store.models import Call

    forged = Call(id='=HYPERLINK("http://evil.example","x")', channel="phone", tenant="demo-city",
                  started_at=dt.datetime(2026, 12, 1, 9), turns=2, caller_ending="-123", outcome="settled")
    row = next(csv.DictReader(calls_csv([forged]).splitlines()))
    assert row["id"] == "'" + forged.id and row["caller_ending"] == "'-123"
    assert row["started_at"] == "2026-12-01T09:00:00Z" and row["outcome"] == "settled" and row["waited_s"] == ""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_trend_splits_the_report_by_hour_with_empty_hours_as_zero(database, tmp_path, request):
    """The same figures as the report, per hour and per topic, on either database (each has its
    own way to name an hour)."""
    url = (f"sqlite:///{tmp_path / 'records.sqlite3'}" if database == "sqlite"
           else request.getfixturevalue("postgres").url)
    store = RecordStore(url, tmp_path)
    try:
        line = f"trend-{tmp_path.name}"[:60]  # this test's own calls, in a database others share
        now = dt.datetime.utcnow()
        answered_call(store, f"{line}-a1", tenant=line)
        handed_off_call(store, f"{line}-h1", tenant=line, waited_s=10)
        handed_off_call(store, f"{line}-h2", tenant=line, waited_s=30, result="queue_abandoned", reason="misunderstood")
        hour = now.replace(minute=0, second=0, microsecond=0)
        since, until = hour - dt.timedelta(hours=2), hour + dt.timedelta(hours=1)  # up to the end of this hour
        trend = store.trend(since, until, "hour", "topic", line, {"borgerservice": 60})
        report = store.report(since, until, line, {"borgerservice": 60})
        assert len(trend.periods) == 3 and trend.periods[-1] == now.strftime("%Y-%m-%d %H:00")
        assert [f.calls for f in trend.total] == [0, 0, 3]  # the empty hours are there, as zero
        assert trend.total[-1].as_dict() == report.total.as_dict()
        assert {name: series[-1].calls for name, series in trend.by.items()} == {"passport": 1, "request_agent": 2}
        assert trend.by["request_agent"][-1].handoff_reasons == {"requested": 1, "misunderstood": 1}
        days = store.trend(since, until, "day", "line", None, {"borgerservice": 60})
        assert days.by[line][-1].calls == 3
    finally:
        store.close()
