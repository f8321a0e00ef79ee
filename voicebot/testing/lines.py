"""Test lines' installations (the Korean line): the project's domain, pipeline and stories
with a test line's own tenants and NLU data (voicebot/testing/data/<line>), in a folder of their
own, trained. REPO: the repository checkout whose voicebot.yml, training files and stories the
harness reads (the tests and benchmarks run from one)."""

import shutil
from pathlib import Path
from typing import Iterable

import yaml

from voicebot.dialogue.training import TRAINING_FILES

REPO = Path(__file__).resolve().parents[2]


def build_installation(root: Path, data: Path, languages: Iterable[str], queues: dict, asr_models: dict,
                       audio: dict) -> Path:
    """Write the installation under root (data: the line's tenants/ and nlu_data/; voicebot.yml's
    settings with these queues, asr.models and audio overrides), train its languages' models if
    stale, and return its settings file."""
    from voicebot.config import load_installation
    from voicebot.dialogue.training import train_stale

    root.mkdir(parents=True, exist_ok=True)
    for name in TRAINING_FILES:
        shutil.copy(REPO / name, root / name)
    for folder, source in (("stories", REPO / "stories"), ("tenants", data / "tenants"),
                           ("nlu_data", data / "nlu_data")):
        shutil.rmtree(root / folder, ignore_errors=True)
        shutil.copytree(source, root / folder)
    settings = yaml.safe_load((REPO / "voicebot.yml").read_text())
    settings["queues"] = queues
    settings["asr"] = {**settings.get("asr", {}), "models": asr_models}
    settings["audio"] = {**settings.get("audio", {}), **audio}
    path = root / "voicebot.yml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True))
    train_stale(load_installation(path), list(languages))
    return path
