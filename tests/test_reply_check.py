"""The action server's replies are checked with a validator compiled once
(voicebot/dialogue/reply_check.py): the same verdicts as Rasa's own check, Rasa's error for a
wrong reply, and the schema checked once, not on every reply."""

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from voicebot.dialogue.reply_check import use_compiled_reply_check

GOOD = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "topic", "value": "passport", "timestamp": None}],
     "responses": [{"text": "We are open from 9 to 17.", "custom": {"handoff": None}}]},
    {},
]
BAD = [
    {"events": "not a list"},
    {"responses": [1, 2]},
    {"events": [{"no": "event name"}]},
]


def rasa_s_own(method):
    return getattr(method, "__wrapped__", method)  # functools.wraps keeps it


def check(result: dict, compiled: bool):
    current = RemoteAction._validate_action_result
    return (current if compiled else rasa_s_own(current))(RemoteAction("action_answer", None), result)


def test_the_compiled_check_agrees_with_rasa_s_own_and_raises_its_error():
    use_compiled_reply_check()
    assert RemoteAction._validate_action_result is not rasa_s_own(RemoteAction._validate_action_result)
    for result in GOOD:
        assert check(result, compiled=True) is True and check(result, compiled=False) is True
    for result in BAD:
        with pytest.raises(jsonschema.ValidationError) as rasa:
            check(result, compiled=False)
        with pytest.raises(jsonschema.ValidationError) as ours:
            check(result, compiled=True)
        assert str(ours.value.message) == str(rasa.value.message)
        assert "Failed to validate Action server response" in ours.value.message


def test_the_schema_is_not_checked_again_for_each_reply(monkeypatch):
    use_compiled_reply_check()
    checked = []
    kind = jsonschema.validators.validator_for(RemoteAction.action_response_format_spec())
    monkeypatch.setattr(kind, "check_schema", classmethod(lambda cls, schema: checked.append(schema)))
    for result in GOOD * 5:
        assert check(result, compiled=True)
    assert checked == []
    check(GOOD[0], compiled=False)  # Rasa's own check does it every time
    assert len(checked) == 1
