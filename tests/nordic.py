"""The Norwegian (bokmål) and Swedish demo lines (tenants/fjordby-kommune.yml, vasterby-kommun.yml)
and their bot, heard by Whisper.

Neither language has a Vosk model here (none exists for Norwegian; Swedish has one only on Alpha
Cephei's host, which these machines do not reach), so both lines get Whisper, the bundled
multilingual base model. espeak-ng speaks both languages, but Whisper base hears its nb and sv
voices poorly: whole questions come back garbled or empty. Like a real line, each gives Whisper its
own words as the decoding hint (voicebot.yml: asr.models.<lang>.phrases); with it, a short routine
question ("åpningstider i morgen, takk") comes back close to what was said.
"""

import pytest

LANGUAGES = ("nb", "sv")
LINES = {"nb": "fjordby-kommune", "sv": "vasterby-kommun"}
NUMBERS = {"nb": "+4721991800", "sv": "+46846500420"}
# A routine question per language (opening hours tomorrow): answered by the bot, no handoff. It
# opens with a greeting, as callers do: a first word alone was easily lost ("Öppettider" once came
# back as "Men gina").
ASK_OPENING_HOURS = {"nb": "Hei, åpningstider i morgen, takk.", "sv": "Hej, öppettider i morgon, tack."}
# A Tuesday morning in Oslo and Stockholm (one time zone): both lines open, agents at work.
NORDIC_OFFICE_HOURS = "2026-11-24T10:00:00+01:00"


@pytest.fixture(scope="session")
def nordic_bot(trained, store_url):
    """Both lines in one bot process (only their nb and sv models), on a phone line: Whisper hears
    the callers."""
    from conftest import TextBot

    server = TextBot(NORDIC_OFFICE_HOURS, store_url, sip=True, lines=tuple(LINES.values()))
    yield server
    server.stop()
