"""The custom actions on their own, in milliseconds: the real actions, the real configuration and
rasa_sdk's own tracker, at a chosen instant, with the turn as the NLU would have read it. What
the NLU makes of real sentences is tested through the text channel (test_dialogue.py)."""

import asyncio
from typing import Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from voicebot.clock import PER_TURN_ENV
from voicebot.config.live import LiveConfiguration
from voicebot.dialogue import actions
from voicebot.knowledge.phrasebook import phrasebook

TUESDAY = "2026-11-24T10:00+01:00"
LIBRARY_TOMORROW = {"topic": "opening_hours", "office": "library", "date": "2026-11-25", "time": None}


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setenv("VOICEBOT_CLOCK", TUESDAY)


def run(action, text: str, intent: str, line: str = "demo-city", metadata: Optional[dict] = None,
        ranking: tuple = (), confidence: float = 0.9, **slots) -> tuple:
    """(what the bot said, the slots it set, its payloads) for one turn."""
    tracker = Tracker("conversation", {"tenant": line, "awaiting": None, "misses": 0.0, "asked": None, **slots},
                      {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": [],
                       "metadata": metadata or {},
                       "intent_ranking": [{"name": name, "confidence": 0.9} for name in (intent, *ranking)]},
                      [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker, {})
    said = [m["text"] for m in dispatcher.messages if m.get("text")]
    payloads = [m["custom"]["voicebot"] for m in dispatcher.messages if m.get("custom")]
    return said, {e["name"]: e["value"] for e in events if e.get("event") == "slot"}, payloads


def say(key: str, lang: str = "en") -> str:
    return phrasebook(lang).say(key)


def test_a_correction_after_anything_else_answers_again():
    said, slots, payloads = run(actions.ActionDeny(), "no sorry i meant sunday", "deny",
                                awaiting="anything_else", asked=LIBRARY_TOMORROW)
    assert said == ["The central library is closed on Sunday 29 November. "
                    "The central library opens again on Monday 30 November at 9 am.", say("anything_else")]
    assert slots["asked"] == {**LIBRARY_TOMORROW, "date": "2026-11-29"} and payloads == []


@pytest.mark.parametrize("text", ["no thanks", "no thanks i will come by tomorrow then"])
def test_a_no_after_anything_else_is_still_goodbye(text):
    said, _, payloads = run(actions.ActionDeny(), text, "deny", awaiting="anything_else", asked=LIBRARY_TOMORROW)
    assert said == [say("goodbye")] and payloads == [{"action": "hangup", "reason": "goodbye"}]


def test_a_follow_up_the_nlu_missed_reuses_the_last_question():
    said, slots, _ = run(actions.ActionNotUnderstood(), "and the town hall", "nlu_fallback", asked=LIBRARY_TOMORROW)
    assert said[0].startswith("The town hall customer service centre is open tomorrow from")
    assert "misses" not in slots


def test_a_longer_off_topic_turn_naming_a_day_stays_off_topic():
    said, slots, _ = run(actions.ActionNotUnderstood(), "what's the weather going to be like tomorrow",
                         "out_of_scope", asked=LIBRARY_TOMORROW)
    assert said == [say("out_of_scope")] and slots["misses"] == 1


def test_a_turn_that_only_names_an_office_asks_the_last_question_again():
    said, slots, _ = run(actions.ActionOfficeLocation(), "and the town hall", "office_location", asked=LIBRARY_TOMORROW)
    assert said[0].startswith("The town hall customer service centre is open tomorrow from")
    assert slots["asked"]["topic"] == "opening_hours"
    said, _, _ = run(actions.ActionOfficeLocation(), "og hvor ligger det", "office_location", line="demo-kommune",
                     asked={**LIBRARY_TOMORROW, "office": "bibliotek"})
    assert said[0].startswith("Biblioteket ligger")


def test_a_question_keeps_the_office_and_a_follow_up_the_day():
    said, _, _ = run(actions.ActionOpeningHours(), "are you open on saturday", "opening_hours", asked=LIBRARY_TOMORROW)
    assert said[0] == "The central library is open on Saturday 28 November from 10 am to 4 pm."
    said, _, _ = run(actions.ActionOfficeLocation(), "and where is it", "office_location", asked=LIBRARY_TOMORROW)
    assert said[0] == "The central library is at 20 Park Road, opposite the park."
    # After another topic, an office question starts afresh.
    said, _, _ = run(actions.ActionOpeningHours(), "are you open on saturday", "opening_hours")
    assert said[0].startswith("The town hall customer service centre is closed on Saturday 28 November")


def test_a_yes_to_no_question_is_a_miss_and_two_reach_a_person():
    said, slots, _ = run(actions.ActionAffirm(), "erm yeah so", "affirm")
    assert said == [say("rephrase")] and slots["misses"] == 1
    said, _, payloads = run(actions.ActionAffirm(), "erm yeah so", "affirm", misses=1.0)
    assert payloads[0]["action"] == "handoff" and payloads[0]["reason"] == "misunderstood"
    said, _, _ = run(actions.ActionAffirm(), "yes", "affirm", awaiting="anything_else")
    assert said == [say("how_can_i_help")]


def test_on_christmas_eve_a_caller_is_offered_a_callback_not_absent_staff(monkeypatch):
    monkeypatch.setenv("VOICEBOT_CLOCK", "2026-12-24T10:00+01:00")  # a Thursday: agent hours 9-17:30
    said, slots, payloads = run(actions.ActionHandoff(), "jeg vil tale med en medarbejder", "request_agent",
                                line="demo-kommune")
    assert said == [phrasebook("da").say("agents_closed", day="mandag den 28. december", start="9"),
                    say("callback_offer", "da")]
    assert slots["awaiting"] == "callback_offer" and payloads == []


def test_a_topic_answer_forgets_the_office_question():
    _, slots, _ = run(actions.ActionTopic(), "how do i renew my passport", "passport", asked=LIBRARY_TOMORROW)
    assert slots["asked"] is None


def test_small_talk_steers_back_and_is_no_miss():
    said, slots, payloads = run(actions.ActionChitchat(), "how are you doing", "chitchat", misses=1.0)
    assert said == [say("chitchat")] and "misses" not in slots and payloads == []


def test_a_turn_carries_its_own_instant_only_where_the_action_server_allows_it(monkeypatch):
    christmas_eve = {"clock": "2026-12-24T10:00+00:00"}
    said, _, _ = run(actions.ActionOpeningHours(), "is the town hall open", "opening_hours", metadata=christmas_eve)
    assert said[0].startswith("The town hall customer service centre is open now, until 5 pm")  # the frozen Tuesday
    monkeypatch.setenv(PER_TURN_ENV, "1")
    said, _, _ = run(actions.ActionOpeningHours(), "is the town hall open", "opening_hours", metadata=christmas_eve)
    assert said[0].startswith("The town hall customer service centre is open now, until 12 pm")


@pytest.mark.parametrize("text, ranking", [
    ("is the library open on the twenty fourth of december", ("opening_hours", "office_location")),
    ("what time does the library close on december the twenty fourth", ("office_location", "opening_hours")),
    ("are you open on the twenty fourth of december at the library", ("office_location",)),
])
def test_an_off_topic_turn_about_our_own_office_is_answered_as_that_question(text, ranking):
    said, _, _ = run(actions.ActionNotUnderstood(), text, "out_of_scope", ranking=ranking)
    assert said == ["The central library is open on Thursday 24 December from 9 am to 7 pm.", say("anything_else")]


def test_a_greeting_does_not_compete_with_the_question_beside_it():
    said, _, _ = run(actions.ActionNotUnderstood(), "hello good afternoon where is the library", "nlu_fallback",
                     ranking=("greet", "office_location"))
    assert said[0] == "The central library is at 20 Park Road, opposite the park."


def test_a_turn_the_nlu_was_unsure_of_about_our_office_is_answered():
    said, _, _ = run(actions.ActionNotUnderstood(), "is the recycling centre open tomorrow no wait i mean sunday",
                     "nlu_fallback", ranking=("opening_hours",))
    assert said[0].startswith("The recycling centre is open on Sunday 29 November")


def test_an_off_topic_turn_asking_us_about_a_day_is_an_hours_question():
    said, _, _ = run(actions.ActionNotUnderstood(), "haben sie am zweiten weihnachtsfeiertag auf", "out_of_scope",
                     line="stadt-kreis", ranking=("opening_hours",))
    assert said[0].startswith("Das Servicecenter ist am Samstag, dem 26. Dezember geschlossen")


@pytest.mark.parametrize("text, ranking", [
    ("what are the bank's opening hours", ("opening_hours",)),  # not our office
    ("can the library lend me money for a car", ("passport", "opening_hours")),  # next guess no office question
    ("is halfords open on saturday", ("opening_hours",)),  # a day, but not asked of us
])
def test_an_off_topic_turn_stays_off_topic_unless_it_asks_about_our_office(text, ranking):
    said, slots, _ = run(actions.ActionNotUnderstood(), text, "out_of_scope", ranking=ranking)
    assert said == [say("out_of_scope")] and slots["misses"] == 1.0


def test_small_talk_after_an_hours_answer_that_names_a_day_follows_up():
    said, _, _ = run(actions.ActionChitchat(), "and what about tomorrow", "chitchat", asked=LIBRARY_TOMORROW)
    assert said[0].startswith("The central library is open tomorrow")


@pytest.mark.parametrize("action, text, intent, line", [
    (actions.ActionOpeningHours(), "what are the bank's opening hours", "opening_hours", "demo-city"),
    (actions.ActionOpeningHours(), "is the post office open on saturday afternoon", "opening_hours", "demo-city"),
    (actions.ActionOfficeLocation(), "how do i get to the odeon from the train station", "office_location",
     "demo-city"),
    (actions.ActionTopic(), "can i move my appointment with the dentist to friday", "book_appointment",
     "demo-city"),
    (actions.ActionOpeningHours(), "hvornår åbner supermarkedet i morgen", "opening_hours", "demo-kommune"),
    (actions.ActionOfficeLocation(), "wie komme ich zu meinem kumpel in die lindenstraße", "office_location",
     "stadt-kreis"),
])
def test_a_question_about_somebody_elses_place_gets_the_out_of_scope_answer(action, text, intent, line):
    said, slots, _ = run(action, text, intent, line=line)
    lang = {"demo-city": "en", "demo-kommune": "da", "stadt-kreis": "de"}[line]
    assert said == [say("out_of_scope", lang)] and slots["misses"] == 1.0


@pytest.mark.parametrize("action, text, intent, expected", [
    (actions.ActionOpeningHours(), "what are the opening times at the library", "opening_hours",
     "The central library is open now"),
    (actions.ActionOpeningHours(), "is the office open on saturday", "opening_hours",
     "The town hall customer service centre is closed on Saturday 28 November"),
    (actions.ActionOpeningHours(), "what are the opening hours for christmas", "opening_hours",
     "The town hall customer service centre is closed on Friday 25 December"),
    (actions.ActionOfficeLocation(), "where are you located", "office_location",
     "The town hall customer service centre is at"),
    (actions.ActionTopic(), "i need an appointment at the passport office", "book_appointment",
     "You can book, change or cancel an appointment"),
])
def test_questions_about_our_own_places_are_still_answered(action, text, intent, expected):
    said, _, _ = run(action, text, intent)
    assert said[0].startswith(expected)


@pytest.mark.parametrize("action, text, intent, answered", [
    (actions.ActionOfficeLocation(), "how many mps are there in parliament", "office_location", False),
    (actions.ActionOfficeLocation(), "erm how do i get a pac code from three", "office_location", False),
    (actions.ActionOfficeLocation(), "where's the town hall", "office_location", True),
    (actions.ActionOfficeLocation(), "erm where do i find you", "office_location", True),
    (actions.ActionOpeningHours(), "erm open on boxing day", "opening_hours", True),
])
def test_an_unsure_office_question_must_name_an_office_a_day_or_the_line(action, text, intent, answered):
    said, slots, _ = run(action, text, intent, confidence=0.6)
    assert (said[0] != say("rephrase")) is answered
    assert ("misses" in slots) is not answered


def validate_caller_id_ok(text: str, intent: str, **slots) -> dict:
    tracker = Tracker("conversation", {"tenant": "demo-city", "caller_id": "+447700900321", **slots},
                      {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": [],
                       "intent_ranking": [{"name": intent, "confidence": 0.9}]},
                      [], False, None, {"name": "callback_form"}, "action_listen")
    return actions.ValidateCallbackForm().validate_caller_id_ok(text, CollectingDispatcher(), tracker, {})


def test_caller_id_is_used_for_a_callback_only_after_a_yes():
    assert validate_caller_id_ok("yes please", "affirm") == {"caller_id_ok": "yes", "callback_number": "+447700900321"}
    assert validate_caller_id_ok("no", "deny") == {"caller_id_ok": "no", "callback_attempts": 0.0}
    assert validate_caller_id_ok("no call me on zero seven seven zero zero nine zero zero one two three", "deny") == {
        "caller_id_ok": "no", "callback_number": "07700900123"}
    assert validate_caller_id_ok("what", "nlu_fallback") == {"caller_id_ok": None, "callback_attempts": 1.0}
    assert validate_caller_id_ok("what", "nlu_fallback", callback_attempts=1.0) == {
        "caller_id_ok": "no", "callback_attempts": 0.0}  # a second unclear answer: ask for a number


@pytest.mark.parametrize("caller, asks_first", [("+447700900321", "caller_id_ok"), ("anonymous", "callback_number"),
                                                 (None, "callback_number")])
def test_the_callback_form_offers_caller_id_only_when_there_is_one(caller, asks_first):
    start = Tracker("conversation", {"session_started_metadata": {"tenant": "demo-city", "caller": caller}},
                    {}, [], False, None, {}, "action_listen")
    slots = {e["name"]: e["value"] for e in actions.ActionSessionStart().run(CollectingDispatcher(), start, {})
             if e.get("event") == "slot"}
    assert "callback_number" not in slots  # never a callback number without the caller's say
    tracker = Tracker("conversation", slots, {}, [], False, None, {"name": "callback_form"}, "action_listen")
    required = asyncio.run(actions.ValidateCallbackForm().required_slots(
        ["caller_id_ok", "callback_number"], CollectingDispatcher(), tracker, {}))
    assert required[0] == asks_first


def test_the_caller_id_question_speaks_its_last_digits():
    said, _, _ = run(actions.ActionAskCallerIdOk(), "can you call me back", "callback_request",
                     caller_id="+447700900321")
    assert said == [phrasebook("en").say("callback_confirm_caller", last_digits="0 3 2 1")]


@pytest.fixture
def parking_topics(install_copy, monkeypatch):
    """The installation with a parking permit topic: demo-city answers it, demo-kommune offers a
    callback (the topic's default), stadt-kreis hands it to its own queue; complaints keep the
    default handoff."""
    import yaml
    from voicebot.config import load_installation

    topics = yaml.safe_load((install_copy / "topics.yml").read_text())
    topics["topics"]["parking_permit"] = {"names": {"en": "Parking permits", "da": "Parkering", "de": "Parkausweise",
                                                    "nb": "Parkeringstillatelser", "sv": "Parkeringstillstånd"},
                                          "default": {"offer_callback": True}}
    (install_copy / "topics.yml").write_text(yaml.safe_dump(topics, allow_unicode=True))
    for line, behaviour in (("demo-city", "Apply for a resident's parking permit online at demo city dot gov dot uk."),
                            ("stadt-kreis", {"hand_off": "case_handling", "queue": "demo-city-contact-centre"})):
        path = install_copy / "tenants" / f"{line}.yml"
        data = yaml.safe_load(path.read_text())
        data["topics"]["parking_permit"] = behaviour
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
    monkeypatch.setattr(actions, "installation", lambda: load_installation(install_copy / "voicebot.yml"))


def test_a_topic_added_as_data_is_answered_handed_off_or_offered_a_callback_as_each_line_says(parking_topics):
    said, slots, payloads = run(actions.ActionTopic(), "i need a parking permit", "parking_permit")
    assert said == ["Apply for a resident's parking permit online at demo city dot gov dot uk.", say("anything_else")]
    assert slots["awaiting"] == "anything_else" and payloads == []

    said, slots, payloads = run(actions.ActionTopic(), "jeg skal bruge en parkeringslicens", "parking_permit",
                                line="demo-kommune")
    assert said == [say("callback_offer_topic", "da")] and slots["awaiting"] == "callback_offer" and payloads == []

    said, _, payloads = run(actions.ActionTopic(), "ich brauche einen Anwohnerparkausweis", "parking_permit",
                            line="stadt-kreis")
    assert said == [say("handoff_case", "de")]
    assert payloads[0]["reason"] == "case_handling" and payloads[0]["queue"] == "demo-city-contact-centre"

    _, _, payloads = run(actions.ActionTopic(), "i want to complain", "complaint")
    assert payloads[0]["reason"] == "case_handling" and payloads[0]["queue"] == "demo-city-contact-centre"


def test_a_topic_the_configuration_no_longer_has_is_a_miss_not_a_crash():
    said, slots, payloads = run(actions.ActionTopic(), "i need a parking permit", "parking_permit")
    assert said == [say("rephrase")] and slots["misses"] == 1.0 and payloads == []


def test_an_edited_answer_reaches_the_next_turn_and_a_broken_edit_keeps_the_last_good_one(install_copy, monkeypatch):
    import yaml

    monkeypatch.setenv("VOICEBOT_CONFIG", str(install_copy / "voicebot.yml"))
    monkeypatch.setattr(actions, "installation", LiveConfiguration())
    monkeypatch.setattr(LiveConfiguration, "CHECK_EVERY_S", 0.0)
    said, _, _ = run(actions.ActionTopic(), "how do i renew my passport", "passport")
    assert said[0].startswith("Passports are issued by HM Passport Office")
    line = install_copy / "tenants" / "demo-city.yml"
    data = yaml.safe_load(line.read_text())
    data["topics"]["passport"] = "Passports are renewed online at gov dot uk; we no longer check forms."
    line.write_text(yaml.safe_dump(data, allow_unicode=True))
    said, _, _ = run(actions.ActionTopic(), "how do i renew my passport", "passport")
    assert said[0] == "Passports are renewed online at gov dot uk; we no longer check forms."
    line.write_text("id: [unclosed\n")
    said, _, _ = run(actions.ActionTopic(), "how do i renew my passport", "passport")
    assert said[0] == "Passports are renewed online at gov dot uk; we no longer check forms."
