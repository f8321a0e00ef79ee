"""Trainers' edits of topics, answers and examples go into the files a programmer edits, with
their comments kept; an edit that would not load is undone with the loader's message; examples
that sound like another topic are named."""

import pytest

from voicebot.config import ConfigError, load_installation
from voicebot.dialogue.examples import examples_by_intent, overlaps
from voicebot.dialogue.training import load_heldout
from voicebot.knowledge.editing import TopicEditor

PARKING = {"en": "Parking permits", "da": "Parkeringstilladelser", "de": "Parkausweise",
           "nb": "Parkeringstillatelser", "sv": "Parkeringstillstånd"}


@pytest.fixture
def editor(install_copy):
    return TopicEditor(load_installation(install_copy / "voicebot.yml"))


def test_a_new_topic_and_its_answer_are_written_with_the_files_comments_kept(editor, install_copy):
    editor.create("parking_permit", PARKING, {"offer_callback": True})
    editor.set_behaviour("parking_permit", "demo-city", {"answer": "Apply online for a parking permit."})
    inst = load_installation(install_copy / "voicebot.yml")
    assert inst.topics["parking_permit"].names == PARKING
    assert inst.tenant("demo-city").topics["parking_permit"].answer == "Apply online for a parking permit."
    assert inst.tenant("demo-kommune").topics["parking_permit"].offer_callback  # the topic's default
    assert (install_copy / "topics.yml").read_text().startswith("# The topics callers ask about, shared by every line.")
    assert "# Demo City: an English-speaking line" in (install_copy / "tenants" / "demo-city.yml").read_text()
    written = editor.written(inst)
    assert written["demo-city", None] >= {"parking_permit", "passport"}
    assert "parking_permit" not in written["demo-kommune", None]
    assert "waste_collection" in written["faelles-hotline", "aadal"]  # a municipality's own answer
    assert "passport" in written["faelles-hotline", None] - written["faelles-hotline", "aadal"]


def test_an_edit_that_would_not_load_is_undone_and_says_which_line_lacks_what(editor, install_copy):
    topics, city = install_copy / "topics.yml", install_copy / "tenants" / "demo-city.yml"
    before = topics.read_text(), city.read_text()
    with pytest.raises(ConfigError, match=r"demo-city.yml: topics.parking_permit: line demo-city says nothing for "
                                          r"the topic 'Parking permits' and .*topics.yml gives no default"):
        editor.create("parking_permit", PARKING, None)  # no default, and no line says what it does
    with pytest.raises(ConfigError, match=r"demo-city.yml: topics.passport: line demo-city says nothing"):
        editor.set_behaviour("passport", "demo-city", None)  # passport has no default to fall back on
    with pytest.raises(ConfigError, match=r"topics.yml: topics: 'Parking!': a topic's id is its intent"):
        editor.create("Parking!", PARKING, {"offer_callback": True})
    with pytest.raises(ConfigError, match=r"names: no name in 'da' \(line demo-kommune\)"):
        editor.create("parking_permit", {"en": "Parking permits"}, {"offer_callback": True})
    assert (topics.read_text(), city.read_text()) == before
    assert load_installation(install_copy / "voicebot.yml").tenant("demo-city").topics["passport"].answer


def test_examples_are_added_and_removed_wherever_they_were_written(editor, install_copy):
    inst = load_installation(install_copy / "voicebot.yml")
    hand_written = examples_by_intent(inst, "en")["passport"][0]
    assert editor.add_examples("passport", "en", ["my passport   got stolen on holiday", hand_written]) == [
        "my passport got stolen on holiday"]  # the second is one already
    assert "my passport got stolen on holiday" in (install_copy / "nlu_data" / "en" / "inbox.yml").read_text()
    with pytest.raises(ConfigError, match="is already an example of 'passport'"):
        editor.add_examples("waste_collection", "en", [hand_written])
    nlu = install_copy / "nlu_data" / "en" / "nlu.yml"
    comments = [line for line in nlu.read_text().splitlines() if line.lstrip().startswith("#")]
    assert editor.remove_example("passport", "en", hand_written.upper())
    assert editor.remove_example("passport", "en", "my passport got stolen on holiday")
    assert not editor.remove_example("passport", "en", "my passport got stolen on holiday")
    after = examples_by_intent(inst, "en")
    assert hand_written not in after["passport"] and "my passport got stolen on holiday" not in after["passport"]
    assert [line for line in nlu.read_text().splitlines() if line.lstrip().startswith("#")] == comments


def test_new_examples_that_sound_like_another_topic_are_named_with_the_sentence(install_copy):
    inst = load_installation(install_copy / "voicebot.yml")
    found = overlaps(inst, "en", "book_appointment", ["I want to renew my passport", "can I book a slot next week"])
    assert [(o.text, o.intent) for o in found] == [("I want to renew my passport", "passport")]
    assert "passport" in found[0].other.lower()


def test_held_out_sentences_are_never_training_examples(editor, install_copy):
    inst = load_installation(install_copy / "voicebot.yml")
    example = examples_by_intent(inst, "en")["passport"][0]
    with pytest.raises(ConfigError, match="is a training example"):
        editor.add_heldout("passport", "en", [example])
    assert editor.add_heldout("passport", "en", ["my passport ran out last week", "my passport ran out last week"]) == [
        "my passport ran out last week"]
    with pytest.raises(ConfigError, match="held out for 'passport' already"):
        editor.add_heldout("waste_collection", "en", ["My passport ran out last week"])
    with pytest.raises(ConfigError, match="is a held-out sentence"):
        editor.add_examples("passport", "en", ["my passport ran out last week"])
    heldout = (install_copy / "heldout" / "en.yml").read_text()
    assert heldout.startswith("# Held-out English test utterances") and "my passport ran out last week" in heldout
    assert ("passport", "my passport ran out last week") in load_heldout(inst, "en")
    assert editor.remove_heldout("passport", "en", "MY passport ran out last week")
    assert ("passport", "my passport ran out last week") not in load_heldout(inst, "en")
