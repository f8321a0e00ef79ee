"""Speech in: a recogniser per language behind one seam (base.py), Vosk or Whisper."""

from voicebot.audio.asr.base import (Engine, Recognizer, RecognizerError, SegmentedRecognizer,  # noqa: F401
                                     StreamingRecognizer, Transcript)
from voicebot.audio.asr.registry import Recognizers, cache_dir, registry_for  # noqa: F401
