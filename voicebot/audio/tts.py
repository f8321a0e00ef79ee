"""Speech out: espeak-ng, resampled to the call's rate, cached by voice and text.

Fixed prompts (greetings, "anything else?") are rendered ahead of time into audio_prompts/
by `voicebot prompts build`, so a call never waits for them.

Why not through pyttsx3: its espeak driver (2.99) writes the file from espeak's end-of-message
callback, which can fire after runAndWait() has returned (seen here: the target directory was
already gone), keeps one engine per process and prints to stdout. Calls render concurrently,
so we run the engine pyttsx3 wraps, espeak-ng, one process per utterance (about 15 ms).
"""

import hashlib
import io
import math
import re
import subprocess
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from voicebot.config import ConfigError, Tenant
from voicebot.knowledge.phrasebook import Phrasebook

# espeak-ng voice per language when a line names none.
PREFERRED_VOICES = {"da": "da", "de": "de", "en": "en-gb", "ko": "ko", "nb": "nb", "sv": "sv"}
WORDS_PER_MINUTE = 165


@dataclass(frozen=True)
class Speech:
    """16-bit mono PCM at `rate` samples per second."""

    pcm: bytes
    rate: int

    @property
    def duration(self) -> float:
        return len(self.pcm) / 2 / self.rate

    def wav_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(self.rate)
            out.writeframes(self.pcm)
        return buffer.getvalue()

    @classmethod
    def from_wav(cls, data: bytes) -> "Speech":
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise ValueError("expected 16-bit mono WAV")
            return cls(wav.readframes(wav.getnframes()), wav.getframerate())


@lru_cache(maxsize=1)
def espeak_voices() -> List[str]:
    """Voice names espeak-ng knows (its language column: da, de, en-gb, ...)."""
    try:
        listing = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise ConfigError("espeak-ng is not installed: run scripts/install.sh") from None
    return [line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1]


def voice_for(tenant: Tenant) -> str:
    """The tenant's configured voice, or the preferred one for its language."""
    voices = espeak_voices()
    if tenant.voice:
        if tenant.voice not in voices:
            raise ConfigError(f"tenants/{tenant.id}.yml: voice: espeak-ng has no voice {tenant.voice!r}")
        return tenant.voice
    preferred = PREFERRED_VOICES.get(tenant.language)
    if preferred in voices:
        return preferred
    raise ConfigError(f"tenants/{tenant.id}.yml: language: espeak-ng has no voice for {tenant.language!r}")


def resample(pcm: bytes, source_rate: int, target_rate: int) -> bytes:
    if source_rate == target_rate:
        return pcm
    from scipy.signal import resample_poly

    divisor = math.gcd(source_rate, target_rate)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    converted = resample_poly(samples, target_rate // divisor, source_rate // divisor)
    return np.clip(np.round(converted), -32768, 32767).astype("<i2").tobytes()


def _pcm_of_stream_wav(data: bytes) -> Tuple[bytes, int]:
    """PCM and rate of espeak-ng's --stdout WAV, whose header sizes are placeholders."""
    if data[:4] != b"RIFF" or b"data" not in data[:200]:
        raise RuntimeError("espeak-ng did not produce WAV audio")
    rate = int.from_bytes(data[24:28], "little")
    return data[data.index(b"data") + 8:], rate


class Synthesizer:
    def __init__(self, voice: str, words_per_minute: int = WORDS_PER_MINUTE):
        self.voice = voice
        self.words_per_minute = words_per_minute

    def render(self, text: str, rate: int) -> Speech:
        result = subprocess.run(
            ["espeak-ng", "-v", self.voice, "-s", str(self.words_per_minute), "--stdout"],
            input=text.encode("utf-8"), capture_output=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"espeak-ng failed for voice {self.voice}: {result.stderr.decode(errors='replace')}")
        pcm, source_rate = _pcm_of_stream_wav(result.stdout)
        return Speech(resample(pcm[: len(pcm) // 2 * 2], source_rate, rate), rate)


class PromptCache:
    """Rendered speech on disk, one WAV per (voice, rate, text)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, voice: str, rate: int, text: str) -> Path:
        digest = hashlib.sha256(f"{voice}\n{rate}\n{text}".encode()).hexdigest()[:24]
        return self.directory / re.sub(r"[^\w.-]", "_", voice) / str(rate) / f"{digest}.wav"

    def speech(self, synthesizer: Synthesizer, text: str, rate: int) -> Tuple[Speech, bool]:
        """The speech for text, and whether it had to be rendered now."""
        path = self.path(synthesizer.voice, rate, text)
        if path.exists():
            return Speech.from_wav(path.read_bytes()), False
        speech = synthesizer.render(text, rate)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(speech.wav_bytes())
        partial.replace(path)  # never leave a half-written prompt behind
        return speech, True


def fixed_prompts(tenant: Tenant, phrases: dict) -> List[str]:
    """What a line says word for word: its greeting and the phrasebook lines without blanks."""
    texts = [tenant.greeting, Phrasebook(tenant.language, phrases).keypad_menu(tenant.keypad_menu)]
    texts += [" ".join(t.split()) for t in phrases["say"].values() if "{" not in t]
    return list(dict.fromkeys(texts))


def build_prompts(tenant: Tenant, phrases: dict, cache: PromptCache, rates: List[int],
                  synthesizer: Optional[Synthesizer] = None) -> Tuple[int, int]:
    """Render the line's fixed prompts at each rate; returns (prompts, newly rendered)."""
    synthesizer = synthesizer or Synthesizer(voice_for(tenant))
    texts = fixed_prompts(tenant, phrases)
    rendered = sum(cache.speech(synthesizer, text, rate)[1] for text in texts for rate in rates)
    return len(texts) * len(rates), rendered
