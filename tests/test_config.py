"""Configuration is validated at start-up; every error names the file and the key."""

from pathlib import Path

import pytest
import yaml

from voicebot.config import ConfigError, load_installation

REPO = Path(__file__).resolve().parents[1]


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def error_for(root: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_installation(root / "voicebot.yml")
    return str(caught.value)


def test_shipped_configuration_loads_the_demo_lines():
    inst = load_installation(REPO / "voicebot.yml")
    assert set(inst.tenants) == {"demo-kommune", "stadt-kreis", "demo-city", "faelles-hotline", "fjordby-kommune",
                                 "vasterby-kommun"}
    assert inst.tenant_for_number("+4570202020").municipalities["aadal"].name == "Ådal Kommune"
    assert inst.languages == ["da", "de", "en", "nb", "sv"]
    assert inst.tenant_for_number("+4721991800").id == "fjordby-kommune"
    assert inst.tenant_for_number("+46846500420").id == "vasterby-kommun"
    assert inst.tenant_for_number("+492921300").id == "stadt-kreis"
    assert inst.tenant_for_number("+4929211030").id == "stadt-kreis"
    assert inst.tenant_for_number("+4500000000") is None


@pytest.mark.parametrize("change, file, key, words", [
    (lambda d: d["offices"]["bibliotek"]["hours"].update(monday=["9-17"]),
     "demo-kommune.yml", "offices.bibliotek.hours", "not a time range"),
    (lambda d: d["offices"]["bibliotek"]["hours"].update(mondag=["09:00-17:00"]),
     "demo-kommune.yml", "offices.bibliotek.hours", "not a weekday"),
    (lambda d: d["offices"]["bibliotek"]["hours"].update(monday=["17:00-09:00"]),
     "demo-kommune.yml", "offices.bibliotek.hours", "ends before it starts"),
    (lambda d: d.update(timezone="Europe/Kopenhagen"), "demo-kommune.yml", "timezone", "not a time zone"),
    (lambda d: d.update(language="fr"), "demo-city.yml", "language", "not one of the languages"),
    (lambda d: d.update(default_office="rathaus"), "stadt-kreis.yml", "default_office", "not one of the offices"),
    (lambda d: d["topics"].pop("passport"), "demo-city.yml", "topics.passport",
     "line demo-city says nothing for the topic 'Passports'"),
    (lambda d: d["topics"].update(parking="..."), "demo-city.yml", "topics.parking", "not a topic in"),
    (lambda d: d["topics"].update(passport={"hand_off": "case_handling", "answer": "Hi"}), "demo-city.yml",
     "topics.passport", "give one of: answer"),
    (lambda d: d["topics"].update(passport={"hand_off": "lunch"}), "demo-city.yml", "topics.passport.hand_off",
     "permitted: 'case_handling', 'requested'"),
    (lambda d: d["topics"].update(complaint={"hand_off": "case_handling", "queue": "nowhere"}), "demo-city.yml",
     "topics.complaint.queue", "'nowhere' is not one of the queues"),
    (lambda d: d.update(keypad_menu=["opening_hours", "parking"]), "demo-city.yml", "keypad_menu",
     "'parking' is not a topic"),
    (lambda d: d["holidays"].update(subdivision="XX"), "stadt-kreis.yml", "holidays", "subdivision"),
    (lambda d: d["offices"]["town_hall"]["exceptions"].append({"date": "2026-12-31"}),
     "demo-city.yml", "offices.town_hall.exceptions[1]", "either closed"),
    (lambda d: d.update(numbers=["call us"]), "demo-city.yml", "numbers", "not a phone number"),
    (lambda d: d.update(greting="hi"), "demo-city.yml", "greting", "extra fields not permitted"),
    (lambda d: d["handoff"].update(queue="nowhere"), "demo-city.yml", "handoff.queue", "not a queue"),
    (lambda d: d.update(numbers=["+4570101010"]), "stadt-kreis.yml", "numbers", "already dialled"),
    (lambda d: d["handoff"].pop("transfer_uri"), "demo-city.yml", "handoff", "via: refer needs a transfer_uri"),
])
def test_tenant_errors_name_file_and_key(install_copy, change, file, key, words):
    edit(install_copy / "tenants" / file, change)
    message = error_for(install_copy)
    assert f"{file}: {key}" in message
    assert words in message


def test_topics_are_data_and_lines_must_say_what_they_do_with_each(install_copy):
    """A topic needs a name in every line's language and, on every line, an answer, a handoff or
    a callback offer (or a default for the lines that say nothing)."""
    def add_parking(data):
        data["topics"]["parking_permit"] = {"names": {"en": "Parking permits", "da": "Parkering", "nb": "Parkering",
                                                      "sv": "Parkering"}}
    edit(install_copy / "topics.yml", add_parking)
    assert ("demo-city.yml: topics.parking_permit: line demo-city says nothing for the topic 'Parking permits' "
            "and") in error_for(install_copy)

    edit(install_copy / "topics.yml", lambda d: d["topics"]["parking_permit"].update(default={"offer_callback": True}))
    assert "topics.yml: topics.parking_permit.names: no name in 'de' (line stadt-kreis)" in error_for(install_copy)

    edit(install_copy / "topics.yml", lambda d: d["topics"]["parking_permit"]["names"].update(de="Parkausweise"))
    edit(install_copy / "tenants" / "demo-city.yml",
         lambda d: d["topics"].update(parking_permit="Apply for a parking permit online."))
    inst = load_installation(install_copy / "voicebot.yml")
    assert inst.tenant("demo-city").answer("parking_permit") == "Apply for a parking permit online."
    assert inst.tenant("demo-kommune").topics["parking_permit"].offer_callback
    assert inst.tenant("demo-kommune").topics["complaint"].hand_off == "case_handling"  # topics.yml's default
    assert "parking_permit" in inst.routine_intents

    for topic_id, words in (("greet", "is built in"), ("Parking", "lower-case letters")):
        edit(install_copy / "topics.yml", lambda d: d["topics"].update({topic_id: {"names": {"en": "x"}}}))
        assert "topics.yml: topics" in error_for(install_copy) and words in error_for(install_copy)
        edit(install_copy / "topics.yml", lambda d: d["topics"].pop(topic_id))


def test_settings_errors_name_the_key(install_copy):
    edit(install_copy / "voicebot.yml", lambda d: d["nlu"].update(fallback_threshold=3))
    message = error_for(install_copy)
    assert "voicebot.yml: nlu.fallback_threshold" in message


def test_the_end_of_turn_waits_must_be_in_order(install_copy):
    """A whole request ends a turn sooner than the silence, a last word like "to" later."""
    edit(install_copy / "voicebot.yml", lambda d: d["audio"].update(hangover_ms=1000))
    message = error_for(install_copy)
    assert "voicebot.yml: audio" in message and "unfinished_ms (900)" in message, message


ANNA = {"name": "Anna", "username": "anna", "ha1": "0" * 32, "queues": ["demo-city-contact-centre"]}


@pytest.mark.parametrize("agents, key, words", [
    ({"anna": {**ANNA, "queues": ["nowhere"]}}, "agents", "not in queues"),
    ({"anna": {**ANNA, "ha1": "secret"}}, "agents.anna.ha1", "does not match"),
    ({"anna": {**ANNA, "uri": "sip:anna@192.0.2.1"}}, "agents.anna", "either username and ha1"),
    ({"anna": {**ANNA, "ha1": None}}, "agents.anna", "needs both username and ha1"),
    ({"anna": ANNA, "bo": {**ANNA, "name": "Bo"}}, "agents", "same username"),
])
def test_agent_errors_name_the_key(install_copy, agents, key, words):
    edit(install_copy / "voicebot.yml", lambda d: d.update(agents=agents))
    message = error_for(install_copy)
    assert f"voicebot.yml: {key}" in message and words in message, message


def test_broken_yaml_and_missing_files_are_reported(install_copy):
    (install_copy / "tenants" / "demo-city.yml").write_text("id: [unclosed\n")
    assert "demo-city.yml: not valid YAML" in error_for(install_copy)
    with pytest.raises(ConfigError, match="nothing.yml: file not found"):
        load_installation(install_copy / "nothing.yml")


def test_store_url_can_come_from_the_environment(install_copy, monkeypatch):
    monkeypatch.setenv("VOICEBOT_STORE_URL", "sqlite:////tmp/elsewhere.sqlite3")
    assert load_installation(install_copy / "voicebot.yml").settings.store_url == "sqlite:////tmp/elsewhere.sqlite3"


def test_agent_hours_without_an_open_office_are_warned_of(install_copy, caplog):
    load_installation(REPO / "voicebot.yml")
    assert "agent_hours" not in caplog.text and "follow_office_exceptions" not in caplog.text

    def work_sundays_and_closures(data):
        for office in data["offices"].values():
            office["hours"].pop("sunday", None)
        data["handoff"]["agent_hours"]["sunday"] = ["10:00-12:00"]
        data["handoff"]["follow_office_exceptions"] = False
    edit(install_copy / "tenants" / "demo-kommune.yml", work_sundays_and_closures)
    load_installation(install_copy / "voicebot.yml")
    assert "demo-kommune.yml: handoff.agent_hours.sunday: agents take calls on a day no office" in caplog.text
    assert ("demo-kommune.yml: handoff.follow_office_exceptions: false: callers are offered staff on 2026-12-24, "
            "2026-12-31") in caplog.text
