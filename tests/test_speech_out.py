"""Speech out with real espeak-ng: audio that sounds like speech, at the call's rate, cached."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicebot.audio.tts import PromptCache, Speech, Synthesizer, espeak_voices, voice_for
from voicebot.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def frame_energy(speech: Speech, frame_ms: int = 20) -> np.ndarray:
    samples = np.frombuffer(speech.pcm, dtype="<i2").astype(np.float64)
    size = speech.rate * frame_ms // 1000
    frames = samples[: len(samples) // size * size].reshape(-1, size)
    return np.sqrt((frames ** 2).mean(axis=1))


def test_every_line_language_has_a_voice(inst):
    assert all(voice_for(tenant) in espeak_voices() for tenant in inst.tenants.values())


@pytest.mark.parametrize("line", ["demo-kommune", "stadt-kreis", "demo-city", "fjordby-kommune", "vasterby-kommun"])
def test_greeting_is_speech_at_both_call_rates(inst, line):
    tenant = inst.tenant(line)
    synthesizer = Synthesizer(voice_for(tenant))
    narrow, wide = synthesizer.render(tenant.greeting, 8000), synthesizer.render(tenant.greeting, 16000)
    assert (narrow.rate, wide.rate) == (8000, 16000)
    # About 20 words at 165 words a minute: several seconds, the same length at either rate.
    assert 4 < narrow.duration < 20
    assert abs(wide.duration - narrow.duration) < 0.02
    energy = frame_energy(narrow)
    assert (energy > 300).mean() > 0.5, "most 20 ms frames should carry speech"
    assert (energy < 30).any(), "speech has pauses between phrases"
    assert np.abs(np.frombuffer(narrow.pcm, dtype="<i2")).max() < 32767, "no clipping"


def test_different_text_sounds_different(inst):
    synthesizer = Synthesizer("en-gb")
    short, long = synthesizer.render("Yes.", 8000), synthesizer.render("Thank you for calling. Goodbye.", 8000)
    assert short.duration < 1.0 < long.duration


def test_cache_renders_once_per_voice_rate_and_text(tmp_path):
    cache, synthesizer = PromptCache(tmp_path), Synthesizer("da")
    first, rendered = cache.speech(synthesizer, "Hej og velkommen.", 8000)
    again, rendered_again = cache.speech(synthesizer, "Hej og velkommen.", 8000)
    assert rendered and not rendered_again and again == first
    paths = {cache.path("da", 8000, "Hej og velkommen."), cache.path("da", 16000, "Hej og velkommen."),
             cache.path("de", 8000, "Hej og velkommen."), cache.path("da", 8000, "Hej.")}
    assert len(paths) == 4
    assert Speech.from_wav(cache.path("da", 8000, "Hej og velkommen.").read_bytes()) == first


def test_an_unknown_voice_names_the_tenant_file(inst):
    tenant = inst.tenant("demo-city").copy(update={"voice": "klingon"})
    with pytest.raises(ConfigError, match=r"tenants/demo-city.yml: voice: espeak-ng has no voice 'klingon'"):
        voice_for(tenant)


def test_prompts_build_renders_what_is_missing(install_copy, inst):
    def build():
        result = subprocess.run([sys.executable, "-m", "voicebot.cli", "--config", str(install_copy / "voicebot.yml"),
                                 "prompts", "build", "--rate", "8000"], capture_output=True, text=True, cwd=REPO)
        assert result.returncode == 0, result.stderr
        return result.stdout

    first = build()
    assert "demo-kommune (da, voice da): " in first and "rendered now" in first
    assert len(list((install_copy / "audio_prompts").glob("*/8000/*.wav"))) >= 3 * 10
    again = build().splitlines()
    assert len(again) == len(inst.tenants) and all(line.endswith(", 0 rendered now") for line in again), again
