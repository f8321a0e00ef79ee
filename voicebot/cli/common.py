"""Helpers that commands in several modules use."""

import contextlib
from typing import Optional

import click

from voicebot.cli import Context
from voicebot.config import Installation


def _languages(inst: Installation, lang: Optional[str]) -> list:
    if lang and lang not in inst.languages:
        raise click.BadParameter(f"no line speaks {lang!r}; languages: {', '.join(inst.languages)}")
    return [lang] if lang else inst.languages


@contextlib.contextmanager
def _action_server(obj: Context, port: Optional[int] = None, supervise: bool = False, needed: bool = True):
    """The action server's URL and whether it answers, with our own one running for the block
    (restarted if it dies, when supervised) unless voicebot.yml names one elsewhere or no model
    runs here to need it."""
    from voicebot.dialogue.action_server import ActionServerProcess

    settings = obj.inst.settings.action_server
    if not settings.spawn or not needed:
        yield settings.url, lambda: True
        return
    server = ActionServerProcess(obj.config_path, settings.host, settings.port if port is None else port).start()
    if supervise:
        server.supervise()
    try:
        yield server.url, server.is_up
    finally:
        server.stop()


def _records(inst, worker: Optional[str] = None):
    """The store, migrated; an unreachable database stops start-up with a clear error."""
    from voicebot.metrics import Metrics
    from voicebot.store import RecordStore

    return RecordStore(inst.settings.store_url, inst.root, inst.settings.nlu.review_below, metrics=Metrics(),
                       worker=worker)
