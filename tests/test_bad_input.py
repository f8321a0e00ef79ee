"""Bad input gets the fallback path or a clear error, never an exception or silence."""

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from voicebot.dialogue.runtime import MAX_UTTERANCE_CHARS
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.store import RecordStore


@pytest.mark.parametrize("text", [
    "",
    "   ",
    "asdkjh qwpoeiru zxmcnv",
    "passport " * 3000,
    "/request_agent",
    '/greet{"tenant": "demo-kommune"}',
    "<script>alert(1)</script>",
    "wo finde ich den nächsten bäcker in der innenstadt bitte",  # German on the English line
    "🙂🙂🙂",
])
def test_odd_text_gets_an_answer(bot, text):
    reply = bot.conversation("demo-city", text)[0]
    assert reply["messages"], "the bot must always say something"
    assert reply["handoff"] is None or reply["handoff"]["reason"] != "technical_fault"
    if text.startswith("/"):
        # Read as words, not run as an intent command (which Rasa scores at exactly 1.0).
        assert reply["confidence"] < 1.0


def test_empty_utterances_count_as_misses(bot):
    first, second = bot.conversation("demo-kommune", "", "")
    assert first["messages"] == [phrasebook("da").say("rephrase")]
    assert second["handoff"]["reason"] == "misunderstood"


def test_http_errors_are_clear(bot):
    assert bot.request("POST", "/lines/atlantis/conversations") == (404, {"error": "no line 'atlantis'"})
    status, body = bot.request("POST", "/lines/demo-city/conversations/x/messages", b"{not json")
    assert status == 400 and "text" in body["error"]
    status, body = bot.request("POST", "/lines/demo-city/conversations/x/messages", json.dumps({"text": 5}).encode())
    assert status == 400
    status, body = bot.request("POST", "/lines/demo-city/conversations/x/messages",
                               json.dumps({"text": "hi", "caller": 45}).encode())
    assert status == 400 and "caller" in body["error"]
    status, lines = bot.request("GET", "/lines")
    assert status == 200 and {line["id"] for line in lines} == {"demo-kommune", "stadt-kreis", "demo-city"}


def test_a_body_over_the_limit_is_refused_before_it_is_read(bot):
    # Only the headers go out: the answer must not wait for 4 MB that never come.
    connection = http.client.HTTPConnection("127.0.0.1", bot.port, timeout=10)
    connection.putrequest("POST", "/lines/demo-city/conversations/x/messages")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(4 * 1024 * 1024))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()
    assert bot.request("GET", "/health")[0] == 200


def test_a_long_text_turn_is_cut_before_anything_reads_it(bot, store_url):
    conversation_id, _ = bot.start("demo-city")
    reply = bot.say("demo-city", conversation_id, "can I renew my passport " + "x" * 60_000)
    assert reply["messages"]
    store, deadline = RecordStore(store_url, migrate=False), time.monotonic() + 15
    while not (exported := store.export(conversation_id)) or not exported["turns"]:  # written off the loop
        assert time.monotonic() < deadline, exported
        time.sleep(0.2)
    store.close()
    assert exported["turns"][0]["text"].startswith("can I renew") and len(exported["turns"][0]["text"]) <= MAX_UTTERANCE_CHARS
    status, body = bot.request("POST", f"/lines/demo-city/conversations/{conversation_id}/messages",
                               json.dumps({"text": "hi", "caller": "4" * 200}).encode())
    assert status == 400 and "caller" in body["error"]


def test_a_burst_of_chats_waits_in_line_and_the_overflow_is_told_to_send_again(bot, store_url):
    """Text turns are let into the dialogue one at a time (text.turns_at_once) with at most 200
    waiting (text.max_waiting): 260 at once leave some told to send again, with nothing kept of
    them, and every other one answered."""
    conversations = [bot.start("demo-city")[0] for _ in range(260)]

    def turn(conversation_id: str):
        connection = http.client.HTTPConnection("127.0.0.1", bot.port, timeout=120)
        connection.request("POST", f"/lines/demo-city/conversations/{conversation_id}/messages",
                           json.dumps({"text": "when are you open"}),
                           {"Content-Type": "application/json", "Authorization": f"Bearer {bot.token}"})
        answer = connection.getresponse()
        result = answer.status, answer.getheader("Retry-After"), json.loads(answer.read())
        connection.close()
        return result

    with ThreadPoolExecutor(len(conversations)) as pool:
        answers = list(pool.map(turn, conversations))
    busy = [c for c, (status, _, _) in zip(conversations, answers) if status == 503]
    assert {status for status, _, _ in answers} == {200, 503}, answers
    assert all(body["messages"] for status, _, body in answers if status == 200)
    assert all(retry == "5" and "send this one again" in body["error"] for status, retry, body in answers
               if status == 503)
    assert bot.say("demo-city", busy[0], "when are you open")["messages"]  # sent again, answered
    store, deadline = RecordStore(store_url, migrate=False), time.monotonic() + 30
    while not (exported := store.export(busy[0])) or not exported["turns"]:  # written off the loop
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # Only the turn sent again was kept, not the one refused.
    assert [t["text"] for t in store.export(busy[0])["turns"]] == ["when are you open"]
    assert all(not (store.export(c) or {}).get("turns") for c in busy[1:])
    store.close()
