"""Norwegian (bokmål) and Swedish: Whisper hears espeak-ng's nb and sv voices on a real SIP call,
and Rasa's nb and sv models answer with the line's own opening hours (voicebot/nordic_lines.py;
fixtures in tests/nordic.py). One bot process serves both lines."""

import datetime as dt

import pytest

from conftest import events, place_call
from nordic import NORDIC_OFFICE_HOURS
from voicebot import nordic_lines
from voicebot.config import load_installation
from voicebot.knowledge.phrasebook import phrasebook

LANGUAGES = nordic_lines.LANGUAGES
# Held-out questions (not in the training data) for the text channel: opening hours tomorrow.
ASK_TOMORROW = {"nb": "hva slags åpningstider gjelder i morgen", "sv": "när har ni öppet i morgon"}


def tomorrows_hours(config, lang: str) -> str:
    """The answer the line must give: its default office's hours tomorrow, in its phrasebook."""
    tenant = load_installation(config).tenant(nordic_lines.LINES[lang])
    today = dt.datetime.fromisoformat(NORDIC_OFFICE_HOURS).astimezone(tenant.zone).date()
    tomorrow = today + dt.timedelta(days=1)
    office, words = tenant.office(), phrasebook(lang)
    return words.hours("open_on_day", office=office.name, day=words.day(tomorrow, today),
                       ranges=words.ranges(office.hours.on(tomorrow)))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_spoken_question_is_heard_by_whisper_and_answered(nordic_bot, lang):
    timeline = place_call(nordic_bot.sip_uri(nordic_lines.NUMBERS[lang]), "--lang", lang,
                          "--say", nordic_lines.ASK_OPENING_HOURS[lang])
    assert timeline["connected"]
    record = nordic_bot.call_record(timeline["call_id"])
    heard = [e["text"] for e in events(record, "heard")]
    print(f"{lang}: said {nordic_lines.ASK_OPENING_HOURS[lang]!r}, Whisper heard {heard}")
    # Whisper's words, not the caller's script: espeak-ng's nb and sv are hard even for it.
    assert heard and heard[0], record["events"]
    assert events(record, "heard")[0]["asr_busy_ms"] > 0
    replies = events(record, "bot")
    assert replies and replies[0]["texts"], record["events"]
    assert replies[0]["intent"] == "opening_hours", (heard, replies)
    first = timeline["turns"][0]
    assert first["latency_ms"] is not None and first["bot_ms"] > 1000


def test_the_text_channel_answers_each_line_with_its_own_hours(nordic_bot, nordic_config):
    answers = {}
    for lang in LANGUAGES:
        reply = nordic_bot.conversation(nordic_lines.LINES[lang], ASK_TOMORROW[lang])[0]
        answers[lang] = reply["messages"]
        assert reply["messages"] == [tomorrows_hours(nordic_config, lang), phrasebook(lang).say("anything_else")]
        assert reply["handoff"] is None
    assert answers["nb"][0] != answers["sv"][0]
