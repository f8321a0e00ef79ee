"""The speech stack the install script sets up: pyttsx3 on espeak-ng speaks every line's language."""

import pyttsx3


def test_every_line_language_has_an_espeak_voice(inst):
    engine = pyttsx3.init("espeak")
    spoken = {code.split("-")[0] for voice in engine.getProperty("voices") for code in voice.languages}
    assert set(inst.languages) <= spoken, f"espeak-ng has no voice for {set(inst.languages) - spoken}"
