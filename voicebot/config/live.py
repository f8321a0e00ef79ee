"""The installation as its files say now: a trainer's edit of an answer, a line's hours or a
topic reaches the next turn within a second, without retraining or a restart. An edit that does
not load keeps the last good configuration and is logged with its error."""

import logging
import os
import time
from pathlib import Path
from typing import Dict, Optional

from voicebot.config.errors import ConfigError
from voicebot.config.settings import DEFAULT_SETTINGS, Installation, load_installation

logger = logging.getLogger(__name__)


class LiveConfiguration:
    CHECK_EVERY_S = 1.0

    def __init__(self, settings_file: Optional[Path] = None):
        """`settings_file`: voicebot.yml; without it, where VOICEBOT_CONFIG says, or the default."""
        self.settings_file = settings_file
        self.inst: Optional[Installation] = None
        self.files: Dict[str, float] = {}
        self.checked = 0.0

    def __call__(self) -> Installation:
        if self.inst is None or time.monotonic() - self.checked >= self.CHECK_EVERY_S:
            self.checked = time.monotonic()
            files = self._files()  # before loading: an edit made meanwhile is seen next time
            if self.inst is None or files != self.files:
                first = self.inst is None
                try:
                    self.inst = load_installation(self._settings())
                except ConfigError as error:
                    if first:
                        raise
                    logger.error("the configuration did not load, the bot goes on with the last good one: %s", error)
                self.files = self._files() if first else files  # now with the tenants' and topics' files
        return self.inst

    def look_again(self) -> None:
        """Read the files at the next call, not a second later (after an edit of our own)."""
        self.checked = 0.0

    def _settings(self) -> Path:
        return Path(self.settings_file or os.environ.get("VOICEBOT_CONFIG", DEFAULT_SETTINGS)).resolve()

    def _files(self) -> Dict[str, float]:
        """Each configuration file and its modification time."""
        paths = [self._settings()]
        if self.inst is not None:
            paths += [self.inst.topics_file, *self.inst.path(self.inst.settings.tenants_dir).glob("*.yml")]
        return {str(p): p.stat().st_mtime if p.exists() else 0.0 for p in paths}
