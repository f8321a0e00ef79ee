"""The bot's own agent queue, with real calls over 127.0.0.1: baresip softphones as agents that
register with digest authentication, the test caller as the citizen, the bot in between."""

import json
import re
from concurrent.futures import ThreadPoolExecutor
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import AGENT_HOURS, DEMO_KOMMUNE, STADT_KREIS, TextBot, events, place_call
from peers import wav_samples
from voicebot.audio.tts import Speech
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.ports import free_port
from voicebot.testing.agents import BaresipAgent, build_demo

CALLER_ID = "4512345678"
AGENT_TONE, CALLER_TONE = 600, 1000
PASSWORDS = {"anna": "anna-secret-pw", "bo": "bo-secret-pw", "cai": "cai-secret-pw"}


class QueueBot(TextBot):
    def __init__(self, root: Path, store_url: str):
        self.registrar_port, self.desk_port = free_port(), free_port()
        # The German queue rings all free agents at once and takes one caller at most.
        config = build_demo(root, PASSWORDS, self.desk_port,
                                  only={"stadt-kreis-pool": {"max_waiting": 1, "strategy": "ring_all"},
                                        # one caller waiting is over the wallboard's threshold
                                        "demo-kommune-borgerservice": {"alert_when": {"callers_waiting": 1}}},
                                  ring_timeout_s=4, wrap_up_s=1, announce_every_s=6)
        settings = yaml.safe_load(config.read_text())  # agents dial through the contact centre's PBX
        settings.setdefault("dashboard", {})["dial_sip_domain"] = "pbx.example.org"
        config.write_text(yaml.safe_dump(settings, allow_unicode=True))
        super().__init__(AGENT_HOURS, store_url, sip=True, config=config, lines=("demo-kommune", "stadt-kreis"),
                         extra_args=("--registrar-port", str(self.registrar_port)))

    def agent_state(self, agent_id: str) -> str:
        return next(a for a in self.request("GET", "/queues")[1]["agents"] if a["id"] == agent_id)["state"]

    def wait_for_agents(self, state: str, *agent_ids: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while {self.agent_state(a) for a in agent_ids} != {state}:
            assert time.monotonic() < deadline, self.request("GET", "/queues")[1]
            time.sleep(0.2)

    def set_state(self, agent_id: str, state: str) -> None:
        assert self.request("POST", f"/agents/{agent_id}/state", json.dumps({"state": state}).encode())[0] == 200

    def queue_stats(self, queue_id: str, tenant: str) -> dict:
        queue = next(q for q in self.request("GET", "/queues")[1]["queues"] if q["id"] == queue_id)
        return queue["stats"].get(tenant, {})


@pytest.fixture(scope="module")
def queue_bot(trained, tmp_path_factory, store_url):
    server = QueueBot(tmp_path_factory.mktemp("queue"), store_url)
    server.set_state("desk", "paused")  # no phone behind it until a test starts one
    yield server
    server.stop()


@pytest.fixture
def agents(queue_bot, tmp_path):
    """Start agents (baresip) with agents(user, answer=...); all are stopped (and log out) after the test."""
    started = []

    def start(user: str, **options) -> BaresipAgent:
        agent = BaresipAgent(queue_bot.registrar_port, user, PASSWORDS[user], tmp_path / user, tone=AGENT_TONE,
                             **options)
        started.append(agent)
        return agent
    yield start
    for agent in started:
        agent.stop()
    queue_bot.wait_for_agents("logged_out", *PASSWORDS)
    for user in PASSWORDS:  # those paused for not answering
        queue_bot.set_state(user, "available")
    queue_bot.wait_for_agents("logged_out", *PASSWORDS)


def tone_share(path: Path, freq: float, start_s: float = 0.0) -> float:
    """The share of the signal's energy within 50 Hz of freq, from start_s on."""
    samples, rate = wav_samples(path)
    samples = samples[int(start_s * rate):]
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[np.abs(freqs - freq) < 50].sum() / max(spectrum.sum(), 1e-9))


def tone_wav(path: Path, freq: float, seconds: float) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    path.write_bytes(Speech((np.sin(2 * np.pi * freq * t) * 0.3 * 32767).astype("<i2").tobytes(), 16000).wav_bytes())
    return path


def test_caller_reaches_a_registered_agent_and_audio_flows_both_ways(queue_bot, agents, tmp_path):
    anna = agents("anna")
    queue_bot.wait_for_agents("available", "anna")
    heard = tmp_path / "caller-heard.wav"
    timeline = place_call(queue_bot.sip_uri(DEMO_KOMMUNE), "--from", CALLER_ID, "--dtmf", "0", "--wait", "14",
                          "--wav", str(tone_wav(tmp_path / "tone.wav", CALLER_TONE, 3)), "--wait", "2",
                          record=heard, timeout=40)
    record = queue_bot.call_record(timeline["call_id"])
    assert [e["agent"] for e in events(record, "queue_answered")] == ["anna"], record["events"]
    assert events(record, "bridged") and not events(record, "agent_lost"), json.dumps(record["events"])
    # Both ways through the bridge: the agent's tone at the caller, the caller's at the agent.
    assert tone_share(heard, AGENT_TONE, start_s=14) > 0.3
    assert tone_share(anna.heard(), CALLER_TONE) > 0.1
    # The context went with the INVITE to the agent.
    trace = anna.log.read_text()
    assert "X-Voicebot-Tenant: demo-kommune" in trace and f"X-Voicebot-Conversation: {timeline['call_id']}" in trace
    assert "X-Voicebot-Reason: requested" in trace
    assert re.search(rf'From: "Demo Kommune[^"]*: {CALLER_ID}" <sip:{CALLER_ID}@', trace), trace[:3000]
    # The caller hung up: the agent's call ended too, and the agent is in wrap-up, then available.
    queue_bot.wait_for_agents("available", "anna")


def test_a_forged_caller_id_reaches_the_agents_phone_as_a_withheld_number(queue_bot, agents):
    """Quotes, angle brackets and line breaks, escaped in the From's user part, are a caller ID a
    spoofing caller can send: the agent's INVITE still parses, shows no number, and the call goes on."""
    anna = agents("anna")
    queue_bot.wait_for_agents("available", "anna")
    forged = "+45%22%3E%0D%0AX-Evil%3A%201%3Csip%3Ax%40y%3E"
    timeline = place_call(queue_bot.sip_uri(DEMO_KOMMUNE), "--from", forged, "--dtmf", "0", "--wait", "12",
                          timeout=40)
    record = queue_bot.call_record(timeline["call_id"])
    assert events(record, "bridged"), json.dumps(record["events"])
    trace = anna.log.read_text()
    assert re.search(r'^From: "Demo Kommune[^"\r\n]*: number withheld" <sip:anonymous@127\.0\.0\.1', trace, re.M), \
        trace[:3000]
    assert "X-Evil" not in trace and "Evil" not in trace
    queue_bot.wait_for_agents("available", "anna")


def test_an_agent_who_does_not_answer_is_paused_and_the_next_one_rings(queue_bot, agents, tmp_path):
    agents("anna", answer=False)
    queue_bot.wait_for_agents("available", "anna")
    agents("bo")  # registered later: anna has been idle longer and rings first
    queue_bot.wait_for_agents("available", "bo")
    timeline = place_call(queue_bot.sip_uri(DEMO_KOMMUNE), "--dtmf", "0", "--wait", "16", timeout=40)
    record = queue_bot.call_record(timeline["call_id"])
    assert [e["agent"] for e in events(record, "agent_ringing")] == ["anna", "bo"], record["events"]
    assert events(record, "agent_missed")[0]["why"] == "no answer"
    assert events(record, "queue_answered")[0]["agent"] == "bo" and events(record, "bridged"), json.dumps(record["events"])
    assert events(record, "agent_alerting") and events(record, "agent_alerting")[0]["handoff_ms"] < 1000
    assert queue_bot.agent_state("anna") == "paused"


def test_a_caller_who_hangs_up_while_queued_is_counted_abandoned_and_the_agent_stops_ringing(
        queue_bot, agents, tmp_path):
    anna = agents("anna", answer=False)
    queue_bot.wait_for_agents("available", "anna")
    before = queue_bot.queue_stats("demo-kommune-borgerservice", "demo-kommune").get("abandoned", 0)
    timeline = place_call(queue_bot.sip_uri(DEMO_KOMMUNE), "--dtmf", "0", "--wait", "2", timeout=30)
    record = queue_bot.call_record(timeline["call_id"])
    assert events(record, "queue_abandoned"), record["events"]
    assert queue_bot.queue_stats("demo-kommune-borgerservice", "demo-kommune")["abandoned"] == before + 1
    time.sleep(6)  # longer than the ring timeout: nothing rings her again
    assert queue_bot.agent_state("anna") == "available"  # not her fault: not paused
    trace = anna.log.read_text()
    assert trace.count("INVITE sip:") == 1 and "CANCEL sip:" in trace, trace[-3000:]


def test_a_waiting_caller_asks_for_a_callback_and_confirms_caller_id_on_the_keypad(
        queue_bot, agents, store_url, tmp_path):
    from voicebot.store import RecordStore

    agents("anna", answer=False)  # rings, never answers: the caller waits
    queue_bot.wait_for_agents("available", "anna")
    timeline = place_call(queue_bot.sip_uri(DEMO_KOMMUNE), "--from", CALLER_ID, "--dtmf", "0", "--wait", "5",
                          "--dtmf", "1", "--wait", "6", "--dtmf", "1", "--wait", "12", timeout=40)
    record = queue_bot.call_record(timeline["call_id"])
    assert events(record, "callback_requested")[0]["number_ending"] == CALLER_ID[-4:], record["events"]
    assert timeline["hung_up_by"] == "bot"  # after saying when we will call back
    assert events(record, "playing")[-1]["purpose"] == "callback_recorded"
    stored = [c for c in RecordStore(store_url).open_callbacks("demo-kommune")
              if c.conversation_id == timeline["call_id"]]
    assert [c.number for c in stored] == [CALLER_ID]
    listed = queue_bot.request("GET", "/lines/demo-kommune/callbacks")[1]
    mine = [c for c in listed if c["conversation_id"] == timeline["call_id"]]
    assert [c["number"] for c in mine] == [CALLER_ID] and mine[0]["attempts"] == 0
    assert mine[0]["due_at"] > mine[0]["requested_at"] and mine[0]["due_at"].endswith(("+01:00", "+02:00"))


def test_two_lines_share_one_agent_who_answers_them_in_turn(queue_bot, agents, tmp_path):
    agents("anna")
    queue_bot.wait_for_agents("available", "anna")
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(place_call, queue_bot.sip_uri(DEMO_KOMMUNE), "--dtmf", "0", "--wait", "12", timeout=40)
        time.sleep(2)
        second = pool.submit(place_call, queue_bot.sip_uri(STADT_KREIS), "--dtmf", "0", "--wait", "30", timeout=50)
        records = [queue_bot.call_record(f.result()["call_id"]) for f in (first, second)]
    assert [events(r, "queue_answered")[0]["agent"] for r in records] == ["anna", "anna"], records[1]["events"]
    # The German caller waited for the Danish call to end (and anna's wrap-up).
    assert events(records[1], "queue_answered")[0]["waited_s"] > 3
    assert events(records[1], "queue_position"), "told where they stand while waiting"


def test_ring_all_rings_every_free_agent_and_the_first_to_answer_gets_the_caller(queue_bot, agents):
    agents("anna", answer=False)
    agents("bo")
    queue_bot.wait_for_agents("available", "anna", "bo")
    timeline = place_call(queue_bot.sip_uri(STADT_KREIS), "--barge-in", "--dtmf", "0", "--wait", "10", timeout=30)
    record = queue_bot.call_record(timeline["call_id"])
    assert sorted(e["agent"] for e in events(record, "agent_ringing")) == ["anna", "bo"], record["events"]
    assert events(record, "queue_answered")[0]["agent"] == "bo" and events(record, "bridged")
    assert not events(record, "agent_missed")  # anna was not at fault: not paused
    assert queue_bot.agent_state("anna") == "available"


def test_with_no_agent_logged_in_the_caller_is_offered_a_callback_not_a_queue(queue_bot):
    timeline = place_call(queue_bot.sip_uri(DEMO_KOMMUNE), "--dtmf", "0", timeout=40)
    record = queue_bot.call_record(timeline["call_id"])
    da = phrasebook("da")
    assert events(record, "bot")[-1]["texts"] == [da.say("agents_busy"), da.say("callback_offer_now")]
    assert not events(record, "queue_entered")


def test_a_full_queue_offers_a_callback(queue_bot, agents):
    from concurrent.futures import ThreadPoolExecutor

    agents("anna", answer=False)
    agents("bo", answer=False)  # two agents who let it ring: 8 s before the queue empties of agents
    queue_bot.wait_for_agents("available", "anna", "bo")
    with ThreadPoolExecutor(2) as pool:
        waiting = pool.submit(place_call, queue_bot.sip_uri(STADT_KREIS), "--barge-in", "--dtmf", "0",
                              "--wait", "8", timeout=30)
        time.sleep(1.5)
        turned_away = place_call(queue_bot.sip_uri(STADT_KREIS), "--barge-in", "--dtmf", "0", timeout=30)
        waiting.result()
    record = queue_bot.call_record(turned_away["call_id"])
    assert events(record, "bot")[-1]["texts"][0] == phrasebook("de").say("queue_full"), record["events"]
    assert not events(record, "queue_entered")


def test_an_agent_hanging_up_during_the_whisper_puts_the_caller_back_in_the_queue(queue_bot, tmp_path):
    from peers import SCENARIOS

    desk = subprocess.Popen(["sipp", "-sf", str(SCENARIOS / "agent_hangs_up.xml"), "-i", "127.0.0.1",
                             "-p", str(queue_bot.desk_port), "-mi", "127.0.0.1", "-mp", str(free_port()),
                             "-m", "1", "-nostdin", "-timeout", "60s", "-trace_err",
                             "-error_file", str(tmp_path / "sipp_errors.log"),
                             "-trace_msg", "-message_file", str(tmp_path / "sipp_messages.log")],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        queue_bot.set_state("desk", "available")
        timeline = place_call(queue_bot.sip_uri(DEMO_KOMMUNE), "--dtmf", "0", "--wait", "14",
                              "--from", "+4512345678", timeout=40)
        assert desk.wait(10) == 0, desk.stdout.read()[-3000:]
    finally:
        desk.kill()
        queue_bot.set_state("desk", "paused")
    record = queue_bot.call_record(timeline["call_id"])
    kinds = [e["event"] for e in record["events"]]
    assert "agent_lost" in kinds and "bridged" not in kinds, kinds
    after = kinds[kinds.index("agent_lost"):]
    assert "queue_agent_lost" in [e.get("purpose") for e in events(record, "playing")]
    assert "queue_position" in after or "agent_ringing" in after  # still queued
    assert timeline["hung_up_by"] == "caller"
    # The agent's phone showed who was calling: the citizen's number, and the line they rang.
    invite = (tmp_path / "sipp_messages.log").read_text(errors="replace")
    assert re.search(r'^From: "Demo Kommune[^"]*: \+4512345678" <sip:\+4512345678@127\.0\.0\.1', invite, re.M), invite[:2000]


def test_an_agents_desk_pops_the_caller_by_itself_and_follows_the_call_to_its_end(queue_bot, tmp_path, page):
    """The desk agent signs in, makes themselves available, and a caller who asks for a person
    pops up on the open page as their phone rings (number, line, why, what was said), then
    connected (as the live list says), then ended after the agent hangs up."""
    from peers import SCENARIOS
    from playwright.sync_api import expect

    queue_bot.add_login("desk", "agent", "desk-password-1")
    phone = subprocess.Popen(["sipp", "-sf", str(SCENARIOS / "agent_rings_talks_hangs_up.xml"), "-i", "127.0.0.1",
                              "-p", str(queue_bot.desk_port), "-mi", "127.0.0.1", "-mp", str(free_port()),
                              "-m", "1", "-nostdin", "-timeout", "60s"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        page.goto(queue_bot.url + "/dashboard/login")
        page.fill("input[name=name]", "desk")
        page.fill("input[name=password]", "desk-password-1")
        page.click("button:has-text('Sign in')")
        expect(page.locator("h1")).to_have_text("My desk")
        expect(page.locator("#agent-state")).to_have_text("paused")
        page.select_option("#my-state select[name=reason]", "meeting")
        page.click("#my-state button[value=paused]")
        expect(page.locator("#agent-reason")).to_have_text("meeting")
        page.click("#my-state button[value=logged_out]")  # gone for the day, until they come back
        expect(page.locator("#agent-state")).to_have_text("logged out")
        expect(page.locator("#agent-reason")).to_have_text("signed off")
        assert queue_bot.agent_state("desk") == "logged_out"
        page.click("#my-state button[value=available]")
        expect(page.locator("#agent-state")).to_have_text("available")
        csrf = page.locator("#my-state input[name=csrf]").get_attribute("value")
        for agent_id, form, status in (("anna", {"state": "paused"}, 403),  # another agent's state
                                       ("nobody", {"state": "paused"}, 404),
                                       ("desk", {"state": "paused", "reason": "x" * 500}, 400),
                                       ("desk", {"state": "gone"}, 400)):
            answer = page.request.post(f"{queue_bot.url}/dashboard/agents/{agent_id}/state",
                                       form={**form, "csrf": csrf}, max_redirects=0)
            assert answer.status == status, (agent_id, form, answer.status)
        assert queue_bot.agent_state("anna") == "logged_out" and queue_bot.agent_state("desk") == "available"

        with ThreadPoolExecutor(1) as pool:
            calling = pool.submit(place_call, queue_bot.sip_uri(DEMO_KOMMUNE), "--from", CALLER_ID, "--dtmf", "0",
                                  "--wait", "30", timeout=60)
            pop = page.locator("#pop")
            expect(pop).to_have_attribute("data-phase", "ringing", timeout=20_000)  # no reload: it arrived
            assert page.title().startswith("Ringing")
            expect(page.locator("#pop-number a.tel")).to_have_attribute("href", "tel:+4512345678")
            expect(page.locator("#pop-number a.sip")).to_have_attribute("href", "sip:+4512345678@pbx.example.org;user=phone")
            expect(page.locator("#pop-line")).to_contain_text("Demo Kommune")
            expect(page.locator("#pop-reason")).to_have_text("requested")
            expect(page.locator("#pop-conversation .caller")).to_contain_text(["(key 0)"])
            expect(page.locator("#pop-conversation .bot").first).not_to_be_empty()  # the bot's side too
            expect(pop).to_have_attribute("data-phase", "connected", timeout=15_000)
            call_id = pop.get_attribute("data-call")
            live = page.request.get(queue_bot.url + "/dashboard/live.json").json()
            assert [c["state"] for c in live["calls"] if c["id"] == call_id] == ["with agent"]
            expect(pop).to_have_attribute("data-phase", re.compile("wrap-up|ended"), timeout=15_000)
            expect(pop).to_have_attribute("data-phase", "ended", timeout=10_000)
            timeline = calling.result()
        assert phone.wait(10) == 0, phone.stdout.read()[-3000:]
    finally:
        phone.kill()
        queue_bot.set_state("desk", "paused")
    assert timeline["call_id"] == call_id


def test_the_operators_wallboard_shows_a_queue_over_its_threshold_and_new_figures_without_reload(
        queue_bot, agents, page):
    from playwright.sync_api import expect

    queue_bot.add_login("wally", "operator", "wally-password-1")
    page.goto(queue_bot.url + "/dashboard/login")
    page.fill("input[name=name]", "wally")
    page.fill("input[name=password]", "wally-password-1")
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Operations")
    page.evaluate("window.__same_page = true")
    calls_before = int(page.locator("#total-calls").inner_text())
    now_column = page.locator("#trend-calls tr.all td").last  # this hour, all lines
    in_trend_before = int(now_column.inner_text())
    queue = page.locator("#queues tr[data-queue='demo-kommune-borgerservice']")
    expect(queue).not_to_have_class("over")
    agents("anna", answer=False)  # logged in, never answers: the caller waits
    queue_bot.wait_for_agents("available", "anna")
    with ThreadPoolExecutor(1) as pool:
        calling = pool.submit(place_call, queue_bot.sip_uri(DEMO_KOMMUNE), "--dtmf", "0", "--wait", "10", timeout=40)
        # The greeting lasts 9 s before the key press queues the caller, who then waits 10 s.
        expect(page.locator("#queue-alerts")).to_contain_text("1 waiting (alert at 1)", timeout=30_000)
        expect(queue).to_have_class("over")
        calling.result()
    expect(page.locator("#total-calls")).to_have_text(str(calls_before + 1), timeout=25_000)
    expect(now_column).to_have_text(str(in_trend_before + 1))  # the tables over time too
    expect(page.locator("#queue-alerts")).not_to_contain_text("Demo Kommune", timeout=15_000)  # nobody waits now
    expect(queue).not_to_have_class("over")
    assert page.evaluate("window.__same_page") is True  # all without a reload
