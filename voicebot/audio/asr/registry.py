"""Which recogniser each language gets, decided at start-up and loaded once per process.

asr.models.<lang>.engine chooses (vosk or whisper); left out, a language with a Vosk model
(configured path or cache) gets Vosk, else Whisper (the bundled base model, or the one named
by asr.models.<lang>.model), else none: its lines answer the keypad only, and start-up says so."""

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from voicebot.audio.asr import vosk, whisper
from voicebot.audio.asr.base import Engine

# Engine name -> module with locate(lang, configured, cache_dir, where[, model]) and load(lang, folder, settings).
ENGINES = {"vosk": vosk, "whisper": whisper}
AUTO_ORDER = ("vosk", "whisper")


@dataclass
class Choice:
    engine: str
    folder: Path


def cache_dir(inst) -> Path:
    return inst.path(inst.settings.asr.cache_dir.expanduser())


def _choose(inst, lang: str) -> Optional[Choice]:
    settings = inst.settings.asr.models.get(lang)
    where = f"voicebot.yml: asr.models.{lang}"
    configured = inst.path(settings.path) if settings and settings.path else None
    names = [settings.engine] if settings and settings.engine else AUTO_ORDER
    for name in names:
        # A configured path belongs to the configured engine (or, without one, to Vosk as before).
        path = configured if (settings and settings.engine) or name == "vosk" else None
        extra = {"model": settings.model} if name == "whisper" and settings else {}
        folder = ENGINES[name].locate(lang, path, cache_dir(inst), f"{where}.path", **extra)
        if folder is not None:
            return Choice(name, folder)
    return None


def registry_for(inst) -> "Recognizers":
    return Recognizers({lang: choice for lang in inst.languages if (choice := _choose(inst, lang))},
                       {lang: s for lang, s in inst.settings.asr.models.items()})


class Recognizers:
    """Each language's engine, loaded once per process and shared by every call."""

    def __init__(self, choices: Dict[str, Choice], settings: Optional[dict] = None):
        self.choices, self.settings = choices, settings or {}
        self._engines: Dict[str, Engine] = {}
        self._lock = threading.Lock()

    def has(self, lang: str) -> bool:
        return lang in self.choices

    def engine(self, lang: str) -> Engine:
        with self._lock:
            if lang not in self._engines:
                choice = self.choices[lang]
                self._engines[lang] = ENGINES[choice.engine].load(lang, choice.folder, self.settings.get(lang))
            return self._engines[lang]

    def load_all(self) -> List[str]:
        """Load every language's engine now (not during the first call); what each one is."""
        return [f"{lang}: {self.engine(lang).description}" for lang in sorted(self.choices)]
