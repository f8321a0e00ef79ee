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

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "nordic"
LANGUAGES = ("nb", "sv")
# Line id and dialled number per language (fictional numbers).
LINES = {"nb": "nb-test", "sv": "sv-test"}
NUMBERS = {"nb": "+4721550100", "sv": "+46846500450"}
# A routine question per language (opening hours tomorrow): answered by the bot, no handoff. It
# opens with a greeting, as callers do: the start of a caller's first turn comes to the recogniser
# clipped by about 100 ms, and Whisper heard "Öppettider" alone as "Men gina" (see the report).
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
    train the nb and sv models if stale, and return its settings file."""
    from voicebot.config import load_installation
    from voicebot.dialogue.training import train_stale

    root.mkdir(parents=True, exist_ok=True)
    for name in ("domain.yml", "config.yml"):
        shutil.copy(REPO / name, root / name)
    for folder, source in (("stories", REPO / "stories"), ("tenants", FIXTURES / "tenants"),
                           ("nlu_data", FIXTURES / "nlu_data")):
        shutil.rmtree(root / folder, ignore_errors=True)
        shutil.copytree(source, root / folder)
    settings = yaml.safe_load((REPO / "voicebot.yml").read_text())
    settings["queues"] = QUEUES
    # No engine and no path: Whisper by default (the cache_dir is the installation's own).
    settings["asr"] = {**settings.get("asr", {}), "models": {lang: {"phrases": PHRASES[lang]} for lang in LANGUAGES}}
    settings["audio"] = {**settings.get("audio", {}), **audio}
    path = root / "voicebot.yml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True))
    train_stale(load_installation(path), list(LANGUAGES))
    return path
