"""A call's ear: a worker thread that turns received frames into caller turns.

Frames come from the media port's queue; voice activity detection finds the start and end of
speech. A streaming recogniser (Vosk) transcribes while the caller speaks; a segmented one
(Whisper) gets the turn's audio on the decoding pool, never on this thread, so end-of-speech
and barge-in detection go on while a turn is decoded. Its decoding starts as soon as the caller
pauses (`early_decode_ms`), and is kept if they do not go on, which hides most of its cost
inside the end-of-speech hangover.

Events go to `emit` (the call's owner), typed: SpeechStarted, BargeIn once the turn has
`barge_in_ms` of voice, Partial, Answerable (a routine question may be answered before the turn
ends) and WentOn (the caller spoke again after it), Utterance and RecognizerFailed. A sound
shorter than min_speech_ms is never reported. Utterances are emitted in the order they were spoken.
"""

import collections
import concurrent.futures
import logging
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Deque, List, Optional, Union

from voicebot.audio.asr.base import (Recognizer, RecognizerError, SegmentedRecognizer, StreamingRecognizer,
                                     Transcript)
from voicebot.audio.format import FRAME_MS
from voicebot.audio.turn_end import EarlyWait, TurnEnd, TurnEndSettings, Verdict
from voicebot.audio.vad import SpeechDetector, VadSettings

logger = logging.getLogger(__name__)

LEAD_IN_MS = 600  # kept from before the detector's "start", beyond min_speech_ms


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # monotonic time of the frame where speech was detected


@dataclass(frozen=True)
class BargeIn:
    """The caller has spoken barge_in_ms into a turn: enough to stop the bot talking over them."""
    at: float  # when that turn's speech was detected


@dataclass(frozen=True)
class Partial:
    text: str  # the streaming recogniser's words so far


@dataclass(frozen=True)
class Answerable:
    """The words so far are a whole routine question and the caller has paused for the line's
    answer_early_ms: it may be answered now, while the turn is still open. Should the caller go on
    in the same turn, `went_on` is set (at once, on the listener's thread) and WentOn follows."""
    text: str
    ended_at: float  # monotonic time of the last voiced frame
    at: float  # when it was judged answerable
    speech_ms: int
    asr_busy_ms: int  # recogniser time spent on these words
    went_on: threading.Event = field(default_factory=threading.Event, compare=False)


@dataclass(frozen=True)
class WentOn:
    """The caller spoke again in the turn of an Answerable: its answer is to stop."""


@dataclass(frozen=True)
class RecognizerFailed:
    why: str


@dataclass(frozen=True)
class Utterance:
    """A finished turn: what the caller said, and when."""
    text: str
    confidence: float
    speech_ms: int
    ended_at: float  # monotonic time of the last voiced frame
    detected_at: float  # when the hangover ran out (end of speech detected)
    recognised_at: float  # when the final transcript was ready
    asr_busy_ms: int = 0  # recogniser time spent on it (over speech_ms: the real-time factor)
    turn_end: str = "silence"  # what ended it: silence, or the words' verdict (complete, unfinished)


ListenerEvent = Union[SpeechStarted, BargeIn, Partial, Answerable, WentOn, Utterance, RecognizerFailed]


@dataclass
class _Turn:
    """A spoken turn on its way to a transcript (segmented recognisers)."""
    frames: List[bytes]
    speech_ms: int
    ended_at: float
    started_at: float = 0.0  # when its speech was detected
    voiced_ms: int = 0  # voice heard since (barge_in once it reaches barge_in_ms)
    barged_in: bool = False
    decoding: Optional[concurrent.futures.Future] = None  # of the frames up to the caller's pause
    end: Optional[TurnEnd] = None  # verdicts on the words so far, when the line judges them
    ended_by: str = "silence"
    early: Optional[Answerable] = None  # emitted at this pause, the caller not having gone on
    pause_ms: int = 0  # silence since the last voiced frame
    fed_s: float = 0.0  # a streaming recogniser's time on the turn so far


class Listener:
    def __init__(self, frames: "queue.SimpleQueue", emit: Callable[[ListenerEvent], None],
                 vad: VadSettings, make_recognizer: Optional[Callable[[], Recognizer]],
                 max_utterance_ms: int = 15000, name: str = "listener",
                 decoder: Optional[concurrent.futures.Executor] = None, early_decode_ms: int = 100,
                 make_detector: Optional[Callable[[], SpeechDetector]] = None, barge_in_ms: int = 400,
                 turn_end: Optional[TurnEndSettings] = None):
        self.frames, self.emit, self.vad, self.turn_end = frames, emit, vad, turn_end
        self.make_recognizer = make_recognizer
        self.make_detector = make_detector or (lambda: SpeechDetector(vad))
        self.max_utterance_ms = max_utterance_ms
        self.decoder, self.early_decode_ms, self.barge_in_ms = decoder, early_decode_ms, barge_in_ms
        self.early_wait = turn_end and EarlyWait(turn_end)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._pending: Deque[tuple] = collections.deque()  # (turn, detected_at) awaiting decoding, in order

    def start(self) -> "Listener":
        self._thread.start()
        return self

    def stop(self) -> None:
        """The thread ends within 0.2 s (its wait for a frame); not joined here, since the
        caller is the event loop of every call, which must not stall that long."""
        self._stop.set()

    def _run(self) -> None:
        detector = self.make_detector()
        recognizer = self._make_recognizer()
        # Audio from before speech was confirmed, so the recogniser hears the first syllable: the
        # detector says "start" min_speech_ms after voice began as it judges it, and Silero judges
        # the onset of distorted or clipped speech (and a call's first words) up to a few hundred
        # ms late; a first word lost to that became another word ("영업" heard as "아니요").
        lead_in = collections.deque(maxlen=(self.vad.min_speech_ms + LEAD_IN_MS) // FRAME_MS)
        turn: Optional[_Turn] = None
        partial = ""
        while not self._stop.is_set():
            self._emit_decoded()
            try:
                received_at, frame = self.frames.get(timeout=0.05 if self._pending else 0.2)
            except queue.Empty:
                continue
            event = detector.feed(frame)
            if not detector.speaking and event != "end":
                lead_in.append(frame)
                continue
            if event == "start":
                self.emit(SpeechStarted(received_at))
                turn = _Turn(list(lead_in), len(lead_in) * FRAME_MS, received_at, received_at,
                             self.vad.min_speech_ms - FRAME_MS, end=self.turn_end and TurnEnd(self.turn_end))
                lead_in.clear()
            turn.frames.append(frame)
            turn.speech_ms += FRAME_MS
            if detector.last_voiced:
                turn.ended_at = received_at
                turn.voiced_ms += FRAME_MS
                if not turn.barged_in and turn.voiced_ms >= self.barge_in_ms:
                    turn.barged_in = True
                    self.emit(BargeIn(turn.started_at))
                if turn.early is not None:
                    turn.early.went_on.set()
                    self.emit(WentOn())
                    turn.early = None
                if turn.end and turn.pause_ms:
                    self.early_wait.went_on(turn.end.verdict, turn.pause_ms)
            turn.pause_ms = detector.quiet_ms
            ended = event == "end" or turn.speech_ms >= self.max_utterance_ms
            try:
                if isinstance(recognizer, StreamingRecognizer):
                    fed = time.perf_counter()
                    text = recognizer.feed(b"".join(turn.frames) if event == "start" else frame)
                    turn.fed_s += time.perf_counter() - fed
                    if text and text != partial:
                        partial = text
                        self.emit(Partial(text))
                elif recognizer is not None:
                    self._decode_early(recognizer, turn, detector, ended)
            except Exception as error:
                recognizer = self._failed(error)
            if turn.end and not ended:
                self._judge_words(turn, detector, partial)
            if ended:
                detected_at = time.monotonic()
                if turn.end:
                    turn.end.close()
                if recognizer is not None and not isinstance(recognizer, StreamingRecognizer):
                    self._pending.append((turn, detected_at))
                else:
                    transcript = Transcript("", 0.0)
                    try:
                        transcript = self._final(recognizer, turn) if recognizer else transcript
                    except Exception as error:
                        recognizer = self._failed(error)
                    self._emit_utterance(turn, transcript, detected_at)
                detector.reset()
                turn, partial = None, ""
        self._emit_decoded()
        detector.close()

    @staticmethod
    def _final(recognizer: StreamingRecognizer, turn: _Turn) -> Transcript:
        """A streaming recogniser's transcript of the turn, with its time on the whole turn."""
        started = time.perf_counter()
        transcript = recognizer.final()
        return replace(transcript, busy_s=turn.fed_s + time.perf_counter() - started)

    def _make_recognizer(self) -> Optional[Recognizer]:
        try:
            return self.make_recognizer() if self.make_recognizer else None
        except Exception as error:
            return self._failed(error)

    def _failed(self, error: Exception) -> None:
        """The recogniser failed: the call hears of it; this call goes on without one."""
        if not isinstance(error, RecognizerError):
            logger.exception("the recogniser failed")
        self.emit(RecognizerFailed(str(error)))
        return None

    def _decode_early(self, recognizer: SegmentedRecognizer, turn: _Turn, detector: SpeechDetector,
                      ended: bool) -> None:
        """Decode the turn from the moment the caller pauses; if they go on, that decoding is
        dropped (cancelled if it has not started) and the next pause starts another."""
        if detector.last_voiced and not ended:
            if turn.decoding is not None:
                turn.decoding.cancel()
                turn.decoding = None
        elif turn.decoding is None and (ended or detector.quiet_ms >= self.early_decode_ms):
            audio = b"".join(turn.frames)
            turn.decoding = (self.decoder.submit(recognizer.transcribe, audio) if self.decoder
                             else _done(recognizer.transcribe, audio))

    def _judge_words(self, turn: _Turn, detector: SpeechDetector, partial: str) -> None:
        """The next frame's hangover, from the verdict on the words so far: the streaming
        recogniser's partial text, or the early decoding's (waited for while it runs); and
        whether those words may be answered now."""
        text, busy_s, decoded = partial, turn.fed_s, turn.decoding
        if decoded is not None and decoded.done():
            failed = decoded.cancelled() or decoded.exception()
            transcript = Transcript("", 0.0) if failed else decoded.result()
            text, busy_s = transcript.text, transcript.busy_s
        pending = decoded is not None and not decoded.done()
        detector.hangover_ms = turn.end.hangover_ms(text, detector.quiet_ms, decoding=pending)
        verdict = turn.end.verdict
        turn.ended_by = {Verdict.COMPLETE: "complete", Verdict.ANSWERABLE: "complete",
                         Verdict.UNFINISHED: "unfinished"}.get(verdict, "silence")
        if turn.early is None and text.strip() and self.early_wait.answers(verdict, detector.quiet_ms):
            turn.early = Answerable(text.strip(), turn.ended_at, time.monotonic(), turn.speech_ms, round(busy_s * 1000))
            self.emit(turn.early)

    def _emit_decoded(self) -> None:
        """Utterances whose decoding finished, oldest first (a later one waits for an earlier)."""
        while self._pending and self._pending[0][0].decoding.done():
            turn, detected_at = self._pending.popleft()
            if turn.decoding.cancelled():  # the line is shutting down
                continue
            try:
                transcript = turn.decoding.result()
            except Exception as error:
                self._failed(error)
                transcript = Transcript("", 0.0)
            self._emit_utterance(turn, transcript, detected_at)

    def _emit_utterance(self, turn: _Turn, transcript: Transcript, detected_at: float) -> None:
        recognised_at = max(time.monotonic(), detected_at)
        self.emit(Utterance(transcript.text, transcript.confidence, turn.speech_ms, turn.ended_at,
                            detected_at, recognised_at, round(transcript.busy_s * 1000), turn.ended_by))


def _done(fn, *args) -> concurrent.futures.Future:
    """fn(*args) run here, as a finished future (no decoding pool: tests, the terminal)."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    try:
        future.set_result(fn(*args))
    except Exception as error:
        future.set_exception(error)
    return future
