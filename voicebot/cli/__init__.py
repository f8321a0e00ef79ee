"""The `voicebot` command: the `main` group, its context and error reporting. The commands
live in one module per group (serve, training, speech, bench, people, records, cluster) and
are registered on `main` when this package is imported."""

import os
from pathlib import Path
from typing import Optional

import click

# Quiet TensorFlow, and keep Rasa from asking to send usage data home.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

from voicebot import logs  # noqa: E402
from voicebot.config import ConfigError, Installation, load_installation  # noqa: E402
from voicebot.dialogue.action_server import ActionServerError  # noqa: E402


class Context:
    def __init__(self, config: Optional[str]):
        self.config_path = Path(config or os.environ.get("VOICEBOT_CONFIG", "voicebot.yml")).resolve()
        self._inst: Optional[Installation] = None

    @property
    def inst(self) -> Installation:
        if self._inst is None:
            self._inst = load_installation(self.config_path)
        return self._inst

    def serve_only(self, line_ids) -> None:
        self._inst = self.inst.serving(line_ids)


class Commands(click.Group):
    """Reports configuration errors as one clear message, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ConfigError, ActionServerError) as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=Commands)
@click.option("--config", envvar="VOICEBOT_CONFIG", help="Installation settings file (default voicebot.yml).")
@click.option("-v", "--verbose", is_flag=True, help="Show Rasa's and TensorFlow's log messages.")
@click.pass_context
def main(ctx: click.Context, config: Optional[str], verbose: bool) -> None:
    """Voice bot for municipal citizen-service lines."""
    logs.configure(verbose)
    ctx.obj = Context(config)


# The commands register themselves on `main` as their modules load; the imports stay lazy
# inside each command, so `voicebot --help` loads neither Rasa, TensorFlow nor pjsua2.
from voicebot.cli import bench, cluster, people, records, serve, speech, training  # noqa: E402,F401
