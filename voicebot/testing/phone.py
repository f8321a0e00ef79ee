"""The test phone (a softphone playing the caller, for the tests, `voicebot call` and the
benchmarks): dials a bot, speaks turns, presses keys, records and times what it hears.

Runs its own pjsua2 endpoint on a free loopback port (one endpoint per process): `run` places
one call; a started phone can `place` calls one after another, or `place_many` for load tests
(up to MAX_CALLS at a time, each played on its own thread).

pjsua2 objects stay on the SIP thread: a calling thread sees a PlacedCall, and the SIP thread
drops the call's pjsua2 object as soon as it is disconnected. pjsua reuses call slots, and a
Call object destroyed after its slot went to a new call hangs up that new call and cuts it off
from its callbacks (pjsua2 2.15 ~Call).

The bot counts as speaking while the audio it sends has speech energy; it has finished a turn
after END_OF_BOT_TURN_S of quiet. A turn waits until the bot's previous speech has finished; a
barge-in turn instead starts BARGE_IN_AFTER_S into it.
"""

import functools
import json
import re
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import numpy as np
import pjsua2 as pj

from voicebot.audio.tts import Synthesizer, Speech, resample
from voicebot.audio.vad import level_dbfs
from voicebot.memory import freeze_long_lived
from voicebot.telephony.media import FRAME_BYTES, FRAME_MS, RATE, FramePort, PortPool, frames_of
from voicebot.telephony.sip import MAX_CALLS, SipStack, audio_active, audio_received, local_account, pj_error_text

PJ_ETOOMANY = 70010  # pj/errno.h; pjsua frees a call's slot a moment after its DISCONNECTED
SPEECH_DBFS = -45.0
# Below any voice activity detector's idea of speech. Trailing frames this quiet are not sent,
# so that the end of the phone's audio is the end of its speech (espeak-ng adds ~0.3 s).
SILENCE_DBFS = -60.0
END_OF_BOT_TURN_S = 1.2
BARGE_IN_AFTER_S = 0.5
PAUSE_S = 0.6  # "..." in a --say turn: longer than the usual end-of-turn silence (300 ms)


@dataclass
class Turn:
    kind: str  # say, wav, dtmf, wait (seconds: listen that long, then play the next turn whatever the bot does)
    value: str
    barge_in: bool = False
    lang: str = "en"


@dataclass
class Spoken:
    """A turn the phone played: its timeline entry, when its audio began and ended."""

    entry: dict
    began: float
    ended: float


class PhoneAccount(pj.Account):
    pass


class PlacedCall:
    """A call as its calling thread sees it; set from the SIP thread."""

    def __init__(self, accept_transfer: bool):
        self.accept_transfer = accept_transfer
        self.port: Optional[FramePort] = None
        self.media_at: Optional[float] = None
        self.media = threading.Event()
        self.disconnected = threading.Event()
        self.status: Optional[int] = None
        self.reason = ""
        self.sip_call_id = ""
        self.transfers: List[str] = []


class PhoneCall(pj.Call):
    def __init__(self, account: pj.Account, placed: PlacedCall, forget: Callable[[PlacedCall], None],
                 ports: PortPool):
        super().__init__(account)
        self.placed, self.forget, self.ports = placed, forget, ports

    def onCallState(self, prm) -> None:
        info = self.getInfo()
        self.placed.sip_call_id = info.callIdString
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.placed.status, self.placed.reason = info.lastStatusCode, info.lastReason
            self.forget(self.placed)  # the last reference: this object goes once the callback returns
            self.placed.disconnected.set()

    def onCallMediaState(self, prm) -> None:
        if self.placed.port is None and audio_active(self):
            port = self.ports.lend()
            audio = self.getAudioMedia(-1)
            audio.startTransmit(port)
            port.startTransmit(audio)
            self.placed.port, self.placed.media_at = port, time.monotonic()
            self.placed.media.set()

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        self.placed.transfers.append(prm.dstUri)
        if not self.placed.accept_transfer:
            prm.statusCode = 603


class Ear:
    """Collects what the phone hears: all audio, and the bot's speech segments."""

    def __init__(self, port: FramePort):
        self.port = port
        self.audio = bytearray()
        self.segments: List[List[float]] = []  # [start, end] monotonic
        self.last_loud: Optional[float] = None

    def drain(self) -> None:
        while not self.port.heard.empty():
            at, frame = self.port.heard.get()
            self.audio += frame
            if level_dbfs(frame) > SPEECH_DBFS:
                if self.segments and at - self.segments[-1][1] < 0.3:
                    self.segments[-1][1] = at
                else:
                    self.segments.append([at, at])
                self.last_loud = at

    def first_speech_after(self, t: float) -> Optional[float]:
        return next((s for s, _ in self.segments if s >= t), None)

    def bot_speaking(self, now: float) -> bool:
        return self.last_loud is not None and now - self.last_loud < END_OF_BOT_TURN_S


class TestPhone:
    """A softphone that plays the caller: see the module's docstring."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, host: str = "127.0.0.1", number: str = "caller", transport: str = "udp",
                 jitter_floor_ms: Optional[int] = None):
        self.host, self.number = host, number  # number: the user part of From, what caller ID shows
        self.calls: Dict[PlacedCall, PhoneCall] = {}  # until disconnected; SIP thread only
        self.stack = SipStack(host, 0, [transport], ["G722/16000", "PCMA/8000", "PCMU/8000"],
                              self._make_account, self._hang_up_all, user_agent="voicebot-test-phone",
                              jitter_floor_ms=jitter_floor_ms)

    def _floor(self) -> dict:
        """The jitter buffer's floor, and the frames it plays empty while it first fills to it: one
        less than the floor holds (it plays from the frame that completes it)."""
        floor = self.stack.jitter_floor_ms
        return {"jitter_floor_ms": floor, "jbuf_prefetch": max(0, floor // FRAME_MS - 1) if floor else 0}

    def start(self) -> "TestPhone":
        self.stack.start()
        self.stack.register_this_thread("phone")
        return self

    def stop(self) -> None:
        self.stack.stop()

    def __enter__(self) -> "TestPhone":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def run(self, uri: str, turns: List[Turn], record: Optional[Path] = None, timeout: float = 60,
            accept_transfer: bool = False) -> dict:
        """One call, on an endpoint started for it."""
        with self:
            return self.place(uri, turns, record, timeout, accept_transfer)

    def place_many(self, uri: str, turns: List[Turn], calls: int, concurrent: int, timeout: float = 60,
                   stagger_s: float = 0.0) -> List[dict]:
        """`calls` calls playing the same turns, `concurrent` (at most MAX_CALLS) at a time; the
        first ones start `stagger_s` apart so that their turns do not all fall together.
        Timelines in call order; a call that could not be placed has `connected` false and an
        `error`."""
        if not 1 <= concurrent <= MAX_CALLS:
            raise ValueError(f"one phone holds 1 to {MAX_CALLS} calls at a time (pjsua2's PJSUA_MAX_CALLS), "
                             f"not {concurrent}")
        for turn in turns:  # render the phone's speech now, not while calls are running
            if turn.kind in ("say", "wav"):
                turn_speech(turn)
        # As the bot does: a full garbage collection over all that is loaded would hold the GIL,
        # and so this phone's audio clock, for tens of milliseconds (voicebot.memory).
        freeze_long_lived()

        def register() -> None:  # each call's thread uses its media port
            self.stack.register_this_thread(threading.current_thread().name)

        def one(index: int) -> dict:
            time.sleep(stagger_s * index if index < concurrent else 0)
            try:
                return self.place(uri, turns, timeout=timeout)
            except Exception as error:  # a load test reports a failed call, it does not stop
                return {"uri": uri, "turns": [], "connected": False, "error": pj_error_text(error)}

        with ThreadPoolExecutor(concurrent, "phone", initializer=register) as pool:
            return list(pool.map(one, range(calls)))

    def place(self, uri: str, turns: List[Turn], record: Optional[Path] = None, timeout: float = 60,
              accept_transfer: bool = False) -> dict:
        """One call on the started endpoint: its timeline."""
        started = time.monotonic()
        deadline = started + timeout
        call = self._dial_when_free(uri, accept_transfer, deadline)
        timeline = {"uri": uri, "turns": []}
        while not (call.media.is_set() or call.disconnected.is_set()) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not call.media.is_set():
            self.stack.run(self._finish, call).result(10)
            call.disconnected.wait(5)
            timeline.update(connected=False, status=call.status, reason=call.reason)
            return timeline
        timeline.update(connected=True, call_id=call.sip_call_id, connect_ms=round((time.monotonic() - started) * 1000))
        ear = Ear(call.port)
        spoken = self._converse(turns, ear, call, deadline, started)
        hung_up_by_bot = call.disconnected.is_set()
        received = self.stack.run(self._finish, call).result(10)
        call.disconnected.wait(5)
        ear.drain()
        timeline["turns"] = [answer_timing(turn, spoken[i + 1].began if i + 1 < len(spoken) else None, ear.segments)
                             for i, turn in enumerate(spoken)]
        timeline.update(
            heard=[{"start_ms": round((s - started) * 1000), "ms": round((e - s) * 1000) + FRAME_MS}
                   for s, e in ear.segments],
            heard_ms=len(ear.audio) // 2 * 1000 // RATE, transfers=call.transfers,
            hung_up_by="bot" if hung_up_by_bot else "caller", status=call.status)
        if received:
            timeline["received"] = {**received, "frames_heard": len(ear.audio) // FRAME_BYTES,
                                    "clock": call.port.clock_lateness(), **self._floor()}
        if record:
            record.write_bytes(Speech(bytes(ear.audio), RATE).wav_bytes())
        if call.disconnected.is_set():  # else the port may still carry the call's audio
            self.stack.run(self.stack.ports.take_back, call.port)
        return timeline

    def _dial_when_free(self, uri: str, accept_transfer: bool, deadline: float) -> PlacedCall:
        while True:
            try:
                return self.stack.run(self._dial, uri, accept_transfer).result(10)
            except pj.Error as error:
                if error.status != PJ_ETOOMANY or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    # -- SIP thread
    def _make_account(self, ep):
        return local_account(ep, PhoneAccount, self.host, self.stack.port, self.number)

    def _dial(self, uri: str, accept_transfer: bool) -> PlacedCall:
        placed = PlacedCall(accept_transfer)
        call = self.calls[placed] = PhoneCall(self.stack.account, placed, self._forget, self.stack.ports)
        try:
            call.makeCall(uri, pj.CallOpParam(True))
        except pj.Error:
            del self.calls[placed]  # never got a slot: safe to drop
            raise
        return placed

    def _forget(self, placed: PlacedCall) -> None:
        self.calls.pop(placed, None)

    def _finish(self, placed: PlacedCall) -> Optional[dict]:
        """Hang up if the call is still up, after reading what its audio stream received."""
        call = self.calls.get(placed)
        if call is None or not call.isActive():
            return None
        received = receive_stats(call, placed.media_at)
        call.hangup(pj.CallOpParam())
        return received

    def _hang_up_all(self) -> None:
        for call in list(self.calls.values()):
            if call.isActive():
                call.hangup(pj.CallOpParam())
        self.calls.clear()

    # -- the call's own thread
    def _converse(self, turns: List[Turn], ear: Ear, call: PlacedCall, deadline: float,
                  started: float) -> List[Spoken]:
        """Play the turns, each when the bot's speech (greeting, previous answer) allows."""
        spoken: List[Spoken] = []
        bot_after = started
        waited = False
        for turn in turns:
            if turn.kind == "wait":
                self._wait(ear, call, min(deadline, time.monotonic() + float(turn.value)))
                waited = True
                continue
            if not waited:
                self._listen(ear, call, deadline, bot_after, whole=not turn.barge_in)
            waited = False
            if call.disconnected.is_set() or time.monotonic() >= deadline:
                break
            spoken.append(self._play(turn, ear, call))
            bot_after = spoken[-1].ended
        if not waited:
            self._listen(ear, call, deadline, bot_after, whole=True)
        return spoken

    @staticmethod
    def _wait(ear: Ear, call: PlacedCall, until: float) -> None:
        while time.monotonic() < until and not call.disconnected.is_set():
            ear.drain()
            time.sleep(0.02)

    @staticmethod
    def _listen(ear: Ear, call: PlacedCall, deadline: float, after: float, whole: bool) -> None:
        """Until the bot, having spoken after `after`, has gone quiet (whole) or has been
        speaking for BARGE_IN_AFTER_S; or hangs up, or time is up."""
        while time.monotonic() < deadline and not call.disconnected.is_set():
            ear.drain()
            now = time.monotonic()
            if whole and ear.last_loud and ear.last_loud >= after and not ear.bot_speaking(now):
                return
            first = ear.first_speech_after(after)
            if not whole and first is not None and now - first >= BARGE_IN_AFTER_S:
                return
            time.sleep(0.02)

    def _play(self, turn: Turn, ear: Ear, call: PlacedCall) -> Spoken:
        entry = {"kind": turn.kind, "value": turn.value, "barge_in": turn.barge_in}
        if turn.kind == "dtmf":
            sent_at = time.monotonic()
            self.stack.run(lambda: self.calls[call].dialDtmf(turn.value)).result(5)
            return Spoken(entry, sent_at, sent_at + 0.1 * len(turn.value))
        pcm = turn_speech(turn)
        call.port.play(pcm)
        while call.port.playing and not call.disconnected.is_set():
            ear.drain()
            time.sleep(0.01)
        ended = call.port.last_sent_at or time.monotonic()
        entry["speech_ms"] = len(pcm) // 2 * 1000 // RATE
        return Spoken(entry, ended - entry["speech_ms"] / 1000, ended)


def answer_timing(turn: Spoken, next_began: Optional[float], segments: List[List[float]]) -> dict:
    """The turn's entry with the bot's answer: latency from the end of the caller's audio to the
    first bot speech, how long the bot spoke until the next turn; for a barge-in how long the bot
    went on talking after the caller began, else how much of the bot the caller heard over their
    own words (an early answer they went on after: voicebot.call.session)."""
    entry = dict(turn.entry)
    answer = [(s, e) for s, e in segments if turn.ended <= s and (next_began is None or s < next_began)]
    entry["latency_ms"] = round((answer[0][0] - turn.ended) * 1000) if answer else None
    entry["bot_ms"] = round(sum(e - s for s, e in answer) * 1000) + FRAME_MS if answer else 0
    if turn.entry["barge_in"]:
        talked_over = [e for s, e in segments if s < turn.ended and e >= turn.began]
        entry["bot_stopped_after_ms"] = round((talked_over[-1] - turn.began) * 1000) if talked_over else None
    else:
        over = [(s, min(e, turn.ended)) for s, e in segments if turn.began <= s < turn.ended]
        entry["bot_over_caller_ms"] = round(sum(e - s for s, e in over) * 1000) + FRAME_MS * len(over)
    return entry


def receive_stats(call: pj.Call, media_at: Optional[float]) -> Optional[dict]:
    """What the call's audio stream has received (SIP thread; voicebot.telephony.sip.audio_received),
    with its codec and how long the media flowed."""
    info = call.getInfo()
    index = next((m.index for m in info.media
                  if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE), None)
    if index is None:
        return None
    return {"codec": call.getStreamInfo(index).codecName,
            "media_ms": round((time.monotonic() - media_at) * 1000) if media_at else None,
            **audio_received(call, index)}


def turn_speech(turn: Turn) -> bytes:
    return _speech(turn.kind, turn.value, turn.lang)


@functools.lru_cache(maxsize=32)
def _speech(kind: str, value: str, lang: str) -> bytes:
    if kind == "say":  # " ... " is a caller's pause mid-sentence, PAUSE_S long
        parts = [trim_trailing_silence(Synthesizer(lang).render(part, RATE).pcm) for part in value.split(" ... ")]
        return bytes(int(PAUSE_S * RATE) * 2).join(parts)
    with wave.open(value) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{value}: expected 16-bit PCM WAV")
        pcm = wav.readframes(wav.getnframes())
        if wav.getnchannels() == 2:
            pcm = np.frombuffer(pcm, "<i2")[::2].tobytes()
        return resample(pcm, wav.getframerate(), RATE)  # as given: a WAV may be silent on purpose


def trim_trailing_silence(pcm: bytes) -> bytes:
    frames = frames_of(pcm)
    while frames and level_dbfs(frames[-1]) < SILENCE_DBFS:
        frames.pop()
    return b"".join(frames)


def parse_turns(args: List[str], lang: str) -> List[Turn]:
    """--say TEXT, --wav FILE, --dtmf DIGITS, --wait SECONDS in order; --barge-in applies to the
    next turn. After --wait the next turn plays at once, whether the bot speaks or not (hold music)."""
    turns, barge_in, i = [], False, 0
    while i < len(args):
        arg = args[i]
        if arg == "--barge-in":
            barge_in, i = True, i + 1
            continue
        if arg not in ("--say", "--wav", "--dtmf", "--wait") or i + 1 >= len(args):
            raise ValueError(f"unexpected {arg!r}: turns are --say TEXT, --wav FILE, --dtmf DIGITS, "
                             "--wait SECONDS, --barge-in")
        if arg == "--wait":
            float(args[i + 1])  # ValueError names it
        turns.append(Turn(arg[2:], args[i + 1], barge_in, lang))
        barge_in, i = False, i + 2
    return turns


def timeline_json(timeline: Union[dict, List[dict]]) -> str:
    return json.dumps(timeline, ensure_ascii=False, indent=2)


def timeline_from_output(stdout: str) -> Union[dict, List[dict], None]:
    """What `voicebot call --json` printed: the JSON starts on a line of its own, after any
    log lines pjsua wrote before its log level was set. None if there is none."""
    start = re.search(r"^[\[{]$", stdout, re.M)
    return json.JSONDecoder().raw_decode(stdout, start.start())[0] if start else None
