"""Topics are data (topics.yml, nlu_data, the lines' tenants files): a trainer adds one without a
programmer, retrains, and callers get it, by text and by phone; a model trained before the topic
was dropped, or examples of an intent that is no topic, get a clear word instead of silence."""

import shutil

import pytest
import yaml

from conftest import AGENT_HOURS, DEMO_CITY, REPO, TextBot, events, place_call
from voicebot.config import ConfigError, load_installation
from voicebot.dialogue.training import TRAINING_FILES, check_examples, train_stale

PARKING_ANSWER = ("You can apply for a resident's parking permit online at demo city dot gov dot uk. "
                  "Have your car's registration and a proof of address ready.")
PARKING_EXAMPLES = [
    "I need a parking permit", "how do I get a resident's parking permit", "can I get a parking permit",
    "I want to apply for a parking permit for my street", "my parking permit has expired",
    "how much is a residents parking permit", "where do I renew my parking permit",
    "parking permit please", "I'd like a visitor parking permit for my mum", "do I need a permit to park outside my house",
    "how long does a parking permit take", "I've got a new car, how do I change my parking permit",
    "can my carer get a parking permit", "is there a parking permit for businesses",
    "I lost my parking permit", "apply for a resident parking permit",
]


def add_parking_topic(root) -> None:
    """What a trainer writes: the topic with its names, English examples, and what each line does
    (demo-city answers and offers it on the keypad as 6; the other lines offer a callback)."""
    topics = yaml.safe_load((root / "topics.yml").read_text())
    topics["topics"]["parking_permit"] = {"names": {"en": "Parking permits", "da": "Parkering", "de": "Parkausweise",
                                                    "nb": "Parkeringstillatelser", "sv": "Parkeringstillstånd"},
                                          "default": {"offer_callback": True}}
    (root / "topics.yml").write_text(yaml.safe_dump(topics, allow_unicode=True))
    (root / "nlu_data" / "en" / "parking_permit.yml").write_text(yaml.safe_dump(
        {"version": "3.1", "nlu": [{"intent": "parking_permit",
                                    "examples": "".join(f"- {text}\n" for text in PARKING_EXAMPLES)}]}))
    line = root / "tenants" / "demo-city.yml"
    data = yaml.safe_load(line.read_text())
    data["topics"]["parking_permit"] = PARKING_ANSWER
    data["keypad_menu"] = ["opening_hours", "passport", "change_address", "digital_id_help", "waste_collection",
                           "parking_permit"]
    line.write_text(yaml.safe_dump(data, allow_unicode=True))


@pytest.fixture(scope="module")
def parking_bot(tmp_path_factory, store_url):
    root = tmp_path_factory.mktemp("parking")
    for name in ("voicebot.yml", *TRAINING_FILES):
        shutil.copy(REPO / name, root / name)
    for folder in ("tenants", "nlu_data", "stories"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "audio_prompts").symlink_to(REPO / "audio_prompts")
    add_parking_topic(root)
    train_stale(load_installation(root / "voicebot.yml"), ["en"])
    server = TextBot(AGENT_HOURS, store_url, sip=True, config=root / "voicebot.yml", lines=("demo-city",))
    yield server
    server.stop()


def test_a_topic_a_trainer_added_as_data_is_answered_by_text_and_by_phone(parking_bot):
    reply = parking_bot.conversation("demo-city", "hi, can I get a parking permit for my road")[0]
    assert reply["intent"] == "parking_permit" and reply["messages"][0] == PARKING_ANSWER
    timeline = place_call(parking_bot.sip_uri(DEMO_CITY), "--dtmf", "6")
    answer = events(parking_bot.call_record(timeline["call_id"]), "bot")[0]
    assert answer["intent"] == "parking_permit" and answer["texts"][0] == PARKING_ANSWER


def test_examples_of_an_intent_that_is_no_topic_are_refused_before_training(install_copy):
    (install_copy / "nlu_data" / "en" / "parking_permit.yml").write_text(yaml.safe_dump(
        {"version": "3.1", "nlu": [{"intent": "parking_permit", "examples": "- I need a parking permit\n"}]}))
    with pytest.raises(ConfigError, match="intent 'parking_permit' has examples but is no topic in .*topics.yml"):
        check_examples(load_installation(install_copy / "voicebot.yml"), "en")


def test_a_topic_without_examples_in_a_language_is_named_before_training(install_copy):
    add_parking_topic(install_copy)
    inst = load_installation(install_copy / "voicebot.yml")
    assert check_examples(inst, "en") == []
    assert check_examples(inst, "da") == [
        f"{install_copy}/nlu_data/da: no examples of the topic 'parking_permit' in 'da': callers in this language "
        "cannot be understood on it"]
