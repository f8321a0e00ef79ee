"""The recogniser seam: an Engine is one language's loaded model, shared by every call; it
makes a recogniser per call. Two kinds fit:

- streaming (Vosk): fed the caller's audio frame by frame while they speak, with partial text,
  and the final transcript moments after they stop;
- segmented (Whisper): given the whole turn once the caller stopped, and slow (about a second
  of CPU): the listener runs it on the decoding pool, never on its own thread.

A third engine is one module with a `load(lang, settings, cache_dir)` returning an Engine, and
one entry in voicebot.audio.asr.registry.ENGINES.
"""

from dataclasses import dataclass
from typing import List, Protocol, Union, runtime_checkable


class RecognizerError(RuntimeError):
    """The recogniser failed on a turn: the call is told and offered a person."""


@dataclass(frozen=True)
class Transcript:
    text: str  # "" when nothing was understood as words (noise, a cough, silence)
    confidence: float  # 0..1, what the dialogue reads for "please repeat"; 0 without text
    busy_s: float = 0.0  # recogniser time spent on the turn (over its length: the real-time factor)


@runtime_checkable
class StreamingRecognizer(Protocol):
    def feed(self, pcm: bytes) -> str:
        """Audio as it comes (16-bit PCM at voicebot.audio.format.RATE); the partial text so far."""

    def final(self) -> Transcript:
        """The turn's transcript; the recogniser is ready for the next turn."""


@runtime_checkable
class SegmentedRecognizer(Protocol):
    def transcribe(self, pcm: bytes) -> Transcript:
        """A whole turn's audio to text. Blocking and slow; safe to call from any thread."""


Recognizer = Union[StreamingRecognizer, SegmentedRecognizer]


class Engine(Protocol):
    name: str  # "vosk", "whisper": the registry's key
    description: str  # what start-up says: the model and where it came from

    def recognizer(self, phrases: List[str]) -> Recognizer:
        """A recogniser for one call; `phrases` are the line's own words (a hint or a grammar)."""
