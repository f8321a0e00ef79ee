"""Fixtures of the Nordic test lines (voicebot/nordic_lines.py): nb and sv, heard by Whisper."""

import pytest

# A Tuesday morning in Oslo and Stockholm (one time zone): both lines open, agents at work.
NORDIC_OFFICE_HOURS = "2026-11-24T10:00:00+01:00"


@pytest.fixture(scope="session")
def nordic_config(tmp_path_factory):
    """The Norwegian and Swedish test lines' installation, nb and sv models trained."""
    from voicebot import nordic_lines

    return nordic_lines.build(tmp_path_factory.mktemp("nordic"))


@pytest.fixture(scope="session")
def nordic_bot(nordic_config, store_url):
    """Both lines in one bot process, on a phone line: Whisper hears the callers."""
    from conftest import TextBot

    server = TextBot(NORDIC_OFFICE_HOURS, store_url, sip=True, config=nordic_config)
    yield server
    server.stop()
