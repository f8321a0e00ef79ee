"""A line shared by several municipalities (the demo evening hotline, tenants/faelles-hotline.yml):
the bot asks which municipality when the answer depends on it, understands it by name, town or
misspelling, keeps it, lets the caller change it, answers with that municipality's facts, says
plainly that the hotline sees no cases, and hands off with the municipality; the operators'
figures split by it; configuration errors name the file and key."""

import datetime as dt
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
import yaml
from playwright.sync_api import expect

from conftest import REPO, TextBot, events, place_call
from voicebot.config import ConfigError, load_installation
from voicebot.knowledge.municipalities import municipality_named
from voicebot.store import RecordStore
from voicebot.store.models import Turn
from voicebot.call.session import context_headers

HOTLINE = "faelles-hotline"
HOTLINE_NUMBER = "+4570202020"
TUESDAY_EVENING = "2026-11-24T16:00:00+01:00"  # the hotline and its agents are open; the counters are not
WHICH = "Hvilken kommune bor du i: Ådal Kommune, Strandby Kommune og Skovlund Kommune?"


def test_a_municipality_is_known_by_name_town_and_misspelling_not_by_a_look_alike_word():
    line = load_installation().tenant(HOTLINE)
    said = {"jeg bor i Kildeby": "aadal", "Ådal": "aadal", "i Aadal": "aadal", "Møllerupp": "aadal",
            "jeg bor i Skovlunde": "skovlund", "hvad med strandbyen": "strandby", "det er Klintebye": "strandby",
            "Strandby Kommune": "strandby", "find det under affald": None, "andre lande": None,
            "jeg vil gerne tale med en medarbejder": None, "borgerservice": None}
    assert {text: municipality_named(line, text) for text in said} == said


def test_a_municipality_without_an_answer_is_refused_naming_the_file_and_key(install_copy):
    path = install_copy / "tenants" / f"{HOTLINE}.yml"
    data = yaml.safe_load(path.read_text())
    del data["topics"]["childcare"]  # only Ådal answers it now
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    with pytest.raises(ConfigError, match=rf"{HOTLINE}.yml: municipalities.strandby.topics.childcare: Strandby Kommune "
                                          rf"on line {HOTLINE} says nothing for the topic 'Børnepasning', and neither the "
                                          r"line \(topics.childcare\) nor .*topics.yml \(a default\) does"):
        load_installation(install_copy / "voicebot.yml")
    data["municipalities"]["aadal"]["topics"]["parking"] = "Parker hvor du vil."
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    with pytest.raises(ConfigError, match=rf"{HOTLINE}.yml: municipalities.aadal.topics.parking: not a topic"):
        load_installation(install_copy / "voicebot.yml")


def test_a_municipality_may_have_its_own_queue_and_holidays(install_copy):
    path = install_copy / "tenants" / f"{HOTLINE}.yml"
    data = yaml.safe_load(path.read_text())
    data["municipalities"]["strandby"].update(queue="demo-kommune-borgerservice", holidays={"country": "DE"})
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    line = load_installation(install_copy / "voicebot.yml").tenant(HOTLINE)
    strandby, aadal = line.for_municipality("strandby"), line.for_municipality("aadal")
    assert (strandby.handoff.queue, aadal.handoff.queue) == ("demo-kommune-borgerservice", "faelles-hotline")
    assert dt.date(2026, 10, 3) in strandby.holiday_calendar() and dt.date(2026, 10, 3) not in aadal.holiday_calendar()
    assert strandby.office().name == "Borgerservice i Strandby" and "klinteby" in strandby.office().aliases
    data["municipalities"]["strandby"]["queue"] = "nowhere"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    with pytest.raises(ConfigError, match=rf"{HOTLINE}.yml: municipalities.strandby.queue: 'nowhere' is not one"):
        load_installation(install_copy / "voicebot.yml")


@pytest.fixture(scope="module")
def hotline(trained, tmp_path_factory):
    store_url = f"sqlite:///{tmp_path_factory.mktemp('hotline') / 'records.sqlite3'}"
    bot = TextBot(TUESDAY_EVENING, store_url, sip=True, lines=(HOTLINE,))
    bot.store_url = store_url
    yield bot
    bot.stop()


def test_the_bot_asks_which_municipality_keeps_it_and_lets_the_caller_change_it(hotline):
    asked, hours, address, other = hotline.conversation(
        HOTLINE, "hvornår har borgerservice åbent i morgen", "Kildeby", "hvor ligger borgerservice",
        "jeg bor faktisk i Strandby, hvornår har borgerservice åbent i morgen")
    assert asked["messages"] == [WHICH]
    assert hours["messages"][0] == "Borgerservice i Ådal har åbent i morgen fra klokken 10 til 15."
    assert hours["municipality"] == "aadal"
    assert address["messages"][0].startswith("Borgerservice i Ådal ligger på Rådhusvej 2 i Ådal")  # remembered
    assert other["messages"][0] == "Borgerservice i Strandby har åbent i morgen fra klokken 9 til 14."


def test_only_answers_that_differ_between_municipalities_ask_for_one(hotline):
    moving, bins, strandby = hotline.conversation(
        HOTLINE, "hvordan melder jeg flytning", "hvornår bliver mit affald hentet", "Strandby")
    assert moving["messages"][0].startswith("Du melder flytning digitalt på borger punkt dk")  # one answer for all
    assert moving["municipality"] is None
    assert bins["messages"] == [WHICH]
    assert strandby["messages"][0].startswith("I Strandby Kommune bliver dagrenovation hentet")
    # "Strandby" alone was understood as the answer to the question, not a miss for the inbox.
    turn = stored_turn(hotline, "Strandby")
    assert turn.review is None and turn.intent in ("nlu_fallback", "out_of_scope")


def stored_turn(bot, text: str) -> Turn:
    """The caller's turn as the bot recorded it (on a thread of its own: wait for it)."""
    records, deadline = RecordStore(bot.store_url, migrate=False), time.monotonic() + 10
    while True:
        with records.session() as session:
            turn = session.scalar(sa.select(Turn).where(Turn.text == text).order_by(Turn.id.desc()))
        if turn is not None or time.monotonic() > deadline:
            assert turn is not None, f"no turn {text!r} recorded"
            return turn
        time.sleep(0.2)


def test_a_case_question_is_told_who_can_see_the_case_and_when_they_are_open(hotline):
    reply = hotline.conversation(HOTLINE, "jeg bor i Skovlund, hvor langt er min sag")[0]
    assert reply["messages"][0].startswith(
        "Hotlinen kan ikke se din sag, men det kan Skovlund Kommune på telefon 70 60 70 80. Borgerservice i Skovlund "
        "har lukket lige nu. Borgerservice i Skovlund åbner igen i morgen klokken 10."), reply
    assert not reply["handoff"]  # guidance, not case handling: no agent on the hotline sees the case


def test_the_handoff_carries_the_municipality_and_the_figures_split_by_it(hotline):
    _, handoff = hotline.conversation(HOTLINE, "jeg bor i Egebjerg", "jeg vil gerne tale med en medarbejder")
    assert handoff["handoff"]["municipality"] == "Skovlund Kommune" and handoff["handoff"]["queue"] == "faelles-hotline"
    assert handoff["handoff"]["summary"].startswith("municipality: Skovlund Kommune;")
    headers = context_headers(load_installation().tenant(HOTLINE), handoff["handoff"], "c1", "request_agent")
    assert headers["X-Voicebot-Municipality"] == "Skovlund Kommune"
    records = RecordStore(hotline.store_url, migrate=False)
    deadline = time.monotonic() + 10  # the bot writes its records on a thread of its own
    while f"{HOTLINE}/skovlund" not in records.report(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1)).by_municipality:
        assert time.monotonic() < deadline, "no call recorded for Skovlund"
        time.sleep(0.2)


def test_a_caller_who_twice_names_no_municipality_goes_to_a_person(hotline):
    asked, again, person = hotline.conversation(HOTLINE, "hvornår bliver mit affald hentet", "ved det ikke", "øh")
    assert asked["messages"] == [WHICH]
    assert again["messages"][0].startswith("Det fangede jeg ikke.")
    assert person["handoff"]["reason"] == "misunderstood"
    # Asked which municipality, a caller who asks for a person gets one at once.
    asked, person = hotline.conversation(HOTLINE, "hvornår bliver mit affald hentet", "medarbejder")
    assert asked["messages"] == [WHICH] and person["handoff"]["reason"] == "requested"


def test_a_phone_caller_chooses_on_the_keypad_and_names_the_town(hotline):
    timeline = place_call(hotline.sip_uri(HOTLINE_NUMBER), "--lang", "da", "--dtmf", "5", "--say", "Strandby",
                          timeout=90)
    replies = events(hotline.call_record(timeline["call_id"]), "bot")
    assert replies[0]["texts"] == [WHICH]
    assert replies[1]["texts"][0].startswith("I Strandby Kommune bliver dagrenovation hentet"), replies
    assert replies[1]["municipality"] == "strandby"


def test_the_agents_screen_pop_names_the_municipality(hotline, page):
    conversation_id, _ = hotline.start(HOTLINE)
    hotline.say(HOTLINE, conversation_id, "jeg bor i Egebjerg")
    assert hotline.say(HOTLINE, conversation_id, "jeg vil gerne tale med en medarbejder")["handoff"]
    env = {**os.environ, "VOICEBOT_STORE_URL": hotline.store_url}
    added = subprocess.run([sys.executable, "-m", "voicebot.cli", "users", "add", "alice", "--role", "agent"],
                           input="correct horse battery\n" * 2, env=env, cwd=REPO, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    page.goto(hotline.url + "/dashboard/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button:has-text('Sign in')")
    page.goto(f"{hotline.url}/dashboard/calls/{conversation_id}")
    expect(page.locator("#call-municipality")).to_have_text("Skovlund Kommune")
    expect(page.locator("#call-handoff")).to_contain_text("requested")
