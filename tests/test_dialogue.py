"""Conversations through the HTTP text channel of a real `voicebot serve`: real Rasa models,
real action server, per intent and per language."""

import pytest
import yaml

from conftest import REPO
from voicebot.config import load_installation
from voicebot.intents import BUILT_IN_INTENTS
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.store import RecordStore

LINES = {"da": "demo-kommune", "de": "stadt-kreis", "en": "demo-city"}
CALLER = "+4520304050"
ALL_INTENTS = BUILT_IN_INTENTS + tuple(load_installation(REPO / "voicebot.yml").topics)


def heldout(lang: str) -> dict:
    utterances = yaml.safe_load((REPO / "heldout" / f"{lang}.yml").read_text(encoding="utf-8"))
    assert set(utterances) == set(ALL_INTENTS)
    return utterances


def say(lang: str, key: str, **values) -> str:
    return phrasebook(lang).say(key, **values)


def check_outcome(reply: dict, tenant, lang: str, intent: str) -> None:
    """What the bot must do once it understood the intent."""
    messages, topic = reply["messages"], tenant.topics.get(intent)
    if topic and topic.answer:
        assert messages == [topic.answer, say(lang, "anything_else")]
    elif intent in ("opening_hours", "office_location", "thank"):
        assert len(messages) == 2 and messages[-1] == say(lang, "anything_else")
        assert reply["handoff"] is None and reply["hangup"] is None
    elif intent == "request_agent" or (topic and topic.hand_off):
        assert reply["handoff"]["reason"] == ("requested" if intent == "request_agent" else topic.hand_off)
        assert reply["handoff"]["queue"] == tenant.handoff.queue
        assert intent in reply["handoff"]["topics"]
    elif intent == "callback_request":
        assert messages == [say(lang, "callback_ask_number")]
    elif intent == "goodbye":
        assert messages == [say(lang, "goodbye")] and reply["hangup"] == {"action": "hangup", "reason": "goodbye"}
    elif intent == "greet":
        assert messages == [say(lang, "greet_back")]
    elif intent == "chitchat":
        assert messages == [say(lang, "chitchat")] and reply["handoff"] is None
    elif intent in ("affirm", "deny"):  # a yes or no to no question says nothing: a miss
        assert messages == [say(lang, "rephrase")] and reply["handoff"] is None
    elif intent == "out_of_scope":
        assert messages == [say(lang, "out_of_scope")] and reply["handoff"] is None


# Held-out utterances (not in the training data), three per intent and language. A model
# trained on another machine may flip a borderline one, so an intent passes with two of
# three understood, and each language needs 95% overall; whatever is understood must lead
# to exactly the right outcome.
@pytest.mark.parametrize("lang, intent", [(lang, intent) for lang in LINES for intent in ALL_INTENTS])
def test_every_intent_in_every_language(bot, inst, lang, intent):
    tenant = inst.tenant(LINES[lang])
    understood = 0
    for text in heldout(lang)[intent]:
        reply = bot.conversation(tenant.id, text)[0]
        assert reply["messages"], f"no answer to {text!r}"
        if reply["intent"] == intent:
            understood += 1
            check_outcome(reply, tenant, lang, intent)
    assert understood >= 2, f"only {understood} of 3 held-out {lang} utterances understood as {intent}"


@pytest.mark.parametrize("lang", LINES)
def test_heldout_accuracy_per_language(bot, lang):
    cases = [(intent, text) for intent, texts in heldout(lang).items() for text in texts]
    wrong = [(intent, text, reply["intent"]) for intent, text in cases
             for reply in bot.conversation(LINES[lang], text) if reply["intent"] != intent]
    assert len(wrong) <= 0.05 * len(cases), wrong


def test_greeting_comes_from_the_line(bot, inst):
    for line in LINES.values():
        _, messages = bot.start(line)
        assert messages == [inst.tenant(line).greeting]


def test_opening_hours_for_a_named_office_and_day(bot):
    # The server's clock is frozen on Tuesday 24 November 2026, 10:00 CET.
    assert bot.conversation("demo-kommune", "øh har biblioteket åbent på lørdag")[0]["messages"][0] == \
        "Biblioteket har åbent lørdag den 28. november fra klokken 10 til 14."
    assert bot.conversation("stadt-kreis", "haben sie heiligabend geöffnet")[0]["messages"][0].startswith(
        "Das Servicecenter ist am Donnerstag, dem 24. Dezember geschlossen: Heiligabend.")
    assert bot.conversation("demo-city", "is the library open tomorrow at half five")[0]["messages"][0] == \
        "Yes. The central library is open tomorrow at 5:30 pm, until 7 pm."


def test_office_location(bot, inst):
    reply = bot.conversation("demo-city", "where is the recycling centre")[0]
    assert reply["messages"][0] == f"The recycling centre is at {inst.tenant('demo-city').offices['recycling_centre'].address}."


def test_after_an_answer_no_means_goodbye_and_yes_means_go_on(bot):
    answer, no = bot.conversation("demo-city", "how do i renew my passport", "no thanks")
    assert answer["intent"] == "passport"
    assert no["hangup"]["reason"] == "goodbye" and no["messages"] == [say("en", "goodbye")]
    _, yes, passport = bot.conversation("demo-kommune", "hvornår tømmes min skraldespand", "ja", "hvordan får jeg et nyt pas")
    assert yes["messages"] == [say("da", "how_can_i_help")]
    assert passport["intent"] == "passport" and passport["hangup"] is None


def test_one_rephrase_then_the_second_miss_hands_off(bot):
    first, second = bot.conversation("stadt-kreis", "blorp fnargle zwisch", "quazzle vintrop meep")
    # Gibberish may land in the fallback or in out_of_scope: both say honestly that it was not understood.
    assert first["messages"][0] in (say("de", "rephrase"), say("de", "out_of_scope")) and first["handoff"] is None
    assert second["handoff"]["reason"] == "misunderstood"
    assert second["messages"] == [say("de", "handoff_misunderstood")]


def test_misses_count_over_the_whole_call(bot):
    miss, answer, miss_again = bot.conversation(
        "demo-city", "flibber wompus", "when is my bin collected", "what is the capital of peru")
    assert miss["handoff"] is None and answer["intent"] == "waste_collection"
    assert miss_again["handoff"]["reason"] == "misunderstood"
    assert miss_again["handoff"]["topics"] == ["waste_collection"]


def test_handoff_carries_the_topics_so_far(bot):
    _, handoff = bot.conversation("demo-kommune", "jeg har mistet mit pas", "jeg vil gerne høre hvor langt min sag er")
    assert handoff["handoff"]["topics"] == ["passport", "case_status"]
    assert "hvor langt min sag er" in handoff["handoff"]["summary"]


def test_callback_offers_caller_id_and_uses_it_after_a_yes(bot, store_url):
    asked, recorded = bot.conversation("demo-city", "can someone call me back please", "yes please", caller=CALLER)
    assert asked["messages"] == [say("en", "callback_confirm_caller", last_digits="4 0 5 0")]
    assert recorded["messages"][0] == say("en", "callback_recorded", last_digits="4 0 5 0",
                                          promise="within two working days")
    stored = [c for c in RecordStore(store_url).open_callbacks("demo-city") if c.number == CALLER]
    assert len(stored) == 1


def test_callback_to_another_number_than_caller_id(bot, store_url):
    asked, other, recorded = bot.conversation(
        "demo-kommune", "jeg vil gerne ringes op", "nej", "tolv fireogtredive seksogfyrre ni og halvfjerds",
        caller="+4520304051")
    assert asked["messages"] == [say("da", "callback_confirm_caller", last_digits="4 0 5 1")]
    assert other["messages"] == [say("da", "callback_ask_number")]
    assert recorded["messages"][0] == say("da", "callback_recorded", last_digits="4 6 7 9", promise="inden for to hverdage")
    numbers = [c.number for c in RecordStore(store_url).open_callbacks("demo-kommune")]
    assert "12344679" in numbers and "+4520304051" not in numbers


def test_callback_asks_for_a_spoken_number(bot, store_url):
    ask, bad, recorded = bot.conversation(
        "demo-kommune", "jeg vil gerne ringes op", "det ved jeg ikke", "tolv fireogtredive seksogfyrre otteoghalvfjerds")
    assert ask["messages"] == [say("da", "callback_ask_number")]
    assert bad["messages"] == [say("da", "callback_bad_number")]
    assert recorded["messages"][0] == say("da", "callback_recorded", last_digits="4 6 7 8", promise="inden for to hverdage")
    assert [c.number for c in RecordStore(store_url).open_callbacks("demo-kommune")].count("12344678") == 1


def test_callback_without_a_number_goes_to_a_person(bot):
    _, bad, gave_up = bot.conversation("stadt-kreis", "rufen sie mich bitte zurück", "keine ahnung", "weiß ich nicht")
    assert bad["messages"] == [say("de", "callback_bad_number")]
    assert gave_up["handoff"]["reason"] == "callback_failed"


def test_outside_agent_hours_a_callback_is_offered(bot_without_agents, store_url):
    bot = bot_without_agents  # its clock: Sunday 29 November 2026
    offer, accepted, confirmed = bot.conversation("demo-city", "can i speak to a real person", "yes please", "yes",
                                                  caller="+447700900123")
    assert offer["handoff"] is None
    assert offer["messages"] == [say("en", "agents_closed", day="tomorrow", start="8:30 am"), say("en", "callback_offer")]
    assert accepted["messages"] == [say("en", "callback_confirm_caller", last_digits="0 1 2 3")]
    assert confirmed["messages"][0].startswith("Thank you. We will call you back on the number ending 0 1 2 3")
    offer, declined = bot.conversation("demo-kommune", "jeg vil tale med en medarbejder", "nej tak")
    assert offer["messages"][-1] == say("da", "callback_offer")
    assert declined["messages"] == [say("da", "anything_else")] and declined["hangup"] is None


# Understanding callers as they really talk. The bot's clock: 10:00 on Tuesday 24 November 2026.
def first(reply: dict) -> str:
    return reply["messages"][0]


@pytest.mark.parametrize("line, text, answer", [
    ("demo-city", "is the town hall open easter monday",
     "The town hall customer service centre is closed on Monday 29 March, for Easter Monday."),
    ("demo-city", "is the library open on the twenty fourth of december",
     "The central library is open on Thursday 24 December from"),
    ("stadt-kreis", "wann haben sie am tag der deutschen einheit auf",
     "Das Servicecenter ist am Sonntag, dem 3. Oktober geschlossen: Tag der Deutschen Einheit."),
    ("stadt-kreis", "haben sie am zweiten weihnachtsfeiertag geöffnet",
     "Das Servicecenter ist am Samstag, dem 26. Dezember geschlossen: Zweiter Weihnachtstag."),
    ("stadt-kreis", "hat das bürgerbüro am rosenmontag auf",
     "Das Servicecenter ist am Montag, dem 8. Februar von 8 Uhr bis 12 Uhr geöffnet. "
     "Es gelten besondere Öffnungszeiten: Rosenmontag."),
    ("demo-kommune", "har borgerservice åbent lille juleaften",
     "Borgerservice har åbent onsdag den 23. december fra klokken 10 til 12."),
    ("demo-kommune", "har i åbent den 24. december", "Borgerservice har lukket torsdag den 24. december"),
])
def test_named_days_and_dates(bot, line, text, answer):
    assert first(bot.conversation(line, text)[0]).startswith(answer)


@pytest.mark.parametrize("line, text, intent", [
    ("demo-city", "hiya um are you lot open at the moment", "opening_hours"),
    ("demo-kommune", "hej øh hvornår har biblioteket åbent", "opening_hours"),
    ("stadt-kreis", "hallo ähm ich brauche einen neuen reisepass", "passport"),
])
def test_a_greeting_with_a_question_answers_the_question(bot, line, text, intent):
    reply = bot.conversation(line, text)[0]
    assert reply["intent"] == intent and len(reply["messages"]) == 2


def test_a_correction_within_the_turn_wins(bot):
    reply = bot.conversation("demo-city", "is the recycling centre open tomorrow no wait i mean saturday")[0]
    assert first(reply).startswith("The recycling centre is open on Saturday 28 November")


@pytest.mark.parametrize("line, question, correction, answer", [
    ("demo-city", "is the library open tomorrow", "no sorry i meant sunday", "The central library is closed on Sunday 29 November"),
    ("demo-kommune", "har biblioteket åbent på lørdag", "nej undskyld jeg mente i morgen", "Biblioteket har åbent i morgen"),
    ("stadt-kreis", "haben sie morgen geöffnet", "nein ich meinte am freitag", "Das Servicecenter ist am Freitag, dem 27. November"),
])
def test_a_correction_after_anything_else_is_no_goodbye(bot, line, question, correction, answer):
    _, corrected = bot.conversation(line, question, correction)
    assert corrected["hangup"] is None and first(corrected).startswith(answer)


def test_a_follow_up_reuses_the_rest_of_the_question(bot):
    _, tomorrow, town_hall = bot.conversation(
        "demo-city", "is the library open on saturday", "what about tomorrow", "and the town hall")
    assert first(tomorrow).startswith("The central library is open tomorrow")
    assert first(town_hall).startswith("The town hall customer service centre is open tomorrow")
    _, where = bot.conversation("demo-kommune", "har biblioteket åbent i morgen", "og hvor ligger det")
    assert first(where).startswith("Biblioteket ligger")


@pytest.mark.parametrize("line, lang, filler", [
    ("demo-city", "en", "erm yeah so"), ("demo-kommune", "da", "øh ja altså"), ("stadt-kreis", "de", "ähm ja also")])
def test_fillers_are_no_yes_and_two_reach_a_person(bot, line, lang, filler):
    once, twice = bot.conversation(line, filler, filler)
    assert once["messages"] == [say(lang, "rephrase")] and once["handoff"] is None
    assert twice["handoff"]["reason"] == "misunderstood"


@pytest.mark.parametrize("line, text", [
    ("demo-city", "i want to complain that nobody ever called me back"),
    ("demo-kommune", "jeg vil klage over at ingen har ringet mig tilbage"),
    ("stadt-kreis", "ich will mich beschweren weil mich keiner zurückgerufen hat"),
])
def test_a_complaint_about_no_callback_is_a_complaint(bot, line, text):
    reply = bot.conversation(line, text)[0]
    assert reply["intent"] == "complaint" and reply["handoff"]["reason"] == "case_handling"


@pytest.mark.parametrize("lang, text, opening", [
    ("en", "when is the library open tomorrow and how do i renew my passport", "The central library is open tomorrow"),
    ("da", "hvornår har biblioteket åbent i morgen og hvordan fornyer jeg mit pas", "Biblioteket har åbent i morgen"),
    ("de", "wann haben sie morgen geöffnet und wie beantrage ich einen neuen reisepass", "Das Servicecenter ist morgen"),
])
def test_two_questions_in_one_turn_get_both_answers_in_order(bot, inst, lang, text, opening):
    tenant = inst.tenant(LINES[lang])
    messages = bot.conversation(tenant.id, text)[0]["messages"]
    assert len(messages) == 3, messages
    assert messages[0].startswith(opening)
    assert messages[1:] == [tenant.answer("passport"), say(lang, "anything_else")]


def test_one_question_with_and_in_it_gets_one_answer(bot):
    reply = bot.conversation("demo-city", "is the library open on saturday and sunday")[0]
    assert reply["intent"] == "opening_hours" and len(reply["messages"]) == 2
