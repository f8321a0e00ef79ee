"""The kinds of event on a call's timeline (CallRecord.add), in one place: what the call layer and
the text channel write, and what the journal, the metrics and the dashboard read back. A str
enum: a kind is stored and sent as its value, and compares equal to it when read back."""

import enum
from typing import Iterable, List, Optional


class Kind(str, enum.Enum):
    # Turns (rows of the turns table, not of call_events)
    HEARD = "heard"  # the caller's words (text None on a keypad-only line), with recognition timings
    DTMF = "dtmf"  # a key (digit)
    BOT = "bot"  # the dialogue's reply: intent, confidence, entities, texts, handoff, hangup, callback
    PLAYING = "playing"  # a reply's first audio is queued (purpose, text; turn_ms from the caller's end of speech)
    PARTIAL = "partial"  # the streaming recogniser's words so far: in memory only
    # The call
    ANSWERED = "answered"
    HANGUP = "hangup"  # by caller or bot; during: the reply the caller cut short; audio_in: what the
    # caller's audio stream received (RTP packets lost, jitter, jitter buffer frames lost or late);
    # audio_out: how punctually the bot's frames went out (ticks of the bridge's clock late)
    ERROR = "error"  # where, detail
    SILENCE = "silence"  # count: no speech for audio.silence_timeout_s, the nth time
    BARGE_IN = "barge_in"  # stop_ms, dropped_ms, during
    TAKEN_BACK = "taken_back"  # text, intent, went_on (stopped_after_ms): an answer given early, stopped
    # and rewound (the caller went on in its turn, or their final words asked something else)
    TRANSFER = "transfer"  # uri and headers of a REFER, or ok False with the reason
    TRANSFER_RESULT = "transfer_result"  # code (detail)
    # The bot's own queue
    QUEUE_REFUSED = "queue_refused"  # queue, reason (no_agents, full)
    QUEUE_ENTERED = "queue_entered"  # queue, position, expected_wait_s
    QUEUE_POSITION = "queue_position"  # position, expected_wait_s: announced
    AGENT_RINGING = "agent_ringing"  # agent, leg, handoff_ms
    AGENT_ALERTING = "agent_alerting"  # leg, handoff_ms: the agent's phone rings (180)
    AGENT_MISSED = "agent_missed"  # agent, why
    QUEUE_ANSWERED = "queue_answered"  # queue, agent, waited_s
    AGENT_WHISPER = "agent_whisper"  # agent, text: said in the agent's ear only
    BRIDGED = "bridged"  # agent, two_way_ms
    AGENT_HUNG_UP = "agent_hung_up"  # agent
    AGENT_LOST = "agent_lost"  # agent: hung up before the bridge; the caller waits again
    QUEUE_ABANDONED = "queue_abandoned"  # queue, waited_s
    CALLBACK_OFFERED = "callback_offered"  # queue
    CALLBACK_REQUESTED = "callback_requested"  # queue, number_ending, waited_s
    # Written by the store for a call that a stopped worker left open
    WORKER_LOST = "worker_lost"  # worker


TURN_EVENTS = {Kind.HEARD, Kind.DTMF, Kind.BOT, Kind.PLAYING, Kind.PARTIAL}
# Timeline events that are not turns and not noise: kept as call_events rows.
STORED_EVENTS = set(Kind) - TURN_EVENTS - {Kind.WORKER_LOST}


def frames_late_or_missing(audio_in: dict) -> int:
    """Of a stream's receive statistics (a hangup's audio_in; telephony.sip.audio_received): the
    jitter buffer's frames that were missing when due, lost, or came too late to play; not those
    it played while it filled to its floor at the start (jbuf_prefetch, pjsua counts them empty)."""
    return max(0, audio_in["jbuf_empty"] - audio_in.get("jbuf_prefetch", 0)) + audio_in["jbuf_lost"] \
        + audio_in["jbuf_discarded"]


def without_taken_back(events: Iterable[dict]) -> List[dict]:
    """A call record's events less the turns of early answers the bot took back (their heard, bot
    and playing events, and the taken_back itself): each turn the caller was answered in is then
    one heard event with words and the bot's reply to it."""
    kept: List[dict] = []
    turn_at: Optional[int] = None  # where the turn of the last words heard begins in `kept`
    for event in events:
        if event["event"] == Kind.HEARD and event.get("text"):
            turn_at = len(kept)
        elif event["event"] == Kind.TAKEN_BACK and turn_at is not None:
            del kept[turn_at:]
            turn_at = None
            continue
        kept.append(event)
    return kept
