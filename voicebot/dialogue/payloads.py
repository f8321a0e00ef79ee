"""Structured decisions that leave the dialogue as custom payloads, never as text to parse."""

from typing import Dict, List

# Why a caller is handed to a person; the same names go to records and dashboards.
HANDOFF_REASONS = ("requested", "case_handling", "misunderstood", "technical_fault", "callback_failed")


def handoff(reason: str, queue: str, topics: List[str], last_utterance: str) -> Dict:
    assert reason in HANDOFF_REASONS, reason
    if last_utterance.startswith("/"):  # a keypad choice reaches Rasa as an intent command
        last_utterance = f"(keypad: {last_utterance[1:]})"
    summary = f"topics: {', '.join(topics) or 'none'}; last: {last_utterance}"
    return {"voicebot": {"action": "handoff", "reason": reason, "queue": queue,
                         "topics": topics, "summary": summary}}


def hangup(reason: str) -> Dict:
    return {"voicebot": {"action": "hangup", "reason": reason}}


def callback_recorded(topic: str) -> Dict:
    """A callback request was stored: the call counts as settled by a callback, not by the bot."""
    return {"voicebot": {"action": "callback", "topic": topic}}
