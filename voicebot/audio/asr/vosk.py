"""Vosk: streaming recognition with partial text while the caller speaks, one Kaldi model per
language shared by every call (cache_dir/vosk/<lang>, from `voicebot models get LANG`, or
asr.models.<lang>.path). No Danish or Norwegian Vosk model exists: those lines get Whisper."""

import json
from pathlib import Path
from typing import List, Optional

from voicebot.audio.asr.base import Transcript
from voicebot.audio.asr.download import Download, fetch_zip
from voicebot.audio.format import RATE
from voicebot.config import ConfigError

# Models published by Alpha Cephei.
CATALOGUE = {
    "en": "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
    "de": "https://alphacephei.com/vosk/models/vosk-model-small-de-0.15.zip",
    "sv": "https://alphacephei.com/vosk/models/vosk-model-small-sv-rhasspy-0.15.zip",
    "ko": "https://alphacephei.com/vosk/models/vosk-model-small-ko-0.22.zip",
}


def is_model_dir(path: Path) -> bool:
    return (path / "am" / "final.mdl").exists() or (path / "final.mdl").exists()


def locate(lang: str, configured: Optional[Path], cache_dir: Path, where: str) -> Optional[Path]:
    """The model folder for a language, None if it has none; a bad configured path is an error."""
    if configured is not None:
        if not is_model_dir(configured):
            raise ConfigError(f"{where}: {configured} is not a Vosk model folder (no am/final.mdl)")
        return configured
    cached = cache_dir / "vosk" / lang
    return cached if is_model_dir(cached) else None


class VoskEngine:
    name = "vosk"

    def __init__(self, lang: str, folder: Path):
        import vosk

        vosk.SetLogLevel(-1)
        self.model = vosk.Model(str(folder))
        self.description = f"Vosk {folder.name} ({folder})"

    def recognizer(self, phrases: List[str]) -> "VoskRecognizer":
        return VoskRecognizer(self.model, phrases)


def load(lang: str, folder: Path, settings=None) -> VoskEngine:
    return VoskEngine(lang, folder)


class VoskRecognizer:
    """One call's recogniser, one utterance at a time: feed PCM, read partials, take the final text."""

    def __init__(self, model, phrases: Optional[List[str]] = None):
        import vosk

        # A phrase list narrows the search to the words a line expects (Vosk's grammar mode).
        args = (json.dumps(phrases + ["[unk]"], ensure_ascii=False),) if phrases else ()
        self._recognizer = vosk.KaldiRecognizer(model, RATE, *args)
        self._recognizer.SetWords(True)
        self._ended_words: List[dict] = []  # of segments Vosk ended within the current turn

    def feed(self, pcm: bytes) -> str:
        if self._recognizer.AcceptWaveform(pcm):
            # Vosk's own endpoint (about half a second of silence) ends a segment: it is
            # part of the caller's turn, which ends when the listener says so.
            self._ended_words += json.loads(self._recognizer.Result()).get("result", [])
            partial = ""
        else:
            partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
        return " ".join(filter(None, [_text_of(self._ended_words), partial.replace("[unk]", "").strip()]))

    def final(self) -> Transcript:
        """The utterance's transcript and mean word confidence; resets for the next one (the
        listener times the recogniser)."""
        result = json.loads(self._recognizer.FinalResult())
        words, self._ended_words = self._ended_words + result.get("result", []), []
        words = [w for w in words if w.get("word") != "[unk]"]
        text = _text_of(words) if words else result.get("text", "").replace("[unk]", "")
        confidence = sum(w.get("conf", 0.0) for w in words) / len(words) if words else 0.0
        return Transcript(" ".join(text.split()), confidence)


def _text_of(words: List[dict]) -> str:
    return " ".join(w["word"] for w in words if w.get("word") != "[unk]")


def download(lang: str, cache_dir: Path, progress, url: Optional[str] = None, sha256: Optional[str] = None) -> Path:
    """Fetch LANG's model (the catalogue's, or `url`) into cache_dir/vosk/LANG."""
    if not url and lang not in CATALOGUE:
        raise ConfigError(f"no known Vosk model for {lang!r} (catalogue: {', '.join(CATALOGUE)}); give --url, "
                          f"or set asr.models.{lang}.path to a model folder")
    return fetch_zip(Download(f"the {lang} Vosk model", url or CATALOGUE[lang], sha256, f"asr.models.{lang}.path"),
                     cache_dir / "vosk" / lang, is_model_dir, progress)
