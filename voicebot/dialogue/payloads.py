"""Structured decisions that leave the dialogue as custom payloads, never as text to parse."""

from typing import Dict, List, Optional

# Why a caller is handed to a person; the same names go to records and dashboards.
HANDOFF_REASONS = ("requested", "case_handling", "misunderstood", "technical_fault", "callback_failed")


def handoff(reason: str, queue: str, topics: List[str], last_utterance: str,
            municipality: Optional[str] = None) -> Dict:
    """`municipality`: the one the caller means, on a line shared by several."""
    assert reason in HANDOFF_REASONS, reason
    if last_utterance.startswith("/"):  # a keypad choice reaches Rasa as an intent command
        last_utterance = f"(keypad: {last_utterance[1:]})"
    summary = (f"municipality: {municipality}; " if municipality else "") + \
        f"topics: {', '.join(topics) or 'none'}; last: {last_utterance}"
    return {"voicebot": {"action": "handoff", "reason": reason, "queue": queue, "topics": topics, "summary": summary,
                         **({"municipality": municipality} if municipality else {})}}


def hangup(reason: str) -> Dict:
    return {"voicebot": {"action": "hangup", "reason": reason}}


def callback_recorded(topic: str) -> Dict:
    """A callback request was stored: the call counts as settled by a callback, not by the bot."""
    return {"voicebot": {"action": "callback", "topic": topic}}


def municipality(municipality_id: str, named_now: bool) -> Dict:
    """On a line shared by several municipalities: the one this turn was answered for, and
    whether the caller named it in this turn (a town's name alone is understood, not a miss)."""
    return {"voicebot": {"action": "municipality", "id": municipality_id, "named_now": named_now}}
