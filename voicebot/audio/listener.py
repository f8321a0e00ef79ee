"""A call's ear: a worker thread that turns received frames into caller turns.

Frames come from the media port's queue; voice activity detection finds the start and end of
speech, the recogniser (if the line's language has a model) transcribes it while it is spoken.
Events go to `emit` (the call's controller): ("speech_started", t), ("utterance", Utterance)
and ("partial", text). Speech start is reported at once, so the controller can stop playback
(barge-in); a sound shorter than min_speech_ms is never reported.
"""

import collections
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from voicebot.audio.asr import StreamingRecognizer
from voicebot.audio.vad import FRAME_MS, SpeechDetector, VadSettings


@dataclass
class Utterance:
    text: str
    confidence: float
    speech_ms: int
    ended_at: float  # monotonic time of the last voiced frame
    detected_at: float  # when the hangover ran out (end of speech detected)
    recognised_at: float  # when the final transcript was ready
    asr_busy_ms: int = 0  # recogniser time spent on it (over speech_ms: the real-time factor)


class Listener:
    def __init__(self, frames: "queue.SimpleQueue", emit: Callable[[str, object], None],
                 vad: VadSettings, make_recognizer: Optional[Callable[[], StreamingRecognizer]],
                 max_utterance_ms: int = 15000, name: str = "listener"):
        self.frames, self.emit, self.vad = frames, emit, vad
        self.make_recognizer = make_recognizer
        self.max_utterance_ms = max_utterance_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Listener":
        self._thread.start()
        return self

    def stop(self) -> None:
        """The thread ends within 0.2 s (its wait for a frame); not joined here, since the
        caller is the event loop of every call, which must not stall that long."""
        self._stop.set()

    def _run(self) -> None:
        detector = SpeechDetector(self.vad)
        recognizer = self.make_recognizer() if self.make_recognizer else None
        # Audio from before speech was confirmed, so the recogniser hears the first syllable.
        lead_in = collections.deque(maxlen=(self.vad.min_speech_ms + 200) // FRAME_MS)
        speech_ms, last_voiced_at, partial = 0, 0.0, ""
        while not self._stop.is_set():
            try:
                received_at, frame = self.frames.get(timeout=0.2)
            except queue.Empty:
                continue
            event = detector.feed(frame)
            if not detector.speaking and event != "end":
                lead_in.append(frame)
                continue
            if event == "start":
                self.emit("speech_started", received_at)
                speech_ms = len(lead_in) * FRAME_MS
                if recognizer:
                    recognizer.feed(b"".join(lead_in))
                lead_in.clear()
            speech_ms += FRAME_MS
            if detector.last_voiced:
                last_voiced_at = received_at
            if recognizer:
                text = recognizer.feed(frame)
                if text and text != partial:
                    partial = text
                    self.emit("partial", text)
            if event == "end" or speech_ms >= self.max_utterance_ms:
                detected_at = time.monotonic()
                text, confidence = recognizer.final() if recognizer else ("", 0.0)
                busy_ms = round(recognizer.busy_s * 1000) if recognizer else 0
                if recognizer:
                    recognizer.busy_s = 0.0
                self.emit("utterance", Utterance(text, confidence, speech_ms, last_voiced_at or received_at,
                                                 detected_at, time.monotonic(), busy_ms))
                detector.reset()
                speech_ms, last_voiced_at, partial = 0, 0.0, ""
