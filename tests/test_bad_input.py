"""Bad input gets the fallback path or a clear error, never an exception or silence."""

import json

import pytest

from voicebot.knowledge.phrasebook import phrasebook


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
