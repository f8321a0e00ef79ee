"""Model versions: each model trained from the dashboard is kept (models/versions/<lang>/<id>.tar.gz,
with who trained it, when, from which data and how it did on the held-out sentences), and the live
model (models/<lang>.tar.gz) is a copy of one of them, so a trainer can put any kept one back."""

import datetime as dt
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional

from voicebot.config import ConfigError, Installation
from voicebot.dialogue.training import fingerprint_path, live_version_path, model_path, seconds_path


@dataclass
class ModelVersion:
    id: str
    lang: str
    trained_by: str
    trained_at: str  # ISO 8601, UTC
    fingerprint: Optional[str] = None  # of the training data (voicebot.dialogue.training.fingerprint)
    heldout_accuracy: Optional[float] = None
    seconds: Optional[float] = None  # how long the training took


class Versions:
    """One language's kept models, newest first."""

    def __init__(self, inst: Installation, lang: str):
        self.inst, self.lang, self.keep = inst, lang, inst.settings.nlu.keep_versions
        self.folder = inst.models_dir / "versions" / lang

    def path(self, version_id: str) -> Path:
        return self.folder / f"{version_id}.tar.gz"

    def new_id(self) -> str:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        version_id, n = stamp, 1
        while self.path(version_id).exists() or (self.folder / f"{version_id}.json").exists():
            n += 1
            version_id = f"{stamp}-{n}"
        return version_id

    def save(self, version: ModelVersion) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{version.id}.json").write_text(json.dumps(asdict(version), indent=1), encoding="utf-8")

    def all(self) -> List[ModelVersion]:
        found = [ModelVersion(**json.loads(p.read_text(encoding="utf-8"))) for p in self.folder.glob("*.json")]
        return sorted((v for v in found if self.path(v.id).exists()), key=lambda v: v.trained_at, reverse=True)

    def get(self, version_id: str) -> ModelVersion:
        version = next((v for v in self.all() if v.id == version_id), None)
        if version is None:
            raise ConfigError(f"no kept {self.lang} model {version_id!r}")
        return version

    def live_id(self) -> Optional[str]:
        marker = live_version_path(self.inst, self.lang)
        return marker.read_text().strip() if marker.exists() else None

    def expected_seconds(self) -> Optional[float]:
        """How long the last training took (at first, `voicebot train`'s): what a trainer can expect."""
        return next((v.seconds for v in self.all() if v.seconds), None) or self._installed_seconds()

    def _installed_seconds(self) -> Optional[float]:
        marker = seconds_path(self.inst, self.lang)
        try:
            return float(marker.read_text())
        except (OSError, ValueError):
            return None

    def keep_live(self) -> None:
        """Keep the live model as a version if it is none yet (`voicebot train` made it), so that
        a trainer can always go back to what ran before."""
        live = model_path(self.inst, self.lang)
        if self.live_id() or not live.exists():
            return
        made = dt.datetime.fromtimestamp(live.stat().st_mtime, dt.timezone.utc)
        marker = fingerprint_path(self.inst, self.lang)
        version = ModelVersion(id=self.new_id(), lang=self.lang, trained_by="voicebot train",
                               trained_at=made.isoformat(timespec="seconds"),
                               fingerprint=marker.read_text().strip() if marker.exists() else None)
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(live, self.path(version.id))
        self.save(version)
        live_version_path(self.inst, self.lang).write_text(version.id)

    def switch_to(self, version_id: str) -> None:
        """Make a kept version live, keeping what runs now so that it can always be put back."""
        self.keep_live()
        self.make_live(version_id)

    def make_live(self, version_id: str) -> None:
        """Copy a kept version over the live model (atomically: a process loading the model
        meanwhile reads the old file or the new one, never half of one)."""
        version = self.get(version_id)
        live = model_path(self.inst, self.lang)
        swap = live.with_name(live.name + ".swap")
        shutil.copyfile(self.path(version_id), swap)
        os.replace(swap, live)
        if version.fingerprint:
            fingerprint_path(self.inst, self.lang).write_text(version.fingerprint)
        live_version_path(self.inst, self.lang).write_text(version_id)
        self.prune()

    def prune(self) -> None:
        """Only the newest `keep_versions`, and the live one."""
        live = self.live_id()
        for version in self.all()[self.keep:]:
            if version.id != live:
                self.path(version.id).unlink(missing_ok=True)
                (self.folder / f"{version.id}.json").unlink(missing_ok=True)
