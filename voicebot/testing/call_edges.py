"""Fakes for a call's edges, so the call layer (voicebot.call) is tested directly, in
milliseconds, with scripted timings: audio out (a port clocked twenty times faster than a real
call), the SIP side (a Phone that records what it was asked), the listener (an ear the test
speaks through), the voice (silence as long as the words) and Rasa (replies by the message).
Everything between them is the product's own code: the session, its state, speaker, queue wait,
the dialogue runtime, the queue and the store. The real edges are proven by the phone tests."""

import asyncio
import queue
import time
from typing import Callable, Dict, List, Optional

from voicebot.audio.listener import Answerable, BargeIn, SpeechStarted, Utterance, WentOn
from voicebot.call.events import HungUp
from voicebot.call.phone import PhoneError, ShownAs
from voicebot.telephony.media import SendQueue

WORD_MS = 200  # how long the fake voice takes per word


class FakePort(SendQueue):
    """A call's audio port: sends one queued 20 ms frame every `tick_s` (1 ms: twenty times
    real time); `heard` is there for the listener, unused."""

    def __init__(self, tick_s: float = 0.001):
        self.heard: queue.SimpleQueue = queue.SimpleQueue()
        self._clear_sent()
        self.played_bytes = 0
        self._clock = asyncio.ensure_future(self._send_every(tick_s))

    async def _send_every(self, tick_s: float) -> None:
        while True:
            await asyncio.sleep(tick_s)
            self._next_frame()

    def play(self, pcm: bytes) -> None:
        self.played_bytes += len(pcm)
        super().play(pcm)

    def close(self) -> None:
        self._clock.cancel()


class FakeVoice:
    """Renders silence, WORD_MS per word, and keeps what it was asked to say."""

    def __init__(self):
        self.said: List[str] = []

    async def render(self, text: str) -> bytes:
        await asyncio.sleep(0.002)  # rendering takes a moment, in which the call goes on
        self.said.append(text)
        return bytes(32 * WORD_MS * len(text.split()))  # 16 kHz, 16 bit: 32 bytes a millisecond


class ScriptedEar:
    """The call's listener, spoken through by the test: `speak(text)` sends what a real listener
    sends for a turn (speech started, barge-in, the utterance)."""

    def __init__(self, hears: bool = True):
        self._hears = hears
        self.emit: Optional[Callable] = None
        self.judge: Optional[Callable] = None  # the call's judge of the words at a pause
        self.stopped = False

    def hears(self, language: str) -> bool:
        return self._hears

    def listen(self, tenant, frames, emit, name: str, judge=None) -> "ScriptedEar":
        self.emit, self.judge = emit, judge
        return self

    def stop(self) -> None:
        self.stopped = True

    def speak(self, text: str, confidence: float = 0.9, speech_ms: int = 800, turn_end: str = "silence") -> None:
        now = time.monotonic()
        self.emit(SpeechStarted(now))
        self.emit(BargeIn(now))
        self.emit(Utterance(text, confidence, speech_ms, now, now, now, turn_end=turn_end))

    def pause(self, text: str) -> Answerable:
        """A turn begun with `text`, at a pause where the listener finds those words answerable."""
        now = time.monotonic()
        self.emit(SpeechStarted(now))
        self.emit(BargeIn(now))
        self.early = Answerable(text, now, now, 800, 20)
        self.emit(self.early)
        return self.early

    def go_on(self) -> None:
        """The caller speaks again in that turn."""
        self.early.went_on.set()
        self.emit(WentOn())

    def end(self, text: str, confidence: float = 0.9) -> None:
        """That turn ends with `text`."""
        now = time.monotonic()
        self.emit(Utterance(text, confidence, 1200, now, now, now, turn_end="complete"))


class FakePhone:
    """The SIP side of one call. Hanging up is confirmed (HungUp) as the network would; agent
    legs get ids leg-1, leg-2...; `refuse_refer` / `unreachable` make those requests fail."""

    def __init__(self, refuse_refer: Optional[str] = None, unreachable: bool = False):
        self.session = None  # set once the session exists
        self.refuse_refer, self.unreachable = refuse_refer, unreachable
        self.hung_up = False
        self.refers: List[tuple] = []
        self.agent_calls: List[tuple] = []
        self.shown_as: Optional[ShownAs] = None  # who the last agent call showed as calling
        self.dropped: List[str] = []
        self.bridged: List[str] = []
        self.released = asyncio.Event()

    def hang_up(self) -> None:
        if not self.hung_up:
            self.hung_up = True
            asyncio.get_running_loop().call_soon(self.session.event, HungUp(200))

    async def refer(self, uri: str, headers: Dict[str, str]) -> None:
        if self.refuse_refer:
            raise PhoneError(self.refuse_refer)
        self.refers.append((uri, headers))

    async def call_agent(self, uri: str, headers: Dict[str, str], shown_as: ShownAs) -> str:
        if self.unreachable:
            raise PhoneError(f"{uri}: 404 Not Found")
        self.agent_calls.append((uri, headers))
        self.shown_as = shown_as
        return f"leg-{len(self.agent_calls)}"

    def drop_agent(self, leg: str) -> None:
        self.dropped.append(leg)

    async def bridge(self, leg: str) -> bool:
        self.bridged.append(leg)
        return True

    async def release(self) -> None:
        self.released.set()


class ScriptedRasa:
    """Rasa's side of the dialogue: `replies` maps a message (the caller's text, or "/intent"
    for a key) to the bot messages Rasa would send; anything else is not understood."""

    def __init__(self, replies: Dict[str, List[dict]], fallback: str = "Sorry, I did not understand.",
                 intents: Optional[Dict[str, str]] = None):
        self.replies, self.fallback = replies, fallback
        self.intents = intents or {}  # other words for a message's intent (text -> message)
        self.latest: Dict[str, dict] = {}
        self.forgotten: List[str] = []
        self.conversations: Dict[str, List[str]] = {}  # the messages each holds, the taken back removed

    async def send(self, conversation_id: str, text: str, metadata: dict) -> List[dict]:
        self.conversations.setdefault(conversation_id, []).append(text)
        known = text in self.replies
        self.latest[conversation_id] = {"intent": {"name": text.lstrip("/") if known else "nlu_fallback",
                                                   "confidence": 0.95 if known else 0.3}, "entities": []}
        return self.replies.get(text, [{"text": self.fallback}])

    async def latest_message(self, conversation_id: str) -> dict:
        return self.latest.get(conversation_id, {})

    async def take_back(self, conversation_id: str, sent: List[str]) -> None:
        held = self.conversations.get(conversation_id, [])
        if sent and held[-len(sent):] == sent:
            del held[-len(sent):]

    async def parse(self, text: str) -> dict:
        text = self.intents.get(text, text)
        return {"text": text, "intent": {"name": text.lstrip("/") if text in self.replies else "nlu_fallback",
                                         "confidence": 0.9}, "entities": []}

    def forget(self, conversation_id: str) -> None:
        self.forgotten.append(conversation_id)
