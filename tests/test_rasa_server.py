"""A language's Rasa as its own server (`voicebot rasa serve`) with its conversations and locks
in a real Redis, shared by two bot workers (`voicebot serve --rasa-server en=URL`); then the
Rasa server killed mid-call."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from conftest import AGENT_HOURS, DEMO_CITY, REPO, TextBot, events, place_call
from test_dialogue import say
from test_take_back import check, follow_ups
from voicebot import procs
from voicebot.ports import free_port


@pytest.fixture(scope="module")
def rasa_en(trained, redis_server, tmp_path_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("rasa") / "rasa.log"
    process = procs.start([sys.executable, "-m", "voicebot.cli", "rasa", "serve", "--lang", "en", "--port",
                          str(port), "--redis", redis_server.url], cwd=REPO,
                               stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while True:
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    process.url = url
    yield process
    procs.stop(process)


@pytest.fixture(scope="module")
def workers(rasa_en, store_url):
    started = [TextBot(AGENT_HOURS, store_url, sip=sip, lines=("demo-city",), extra_args=("--rasa-server", f"en={rasa_en.url}"))
               for sip in (True, False)]
    yield started
    for worker in started:
        worker.stop()


def test_a_conversation_begun_on_one_worker_goes_on_on_another(workers, redis_server):
    """The callback form's state lives in Redis, not in the worker that asked for the number."""
    first, second = workers
    conversation_id, _ = first.start("demo-city")
    asked = first.say("demo-city", conversation_id, "can someone call me back please")
    assert asked["messages"] == [say("en", "callback_ask_number")] and asked["intent"] == "callback_request"
    recorded = second.say("demo-city", conversation_id, "my number is 12 34 46 78")
    assert recorded["messages"][0] == say("en", "callback_recorded", last_digits="4 6 7 8",
                                          promise="within two working days")
    assert any(conversation_id in key.decode() for key in redis.Redis.from_url(redis_server.url).keys("voicebot*"))


def test_an_answer_taken_back_on_the_rasa_server_leaves_the_conversation_as_before_it(trained, rasa_en):
    from voicebot.dialogue.runtime import Dialogue

    dialogue = Dialogue(trained, "http://127.0.0.1:9", ["en"], servers={"en": rasa_en.url}).load()
    check(follow_ups(dialogue, trained.tenant("demo-city")))


def test_with_redis_away_conversations_go_on_on_the_rasa_server_and_are_shared_again_after(workers, redis_server):
    first, second = workers
    redis_server.stop()
    try:
        during, _ = first.start("demo-city")
        asked = first.say("demo-city", during, "can someone call me back please")
        assert asked["messages"] == [say("en", "callback_ask_number")]
        recorded = second.say("demo-city", during, "my number is 12 34 46 78")  # the same Rasa server's memory
        assert recorded["messages"][0] == say("en", "callback_recorded", last_digits="4 6 7 8",
                                              promise="within two working days")
        opened = second.say("demo-city", during, "when is the central library open")
        assert opened["intent"] == "opening_hours" and not opened["handoff"]
    finally:
        redis_server.start()  # empty: this Redis keeps nothing
    # The conversation goes on with what it held (the number given), and is in Redis again.
    again = first.say("demo-city", during, "can someone call me back please")
    assert again["messages"][0] == say("en", "callback_recorded", last_digits="4 6 7 8", promise="within two working days")
    assert any(during in key.decode() for key in redis.Redis.from_url(redis_server.url).keys("voicebot*"))


def test_the_rasa_server_killed_mid_call_gets_the_caller_told_and_handed_to_a_person(workers, rasa_en):
    worker = workers[0]
    with ThreadPoolExecutor(1) as pool:
        calling = pool.submit(place_call, worker.sip_uri(DEMO_CITY), "--dtmf", "1")
        while not any(c["state"] == "talking" for c in worker.request("GET", "/calls")[1]):
            time.sleep(0.05)
        os.kill(rasa_en.pid, signal.SIGKILL)  # during the greeting
        timeline = calling.result()
    record = worker.call_record(timeline["call_id"])
    reply = events(record, "bot")[0]
    assert reply["handoff"]["reason"] == "technical_fault" and reply["texts"]
    assert events(record, "transfer")[0]["headers"]["X-Voicebot-Reason"] == "technical_fault"
    assert len(timeline["transfers"]) == 1
    # A text conversation is told the same; the worker itself is fine.
    conversation_id, _ = workers[1].start("demo-city")
    texted = workers[1].say("demo-city", conversation_id, "when are you open")
    assert texted["handoff"]["reason"] == "technical_fault" and texted["messages"]
    assert workers[1].request("GET", "/health")[0] == 200
