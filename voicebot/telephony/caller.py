"""A test caller: dials a bot, speaks turns, presses keys, records and times what it hears.

Runs its own pjsua2 endpoint on a free loopback port. The bot counts as speaking while the
audio it sends has speech energy; it has finished a turn after END_OF_BOT_TURN_S of quiet.
"""

import json
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import pjsua2 as pj

from voicebot.audio.tts import Synthesizer, Speech, resample
from voicebot.audio.vad import level_dbfs
from voicebot.telephony.media import FRAME_MS, RATE, FramePort
from voicebot.telephony.sip import SipStack, audio_active, local_account

SPEECH_DBFS = -45.0
END_OF_BOT_TURN_S = 1.2


@dataclass
class Turn:
    kind: str  # say, wav, dtmf
    value: str
    barge_in: bool = False
    lang: str = "en"


class CallerAccount(pj.Account):
    pass


class CallerCall(pj.Call):
    def __init__(self, account):
        super().__init__(account)
        self.port: Optional[FramePort] = None
        self.connected = threading.Event()
        self.media = threading.Event()
        self.disconnected = threading.Event()
        self.status: Optional[int] = None
        self.reason = ""
        self.sip_call_id = ""
        self.transfers: List[str] = []
        self.accept_transfer = False

    def onCallState(self, prm) -> None:
        info = self.getInfo()
        self.sip_call_id = info.callIdString
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.connected.set()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.status, self.reason = info.lastStatusCode, info.lastReason
            self.disconnected.set()

    def onCallMediaState(self, prm) -> None:
        if self.port is None and audio_active(self):
            self.port = FramePort("caller")
            audio = self.getAudioMedia(-1)
            audio.startTransmit(self.port)
            self.port.startTransmit(audio)
            self.media.set()

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        self.transfers.append(prm.dstUri)
        if not self.accept_transfer:
            prm.statusCode = 603


class Ear:
    """Collects what the caller hears: all audio, and the bot's speech segments."""

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


class TestCaller:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.call: Optional[CallerCall] = None
        self.stack = SipStack(host, 0, ["udp"], ["G722/16000", "PCMA/8000", "PCMU/8000"],
                              self._make_account, self._hang_up, user_agent="voicebot-test-caller")

    def _make_account(self, ep):
        return local_account(ep, CallerAccount, self.host, self.stack.port, "caller")

    def _hang_up(self) -> None:
        if self.call is not None and self.call.isActive():
            self.call.hangup(pj.CallOpParam())
        if self.call is not None:
            self.call.port = None
        self.call = None

    def run(self, uri: str, turns: List[Turn], record: Optional[Path] = None, timeout: float = 60,
            accept_transfer: bool = False) -> dict:
        self.stack.start()
        self.stack.register_this_thread("caller")
        try:
            return self._run(uri, turns, record, timeout, accept_transfer)
        finally:
            self.stack.stop()

    def _dial(self, uri: str, accept_transfer: bool) -> CallerCall:
        call = CallerCall(self.stack.account)
        call.accept_transfer = accept_transfer
        call.makeCall(uri, pj.CallOpParam(True))
        self.call = call
        return call

    def _run(self, uri, turns, record, timeout, accept_transfer) -> dict:
        started = time.monotonic()
        deadline = started + timeout
        call = self.stack.run(self._dial, uri, accept_transfer).result(10)
        timeline = {"uri": uri, "turns": []}
        while not (call.media.is_set() or call.disconnected.is_set()) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not call.media.is_set():
            call.disconnected.wait(max(0.0, deadline - time.monotonic()))
            timeline.update(connected=False, status=call.status, reason=call.reason)
            return timeline
        timeline.update(connected=True, call_id=call.sip_call_id, connect_ms=round((time.monotonic() - started) * 1000))
        ear = Ear(call.port)
        self._wait_for_bot(ear, call, deadline, after=started)
        for turn in turns:
            if call.disconnected.is_set():
                break
            timeline["turns"].append(self._turn(turn, ear, call, deadline))
        hung_up_by_bot = call.disconnected.is_set()
        if not hung_up_by_bot:
            self.stack.run(self._hang_up).result(10)
            call.disconnected.wait(5)
        ear.drain()
        timeline.update(
            heard=[{"start_ms": round((s - started) * 1000), "ms": round((e - s) * 1000) + FRAME_MS}
                   for s, e in ear.segments],
            heard_ms=len(ear.audio) // 2 * 1000 // RATE, transfers=call.transfers,
            hung_up_by="bot" if hung_up_by_bot else "caller", status=call.status)
        if record:
            record.write_bytes(Speech(bytes(ear.audio), RATE).wav_bytes())
        return timeline

    def _wait_for_bot(self, ear: Ear, call: CallerCall, deadline: float, after: float) -> None:
        """Until the bot has spoken (after `after`) and gone quiet, or hung up."""
        while time.monotonic() < deadline and not call.disconnected.is_set():
            ear.drain()
            now = time.monotonic()
            if ear.last_loud and ear.last_loud >= after and not ear.bot_speaking(now):
                return
            time.sleep(0.02)

    def _turn(self, turn: Turn, ear: Ear, call: CallerCall, deadline: float) -> dict:
        entry = {"kind": turn.kind, "value": turn.value, "barge_in": turn.barge_in}
        if turn.barge_in:  # wait until the bot is talking, then talk over it
            while time.monotonic() < deadline and not (ear.drain() or ear.bot_speaking(time.monotonic())):
                time.sleep(0.02)
            time.sleep(0.5)
        if turn.kind == "dtmf":
            sent_at = time.monotonic()
            self.stack.run(lambda: call.dialDtmf(turn.value)).result(5)
            ended = sent_at + 0.1 * len(turn.value)
        else:
            pcm = caller_speech(turn)
            call.port.play(pcm)
            while call.port.playing and not call.disconnected.is_set():
                ear.drain()
                time.sleep(0.01)
            ended = call.port.last_sent_at or time.monotonic()
            entry["speech_ms"] = len(pcm) // 2 * 1000 // RATE
        self._wait_for_bot(ear, call, deadline, after=ended)
        first = ear.first_speech_after(ended)
        entry["latency_ms"] = round((first - ended) * 1000) if first else None
        entry["bot_ms"] = round(sum(e - s for s, e in ear.segments if s >= ended) * 1000) + FRAME_MS if first else 0
        if turn.barge_in:
            spoken_over = [s for s in ear.segments if s[0] < ended <= s[1] + 0.3]
            entry["bot_stopped_after_ms"] = (round((spoken_over[-1][1] - (ended - entry["speech_ms"] / 1000)) * 1000)
                                             if spoken_over else None)
        return entry


def caller_speech(turn: Turn) -> bytes:
    if turn.kind == "say":
        return Synthesizer(turn.lang).render(turn.value, RATE).pcm
    with wave.open(turn.value) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{turn.value}: expected 16-bit PCM WAV")
        pcm = wav.readframes(wav.getnframes())
        if wav.getnchannels() == 2:
            pcm = np.frombuffer(pcm, "<i2")[::2].tobytes()
        return resample(pcm, wav.getframerate(), RATE)


def parse_turns(args: List[str], lang: str) -> List[Turn]:
    """--say TEXT, --wav FILE, --dtmf DIGITS in order; --barge-in applies to the next turn."""
    turns, barge_in, i = [], False, 0
    while i < len(args):
        arg = args[i]
        if arg == "--barge-in":
            barge_in, i = True, i + 1
            continue
        if arg not in ("--say", "--wav", "--dtmf") or i + 1 >= len(args):
            raise ValueError(f"unexpected {arg!r}: turns are --say TEXT, --wav FILE, --dtmf DIGITS, --barge-in")
        turns.append(Turn(arg[2:], args[i + 1], barge_in, lang))
        barge_in, i = False, i + 2
    return turns


def timeline_json(timeline: dict) -> str:
    return json.dumps(timeline, ensure_ascii=False, indent=2)
