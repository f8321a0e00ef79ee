"""Voice activity detection on real espeak-ng speech through G.711 and real Silero VAD: both
detectors find a sentence's start and end; the default one ignores noise, hum and hold music;
each call's detector keeps its own state; the setting is validated."""

import threading
from functools import lru_cache

import numpy as np
import pydantic
import pytest
import yaml

from voicebot.audio.format import FRAME_BYTES, FRAME_MS, RATE
from voicebot.audio.hold_music import hold_music
from voicebot.audio.tts import Synthesizer
from voicebot.audio.vad import EnergyClassifier, SileroClassifier, detector_factory
from voicebot.bench.vad import at_dbfs, coloured_noise, coughs, mains_hum, pcm16, telephone, typing, voiced_span
from voicebot.config import ConfigError, load_installation
from voicebot.config.settings import AudioSettings

LEAD_MS = 600


@lru_cache(maxsize=None)
def sentence_call():
    """A caller saying one sentence on a G.711 line, and when it starts and ends (ms)."""
    samples = np.frombuffer(Synthesizer("en-gb").render("can I renew my passport", RATE).pcm, "<i2").astype(float)
    first, last = voiced_span(samples)
    silence = np.zeros(LEAD_MS * RATE // 1000)
    pcm = pcm16(telephone(np.concatenate([silence, samples[first:last], silence, silence])))
    return pcm, LEAD_MS, LEAD_MS + (last - first) * 1000 // RATE


def frames(pcm: bytes):
    return [pcm[at:at + FRAME_BYTES] for at in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def events(detector, pcm: bytes) -> list:
    """(event, ms at the end of the frame that caused it)."""
    found = [(detector.feed(frame), (index + 1) * FRAME_MS) for index, frame in enumerate(frames(pcm))]
    return [(event, ms) for event, ms in found if event]


@pytest.mark.parametrize("vad", ["energy", "silero"])
def test_both_detectors_find_a_spoken_sentence(vad):
    pcm, onset, offset = sentence_call()
    detector = detector_factory(AudioSettings(vad=vad))()
    found = events(detector, pcm)
    assert [event for event, _ in found] == ["start", "end"], found
    (_, started), (_, ended) = found
    assert 0 <= started - onset <= 400, found  # min_speech_ms (160) and a little
    assert 300 <= ended - offset <= 800, found  # hangover_ms (300) and a little
    assert not detector.speaking and detector.quiet_ms >= 300


SECONDS = 10


@pytest.mark.parametrize("sound", [
    lambda rng: at_dbfs(coloured_noise(SECONDS, 0, rng), -35),
    lambda rng: at_dbfs(coloured_noise(SECONDS, 1, rng), -35),
    lambda rng: at_dbfs(mains_hum(SECONDS), -30),
    lambda rng: np.resize(np.frombuffer(hold_music("tone", RATE), "<i2").astype(float), SECONDS * RATE),
    lambda rng: coughs(SECONDS, rng),
    lambda rng: typing(SECONDS, rng),
], ids=["white noise", "pink noise", "mains hum", "hold music", "coughs", "typing"])
def test_noise_hum_and_hold_music_start_no_turn_with_the_default_detector(sound):
    detector = detector_factory(AudioSettings())()
    assert isinstance(detector.classifier, SileroClassifier)
    assert events(detector, pcm16(telephone(sound(np.random.default_rng(7))))) == []


def test_the_energy_detector_is_fooled_by_the_onset_of_noise():
    """Why it is not the default (see `voicebot bench vad`): noise from the start of a call
    would start a turn, which interrupts the greeting."""
    noise = at_dbfs(coloured_noise(SECONDS, 1, np.random.default_rng(7)), -35)
    detector = detector_factory(AudioSettings(vad="energy"))()
    assert isinstance(detector.classifier, EnergyClassifier)
    assert events(detector, pcm16(telephone(noise)))[0][0] == "start"


def test_one_calls_detector_state_does_not_reach_another():
    pcm, _, _ = sentence_call()
    make_detector = detector_factory(AudioSettings(vad="silero"))
    alone = events(make_detector(), pcm)
    # Two calls interleaved frame by frame: one speaks, the other is silent.
    speaking, silent = make_detector(), make_detector()
    assert speaking.classifier.model is not silent.classifier.model
    heard = {"speaking": [], "silent": []}
    for index, frame in enumerate(frames(pcm)):
        for name, detector, fed in (("speaking", speaking, frame), ("silent", silent, bytes(FRAME_BYTES))):
            event = detector.feed(fed)
            if event:
                heard[name].append((event, (index + 1) * FRAME_MS))
            assert not (name == "silent" and detector.last_voiced)
    assert heard == {"speaking": alone, "silent": []}


def test_calls_on_their_own_threads_hear_the_same():
    pcm, _, _ = sentence_call()
    make_detector = detector_factory(AudioSettings(vad="silero"))
    alone = events(make_detector(), pcm)
    results = []
    threads = [threading.Thread(target=lambda: results.append(events(make_detector(), pcm))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [alone] * 4


def test_a_reset_keeps_the_call_going():
    """The listener resets after an utterance cut at its maximum length: the caller's next
    words start a new turn."""
    pcm, _, _ = sentence_call()
    detector = detector_factory(AudioSettings())()
    half = len(frames(pcm)) // 2
    for frame in frames(pcm)[:half]:
        detector.feed(frame)
    assert detector.speaking
    detector.reset()
    assert not detector.speaking and detector.quiet_ms == 0
    assert "start" in [detector.feed(frame) for frame in frames(pcm)[half:]]


def test_the_vad_setting_is_validated(install_copy):
    with pytest.raises(pydantic.ValidationError):
        AudioSettings(vad="webrtc")
    settings = install_copy / "voicebot.yml"
    data = yaml.safe_load(settings.read_text())
    data["audio"]["vad"] = "webrtc"
    settings.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ConfigError) as caught:
        load_installation(settings)
    assert "voicebot.yml: audio.vad" in str(caught.value), caught.value
