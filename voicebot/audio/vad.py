"""Voice activity detection on 20 ms frames: when a caller starts and stops speaking.

An energy detector with an adaptive noise floor: telephone audio is band-limited and usually
quiet between words, so a frame well above the recent floor is speech. Speech must last
`min_speech_ms` to count (a cough or a short "mm" does not), and ends after `hangover_ms`
below the threshold. Steady noise (a fan, white noise) raises the floor and stops counting.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

FRAME_MS = 20


@dataclass(frozen=True)
class VadSettings:
    hangover_ms: int = 300
    min_speech_ms: int = 160
    # Speech is this many dB above the noise floor, and never below an absolute floor.
    margin_db: float = 12.0
    min_level_dbfs: float = -50.0


def level_dbfs(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    rms = float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
    return 20 * np.log10(max(rms, 1.0) / 32768.0)


class SpeechDetector:
    """Feed frames; `feed` returns "start" when speech (long enough) began, "end" when it
    stopped for the hangover, else None."""

    def __init__(self, settings: VadSettings = VadSettings()):
        self.settings = settings
        self.noise_floor = -60.0
        self.speaking = False
        self.last_voiced = False
        self._voiced_ms = 0
        self._quiet_ms = 0

    def reset(self) -> None:
        """Forget the current speech (an utterance cut off at its maximum length)."""
        self.speaking, self._voiced_ms, self._quiet_ms = False, 0, 0

    def is_voiced(self, level: float) -> bool:
        threshold = max(self.noise_floor + self.settings.margin_db, self.settings.min_level_dbfs)
        voiced = level > threshold
        # The floor follows quiet frames fast and loud ones very slowly, so that steady noise
        # becomes the floor within a few seconds while speech does not.
        rate = 0.1 if level < self.noise_floor or not voiced else 0.002
        self.noise_floor += rate * (level - self.noise_floor)
        return voiced

    def feed(self, pcm: bytes) -> Optional[str]:
        voiced = self.last_voiced = self.is_voiced(level_dbfs(pcm))
        if not self.speaking:
            self._voiced_ms = self._voiced_ms + FRAME_MS if voiced else 0
            if self._voiced_ms >= self.settings.min_speech_ms:
                self.speaking, self._quiet_ms = True, 0
                return "start"
            return None
        self._quiet_ms = 0 if voiced else self._quiet_ms + FRAME_MS
        if self._quiet_ms >= self.settings.hangover_ms:
            self.speaking, self._voiced_ms = False, 0
            return "end"
        return None
