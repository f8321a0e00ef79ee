"""The Nordic test lines: one installation with a Norwegian (bokmål) and a Swedish line.

Neither language has a Vosk model here (none exists for Norwegian; Swedish has one only on
Alpha Cephei's host, which these machines do not reach), so both lines get Whisper, the bundled
multilingual base model, by the registry's default: nothing in the settings names an engine.
Their tenants and NLU data live in tests/fixtures/nordic; dialogue data is the project's.

espeak-ng speaks both languages, but Whisper base hears its nb and sv voices poorly: whole
questions come back garbled or empty. Like a real line, each gives Whisper its own words as the
decoding hint (asr.models.<lang>.phrases); with it, a short routine question ("åpningstider i
morgen, takk") comes back close to what was said.
"""

from pathlib import Path

from voicebot.test_lines import REPO, build_installation

FIXTURES = REPO / "tests" / "fixtures" / "nordic"
LANGUAGES = ("nb", "sv")
# Line id and dialled number per language (fictional numbers).
LINES = {"nb": "nb-test", "sv": "sv-test"}
NUMBERS = {"nb": "+4721550100", "sv": "+46846500450"}
# A routine question per language (opening hours tomorrow): answered by the bot, no handoff. It
# opens with a greeting, as callers do: a first word alone was easily lost ("Öppettider" once came
# back as "Men gina").
ASK_OPENING_HOURS = {"nb": "Hei, åpningstider i morgen, takk.", "sv": "Hej, öppettider i morgon, tack."}
# Each line's own words: Whisper's decoding hint.
PHRASES = {
    "nb": ["Servicetorget", "åpningstider", "i dag", "i morgen", "pass", "førerkort", "flytting", "BankID",
           "søppel", "barnehage", "snakke med en person", "ja", "nei", "takk"],
    "sv": ["Kontaktcenter", "öppettider", "i dag", "i morgon", "pass", "körkort", "flytt", "BankID",
           "sophämtning", "förskola", "prata med en person", "ja", "nej", "tack"],
}
QUEUES = {"nb-test-servicetorget": {"name": "Servicetorget, Testby kommune"},
          "sv-test-kontaktcenter": {"name": "Kontaktcenter, Teststads kommun"}}


def build(root: Path, **audio) -> Path:
    """Write the Nordic lines' installation under root (audio settings overridden by `audio`),
    train the nb and sv models if stale, and return its settings file. No engine and no path:
    Whisper by default."""
    return build_installation(root, FIXTURES, LANGUAGES, QUEUES,
                              {lang: {"phrases": PHRASES[lang]} for lang in LANGUAGES}, audio)
