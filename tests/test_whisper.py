"""Whisper with the real bundled base model (no mocks): espeak-ng speech is heard, through G.711
too; silence, noise, hum, hold music and a cough are not words; one model serves every language
and two calls at once."""

import audioop
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from voicebot.audio.asr import whisper
from voicebot.audio.asr.base import RecognizerError
from voicebot.audio.hold_music import hold_music
from voicebot.audio.tts import Synthesizer

RATE = 16000
# The words a line would list in asr.models.en.phrases: its topics, as callers say them.
ENGLISH_LINE = ["opening hours", "passport", "driving licence", "a person please", "call me back", "council tax",
                "bins"]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return whisper.assemble_bundled(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def english(model_folder):
    return whisper.load("en", model_folder)


def _speech(text: str) -> bytes:
    return Synthesizer("en-gb").render(text, RATE).pcm


def _through_g711(pcm: bytes) -> bytes:
    """What a PCMU call delivers: 8 kHz mu-law and back to 16 kHz."""
    narrow, _ = audioop.ratecv(pcm, 2, 1, RATE, 8000, None)
    wide, _ = audioop.ratecv(audioop.ulaw2lin(audioop.lin2ulaw(narrow, 2), 2), 2, 1, 8000, RATE, None)
    return wide


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def _seconds(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def _cough(seconds: float = 10) -> bytes:
    """Two short bursts of band-limited noise with a sharp attack, in a quiet line."""
    rng, signal = np.random.default_rng(3), np.zeros(int(seconds * RATE))
    for start in (1.0, 1.45):
        burst = np.convolve(rng.normal(0, 1, int(0.35 * RATE)), np.ones(6) / 6, mode="same")
        t = np.arange(burst.size) / RATE
        envelope = np.minimum(1, t / 0.01) * np.exp(-12 * t)  # a sharp attack, a fast decay
        signal[int(start * RATE):int(start * RATE) + burst.size] += 0.6 * burst * envelope
    return _pcm(signal + rng.normal(0, 0.002, signal.size))


def _hold_music(seconds: float = 10) -> bytes:
    loop, size = hold_music("tone", RATE), int(seconds * RATE) * 2
    return (loop * (size // len(loop) + 1))[:size]


NON_SPEECH = {
    "silence": lambda: _pcm(np.zeros(10 * RATE)),
    "white noise": lambda: _pcm(np.random.default_rng(1).normal(0, 0.1, 10 * RATE)),
    "mains hum": lambda: _pcm(0.2 * np.sin(2 * np.pi * 50 * _seconds(10))
                              + 0.08 * np.sin(2 * np.pi * 150 * _seconds(10))),
    "hold music": _hold_music,
    "a cough": _cough,
}


@pytest.mark.parametrize("channel", ["16 kHz", "G.711"])
@pytest.mark.parametrize("text, key_words", [("can I renew my passport", ["passport"]),
                                             ("when are you open tomorrow", ["open", "tomorrow"])])
def test_english_speech_is_understood(english, channel, text, key_words):
    pcm = _speech(text)
    heard = english.recognizer([]).transcribe(_through_g711(pcm) if channel == "G.711" else pcm)
    assert all(word in heard.text.lower() for word in key_words), heard
    assert 0.2 < heard.confidence <= 1 and heard.busy_s > 0


def test_the_lines_words_help(english):
    heard = english.recognizer(ENGLISH_LINE).transcribe(_through_g711(_speech("a person please")))
    assert "a person" in heard.text.lower(), heard  # without the hint: "personally"


@pytest.mark.parametrize("sound", list(NON_SPEECH))
def test_non_speech_is_no_words(english, sound):
    heard = english.recognizer(ENGLISH_LINE).transcribe(NON_SPEECH[sound]())
    assert (heard.text, heard.confidence) == ("", 0.0)
    assert heard.busy_s < 0.5  # the voice detector answers; Whisper never runs


@pytest.mark.parametrize("lang, sound", [("en", "silence"), ("da", "hold music"), ("de", "mains hum")])
def test_past_the_voice_detector_whispers_own_scores_still_keep_noise_out(model_folder, lang, sound):
    """If the detector ever lets noise through, Whisper's made-up sentences and loops ("Vi er med
    at være med at være ...", "you") are still not words."""
    recognizer = whisper.load(lang, model_folder).recognizer([])
    audio = np.frombuffer(NON_SPEECH[sound](), dtype="<i2").astype(np.float32) / 32768.0
    assert whisper.words_of(recognizer._decode(audio)) == ("", 0.0)


def test_one_model_serves_every_language_and_two_calls_at_once(english, model_folder):
    danish = whisper.load("da", model_folder)
    assert danish.shared is english.shared
    turns = [(english.recognizer([]), _speech("can I renew my passport")),
             (danish.recognizer(["pas", "åbningstider"]), Synthesizer("da").render("ja tak", RATE).pcm)]
    alone = [recognizer.transcribe(pcm).text for recognizer, pcm in turns]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda turn: turn[0].transcribe(turn[1]).text, turns))
    assert together == alone and "passport" in alone[0].lower()


def test_a_failing_decode_is_a_recognizer_error(model_folder):
    broken = whisper.load("no-such-language", model_folder).recognizer([])
    with pytest.raises(RecognizerError, match="Whisper failed"):
        broken.transcribe(_speech("hello"))


def _segment(text, no_speech=0.1, log_prob=-0.3, ratio=0.8):
    return SimpleNamespace(text=text, no_speech_prob=no_speech, avg_logprob=log_prob, compression_ratio=ratio)


@pytest.mark.parametrize("segment", [
    _segment(" Undertekster af Nicolai Winther"), _segment(" Untertitel der Amara.org-Community"),
    _segment(" Thank you for watching!"), _segment(" you"), _segment(" The", log_prob=-1.41),
    _segment(" Tack för att du tittade."),
    _segment(" ..."), _segment(" Hør, hør, hør, hør, hør, hør", ratio=5.9),
    _segment(" I'm sorry.", log_prob=-1.93), _segment(" Det er en kæmpe.", no_speech=0.88)])
def test_whispers_stock_phrases_and_weak_guesses_are_no_words(segment):
    assert whisper.words_of([segment]) == ("", 0.0)


def test_reading_the_hint_back_is_no_words_but_saying_one_of_its_words_is():
    line = ["pas", "kørekort", "åbningstider", "åbent", "i morgen", "tid", "borgerservice", "MitID"]
    recited = _segment(" Hørekort, åbent, i morgen, tid, borgerservice, MitID.", no_speech=0.66, log_prob=-0.47)
    assert whisper.words_of([recited], line) == ("", 0.0)
    text, confidence = whisper.words_of([_segment(" Hvornår har I åbent i morgen?")], line)
    assert text == "Hvornår har I åbent i morgen?" and confidence == pytest.approx(np.exp(-0.3))


def test_the_hint_is_the_lines_words_as_one_sentence():
    assert whisper.hint_of(["passport", "opening hours"]) == "passport, opening hours."
    assert whisper.hint_of([]) is None
    assert len(whisper.hint_of([f"phrase number {n}" for n in range(100)])) < whisper.HINT_MAX_CHARS
