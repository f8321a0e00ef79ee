"""Speech in: Vosk streaming recognition, one model per language shared by all calls.

A line's language gets its model from voicebot.yml (asr.models.<lang>.path), else from the
download cache that `voicebot models get LANG` fills. A language with neither runs its lines on
the keypad only, and start-up says so; a configured path that is not a model is an error.
"""

import hashlib
import json
import logging
import shutil
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from voicebot.config import ConfigError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000

# Models published by Alpha Cephei; no Danish or Norwegian Vosk model exists.
CATALOGUE = {
    "en": "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
    "de": "https://alphacephei.com/vosk/models/vosk-model-small-de-0.15.zip",
    "sv": "https://alphacephei.com/vosk/models/vosk-model-small-sv-rhasspy-0.15.zip",
    "ko": "https://alphacephei.com/vosk/models/vosk-model-small-ko-0.22.zip",
}


def is_model_dir(path: Path) -> bool:
    return (path / "am" / "final.mdl").exists() or (path / "final.mdl").exists()


def model_dir(lang: str, configured: Optional[Path], cache_dir: Path, where: str) -> Optional[Path]:
    """The model folder for a language, None if it has none; a bad configured path is an error."""
    if configured is not None:
        if not is_model_dir(configured):
            raise ConfigError(f"{where}: {configured} is not a Vosk model folder (no am/final.mdl)")
        return configured
    cached = cache_dir / lang
    return cached if is_model_dir(cached) else None


def cache_dir(inst) -> Path:
    return inst.path(inst.settings.asr.cache_dir.expanduser())


def registry_for(inst) -> "ModelRegistry":
    """The model folder of every language the lines speak (those that have one)."""
    folders = {}
    for lang in inst.languages:
        configured = inst.settings.asr.models.get(lang)
        path = inst.path(configured.path) if configured and configured.path else None
        found = model_dir(lang, path, cache_dir(inst), f"voicebot.yml: asr.models.{lang}.path")
        if found:
            folders[lang] = found
    return ModelRegistry(folders)


class ModelRegistry:
    """Loads each language's model once per process; every call shares it."""

    def __init__(self, folders: Dict[str, Path]):
        self.folders = folders
        self._models: Dict[str, object] = {}
        self._lock = threading.Lock()

    def has(self, lang: str) -> bool:
        return lang in self.folders

    def model(self, lang: str):
        with self._lock:
            if lang not in self._models:
                import vosk

                vosk.SetLogLevel(-1)
                self._models[lang] = vosk.Model(str(self.folders[lang]))
            return self._models[lang]


class StreamingRecognizer:
    """One caller utterance at a time: feed 16 kHz PCM, read partials, take the final text."""

    def __init__(self, model, phrases: Optional[List[str]] = None):
        import vosk

        # A phrase list narrows the search to the words a line expects (Vosk's grammar mode).
        args = (json.dumps(phrases + ["[unk]"], ensure_ascii=False),) if phrases else ()
        self._recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE, *args)
        self._recognizer.SetWords(True)
        self.busy_s = 0.0  # time spent recognising the current utterance: its real-time factor

    def feed(self, pcm: bytes) -> str:
        """Feed audio; return the partial transcript so far."""
        started = time.perf_counter()
        try:
            if self._recognizer.AcceptWaveform(pcm):
                return json.loads(self._recognizer.Result()).get("text", "")
            return json.loads(self._recognizer.PartialResult()).get("partial", "")
        finally:
            self.busy_s += time.perf_counter() - started

    def final(self) -> Tuple[str, float]:
        """The utterance's transcript and mean word confidence; resets for the next one."""
        started = time.perf_counter()
        result = json.loads(self._recognizer.FinalResult())
        self.busy_s += time.perf_counter() - started
        words = [w for w in result.get("result", []) if w.get("word") != "[unk]"]
        text = " ".join(w["word"] for w in words) if words else result.get("text", "").replace("[unk]", "")
        confidence = sum(w.get("conf", 0.0) for w in words) / len(words) if words else 0.0
        return " ".join(text.split()), confidence


@dataclass
class Download:
    lang: str
    url: str
    sha256: Optional[str] = None


def download_model(download: Download, cache_dir: Path, progress: Callable[[int, int], None]) -> Path:
    """Fetch a model zip into the cache, check it, unpack it as cache_dir/<lang>."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    archive = cache_dir / f"{download.lang}.zip.partial"
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(download.url, timeout=30) as response, archive.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            while chunk := response.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                progress(len(chunk), total)
    except (urllib.error.URLError, OSError) as error:
        archive.unlink(missing_ok=True)
        raise ConfigError(f"could not download the {download.lang} model from {download.url}: {error}. "
                          f"Offline? Download it elsewhere, unpack it and set asr.models.{download.lang}.path "
                          f"in voicebot.yml") from None
    if download.sha256 and digest.hexdigest() != download.sha256.lower():
        archive.unlink()
        raise ConfigError(f"the {download.lang} model's SHA-256 is {digest.hexdigest()}, "
                          f"expected {download.sha256}: download damaged or changed, nothing installed")
    target = cache_dir / download.lang
    unpacked = cache_dir / f"{download.lang}.unpacking"
    shutil.rmtree(unpacked, ignore_errors=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(unpacked)
    inner = next((p for p in [unpacked, *unpacked.iterdir()] if is_model_dir(p)), None)
    if inner is None:
        raise ConfigError(f"{download.url} holds no Vosk model")
    shutil.rmtree(target, ignore_errors=True)
    inner.rename(target)
    shutil.rmtree(unpacked, ignore_errors=True)
    archive.unlink()
    (target / "SHA256").write_text(digest.hexdigest() + "\n")
    return target
