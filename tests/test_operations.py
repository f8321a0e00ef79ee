"""Operations end to end on a running bot: text conversations and a phone call reach the store,
redacted; /metrics, the logs and `voicebot report` agree with it; data subject requests."""

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import AGENT_HOURS, DEMO_CITY, REPO, TextBot, metric, place_call
from voicebot.config import load_installation
from voicebot.store import RecordStore

CPR_DIGITS = "290472-4817"
CPR_SPOKEN_DA = "to ni nul fire syv to fire otte et syv"


@pytest.fixture(scope="module")
def ops(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ops")
    store_url = f"sqlite:///{folder / 'records.sqlite3'}"
    server = TextBot(AGENT_HOURS, store_url, sip=True, log=folder / "bot.log", lines=("demo-city", "demo-kommune"))
    server.store_url, server.store_file, server.log = store_url, folder / "records.sqlite3", folder / "bot.log"
    try:
        settled = server.conversation("demo-city", f"my personal number is {CPR_DIGITS}, when are you open?",
                                      "goodbye")
        server.live_id, _ = server.start("demo-kommune")
        # A question with it, so the conversation stays open whatever the model makes of the number.
        server.say("demo-kommune", server.live_id, f"mit cpr nummer er {CPR_SPOKEN_DA} hvornår har i åbent")
        server.handoff_id, _ = server.start("demo-city")
        handoff = server.say("demo-city", server.handoff_id, "I want to talk to a person")
        server.call = place_call(server.sip_uri(DEMO_CITY), "--dtmf", "1")
        server.call_record(server.call["call_id"])
        assert settled[-1]["hangup"] and handoff["handoff"]["reason"] == "requested"
        yield server
    finally:
        server.stop()


def cli(ops, *args):
    env = {**os.environ, "VOICEBOT_STORE_URL": ops.store_url}
    return subprocess.run([sys.executable, "-m", "voicebot.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_identifiers_never_reach_the_database_the_logs_or_the_metrics(ops):
    RecordStore(ops.store_url).flush()
    with sqlite3.connect(ops.store_file) as db:
        dump = "\n".join(db.iterdump())
    metrics = ops.text("/metrics")
    log = ops.log.read_text(errors="replace")
    for where, text in (("database", dump), ("log", log), ("metrics", metrics)):
        assert "290472" not in text and CPR_SPOKEN_DA not in text, where
    assert "my personal number is [cpr]" in dump and "[cpr]" in log  # stored and logged, redacted


def test_every_turn_is_stored_with_its_intent_source_and_latency(ops):
    store = RecordStore(ops.store_url)
    call = store.export(ops.call["call_id"])
    assert call["call"]["channel"] == "phone" and call["call"]["outcome"] == "settled"
    turn = call["turns"][0]
    assert (turn["source"], turn["text"], turn["intent"]) == ("keypad", "1", "opening_hours")
    assert turn["dialogue_ms"] is not None and turn["turn_ms"] is not None
    live = store.export(ops.live_id)
    assert live["call"]["outcome"] is None and live["call"]["channel"] == "text"
    handoff = store.export(ops.handoff_id)
    assert handoff["call"]["outcome"] == "handoff" and handoff["call"]["handoff_reason"] == "requested"
    assert [e["kind"] for e in handoff["events"]] == ["answered", "handoff"]


def test_metrics_count_calls_outcomes_handoffs_and_latency(ops):
    text = ops.text("/metrics")
    assert metric(text, "voicebot_calls_total", channel="text", tenant="demo-city") == 2
    assert metric(text, "voicebot_calls_total", channel="phone", tenant="demo-city") == 1
    assert metric(text, "voicebot_calls_ended_total", channel="text", outcome="settled", tenant="demo-city") == 1
    # By topic too, so that handoff rate per topic can be graphed ("none" if none was named).
    topics = re.findall(r'^voicebot_handoffs_total\{municipality="",reason="requested",tenant="demo-city",'
                        r'topic="([a-z_]+)"\} 1\.0$', text, re.M)
    assert len(topics) == 1, text
    assert metric(text, "voicebot_turn_latency_seconds_count", tenant="demo-city") >= 1
    assert metric(text, "voicebot_queue_callers", queue="demo-kommune-borgerservice") == 0
    assert metric(text, "voicebot_agents", state="available") == 0


def test_the_report_command_prints_the_figures_of_the_store(ops):
    today = dt.datetime.utcnow().strftime("%Y-%m-%d")
    done = cli(ops, "report", "--since", today, "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    total = figures["total"]
    assert (total["calls"], total["ended"]) == (4, 3)
    assert total["outcomes"] == {"settled": 2, "handoff": 1}
    assert total["containment"] == 0.667 and total["handoff_reasons"] == {"requested": 1}
    assert figures["by_line"]["demo-kommune"]["calls"] == 1 and figures["by_line"]["demo-kommune"]["ended"] == 0
    table = cli(ops, "report", "--since", today, "--line", "demo-city")
    assert table.returncode == 0 and re.search(r"^all\s+3\s+3\s+67%\s+33%", table.stdout, re.M), table.stdout
    bad = cli(ops, "report", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_a_data_subject_request_exports_then_deletes_one_conversation(ops):
    exported = cli(ops, "records", "export", ops.handoff_id)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["turns"][0]["text"] == "I want to talk to a person"
    deleted = cli(ops, "records", "delete", ops.handoff_id)
    assert deleted.returncode == 0 and "1 calls" in deleted.stdout
    again = cli(ops, "records", "export", ops.handoff_id)
    assert again.returncode == 1 and "no call" in again.stderr


def test_the_alert_rules_beside_the_grafana_dashboard_are_the_configured_thresholds():
    """ops/prometheus-alerts.yml is what `voicebot alert-rules` makes of voicebot.yml, and every
    rule asks for metrics the bot serves."""
    import yaml

    made = subprocess.run([sys.executable, "-m", "voicebot.cli", "alert-rules"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert made.stdout == (REPO / "ops/prometheus-alerts.yml").read_text(), "run: voicebot alert-rules > ops/prometheus-alerts.yml"
    rules = yaml.safe_load(made.stdout)["groups"][0]["rules"]
    settings = load_installation().settings
    assert {r["labels"]["queue"] for r in rules} == {q for q, queue in settings.queues.items() if queue.alert_when.callers_waiting}
    served = {"voicebot_queue_callers", "voicebot_queue_oldest_wait_seconds", "voicebot_queue_wait_seconds_bucket",
              "voicebot_queue_wait_seconds_count"}
    for rule in rules:
        assert set(re.findall(r"voicebot_[a-z_]+", rule["expr"])) <= served, rule
    assert 'le="60.0"' in next(r["expr"] for r in rules if r["alert"] == "VoicebotServiceLevel")  # a real bucket


def test_a_text_conversation_the_citizen_leaves_ends_then_not_half_an_hour_later(ops):
    conversation_id, _ = ops.start("demo-city")
    ops.say("demo-city", conversation_id, "when are you open")
    end = f"/lines/demo-city/conversations/{conversation_id}/end"
    assert ops.request("POST", end) == (200, {"ended": True})
    store, deadline = RecordStore(ops.store_url), time.monotonic() + 15
    while not (stored := (store.export(conversation_id) or {}).get("call") or {}).get("ended_at"):
        assert time.monotonic() < deadline, stored  # written off the loop, by the store's one writer thread
        time.sleep(0.05)
    assert stored["channel"] == "text" and stored["ended_at"] and stored["outcome"]
    assert ops.request("POST", end) == (200, {"ended": False})  # once
    assert ops.request("POST", f"/lines/demo-city/conversations/{'0' * 64}/end")[0] == 404  # not one it issued
    assert ops.request("POST", f"/lines/demo-kommune/conversations/{conversation_id}/end")[0] == 404  # another line's
    report = store.report(dt.datetime.utcnow() - dt.timedelta(hours=1))
    assert report.by_channel["text"].ended >= 1 and report.by_channel["phone"].calls >= 1  # apart
