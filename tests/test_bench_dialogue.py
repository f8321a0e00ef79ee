"""`voicebot bench dialogue`: the judging of replies (milliseconds) and a real run on a small
scenario set through the trained English model and the action server, one clock per scenario."""

import datetime as dt
import re

import pytest
import yaml

from voicebot.bench.dialogue import Scenario, Turn, judge, load_scenarios, off_topic_report, outcome, run
from voicebot.config import ConfigError
from voicebot.dialogue.runtime import BotReply
from voicebot.knowledge.phrasebook import phrasebook

from conftest import REPO

SCENARIOS = REPO / "tests" / "data" / "dialogue_scenarios"
AT = dt.datetime(2026, 12, 21, 10, tzinfo=dt.timezone.utc)


def scenario(*turns: Turn) -> Scenario:
    return Scenario(id="t", category="test", line="demo-city", at=AT, turns=list(turns), lang="en")


def test_outcome_labels_what_the_bot_did(inst):
    tenant, say = inst.tenant("demo-city"), phrasebook("en").say
    hours = "The central library is open tomorrow from 9 am to 7 pm."
    assert outcome(BotReply([hours, tenant.answer("passport"), say("anything_else")]), tenant) == \
        ["answer", "passport"]
    assert outcome(BotReply([say("rephrase")]), tenant) == ["rephrase"]
    assert outcome(BotReply(["Our staff are not available right now.", say("callback_offer")]), tenant) == \
        ["callback_offer"]
    assert outcome(BotReply([say("handoff_requested")], handoff={"action": "handoff"}), tenant) == ["handoff"]
    assert outcome(BotReply([say("goodbye")], hangup={"action": "hangup"}), tenant) == ["goodbye"]


def test_judge_grades_a_wrong_fact_and_an_unexpected_goodbye_as_wrong(inst):
    tenant, say = inst.tenant("demo-city"), phrasebook("en").say
    hours = BotReply(["The town hall is open tomorrow from 9 am to 5 pm.", say("anything_else")])
    asked = Turn("is the town hall open tomorrow", ["answer"], must=["9 am"], must_not=["7 pm"])
    assert judge(scenario(asked), [hours], tenant, [1.0]).grade == "correct"

    missing = Turn("is the town hall open tomorrow", ["answer"], must=["Tuesday"])
    verdict = judge(scenario(missing), [hours], tenant, [1.0])
    assert verdict.grade == "partly" and "did not say 'Tuesday'" in verdict.problems[0]

    stated = Turn("is the town hall open tomorrow", ["answer"], must_not=["5 PM"])
    verdict = judge(scenario(stated), [hours], tenant, [1.0])
    assert verdict.grade == "wrong" and "said '5 PM'" in verdict.wrong_facts[0]

    correction = Turn("no sorry i meant sunday", ["answer"])
    hung_up = BotReply([say("goodbye")], hangup={"action": "hangup"})
    later = Turn("and the library", ["answer"])
    verdict = judge(scenario(correction, later), [hung_up], tenant, [1.0])
    assert verdict.grade == "wrong" and "hung up" in verdict.wrong_facts[0]
    assert "never asked" in verdict.problems[-1]
    handed_on = BotReply([say("handoff_requested")], handoff={"action": "handoff"})
    assert judge(scenario(correction), [handed_on], tenant, [1.0]).grade == "partly"


def test_off_topic_report_counts_municipal_answers_and_lists_them():
    lines = off_topic_report("en", [("what's the weather", ["out_of_scope"]), ("bank hours", ["answer"]),
                                    ("renew my gym card", ["passport"]), ("um", ["rephrase"])])
    assert lines[0] == "  en: 4 questions, answered as a municipal topic: 2 (50.0%)"
    assert lines[1] == "    municipal answer 2, out_of_scope 1, rephrase 1"
    assert lines[2:] == ["    'bank hours' -> answer", "    'renew my gym card' -> passport"]


def test_a_scenario_file_with_a_line_of_another_language_is_refused(inst, tmp_path):
    (tmp_path / "en.yml").write_text(yaml.safe_dump([
        {"id": "x", "category": "c", "line": "demo-kommune", "at": "2026-12-21T10:00+01:00",
         "turns": [{"say": "hej", "expect": "greet_back"}]}]))
    with pytest.raises(ConfigError, match="does not speak en"):
        load_scenarios(inst, tmp_path, ["en"])
    (tmp_path / "en.yml").write_text(yaml.safe_dump([
        {"id": "x", "category": "c", "line": "demo-city", "at": "2026-12-21T10:00",
         "turns": [{"say": "hi", "expect": "greet_back"}]}]))
    with pytest.raises(ConfigError, match="UTC offset"):
        load_scenarios(inst, tmp_path, ["en"])


def test_every_language_of_the_lines_has_scenarios_that_load(inst):
    scenarios = load_scenarios(inst, REPO / "benchmarks" / "dialogue", inst.languages)
    assert {s.lang for s in scenarios} == set(inst.languages)


def test_bench_plays_scenarios_at_their_own_instants_through_the_real_dialogue(trained, tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "out_of_scope.txt").write_text("can you order me a pizza\nwhat's the weather like\n")
    lines = run(trained, ["en"], SCENARIOS, lambda _: None, off_topic=tmp_path)
    text = "\n".join(lines)
    # Four right (Christmas Eve's short day, a correction, two questions in one turn, small
    # talk), one partly (expected a driving licence answer), one canary stating its "wrong fact".
    assert re.search(r"^en\s+6\s+4\s+1\s+1\s+66\.7%$", text, re.M), text
    assert "en-test-canary: turn 1 'is the library open on saturday': said '4 pm'" in text
    assert "en-test-partly: turn 1 'can i get a new passport': expected driving_licence, got passport" in text
    assert re.search(r"^  named_day\s+1/2$", text, re.M), text
    assert "  en: 2 questions, answered as a municipal topic: 0 (0.0%)" in text
