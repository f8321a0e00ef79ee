"""Hold music for callers waiting in a queue: a generated tune (no licence to worry about) or a
16-bit mono WAV file, as 16 kHz PCM that loops."""

import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

from voicebot.audio.tts import resample

# A slow broken chord (C major, then A minor, F major, G major), soft and with no sharp edges.
CHORDS = ((261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7))
NOTE_S = 0.5
LEVEL = 0.12  # about -18 dBFS: audible, and quieter than speech announcements


@lru_cache(maxsize=8)
def hold_music(source: str, rate: int) -> bytes:
    """One loop of hold music as 16-bit PCM at `rate`: 'tone' or a WAV file's path."""
    if source == "tone":
        return _tune(rate)
    path = Path(source)
    try:
        with wave.open(str(path)) as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise ValueError(f"{path}: hold music must be 16-bit mono WAV")
            return resample(wav.readframes(wav.getnframes()), wav.getframerate(), rate)
    except (OSError, wave.Error) as error:
        raise ValueError(f"{path}: cannot read hold music: {error}") from None


def _tune(rate: int) -> bytes:
    t = np.arange(int(NOTE_S * rate)) / rate
    envelope = np.minimum(1.0, t / 0.03) * np.exp(-3.0 * t)  # soft attack, gentle decay
    notes = [np.sin(2 * np.pi * freq * t) * envelope for chord in CHORDS for freq in chord + (chord[1],)]
    return (np.concatenate(notes) * LEVEL * 32767).astype("<i2").tobytes()
