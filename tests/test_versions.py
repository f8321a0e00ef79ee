"""Model versions on disk (voicebot/dialogue/versions.py) and the retraining's judgement, in
milliseconds: the files are stand-ins for models, the code under test only copies them."""

import json

import pytest

from voicebot.config import ConfigError, load_installation
from voicebot.dashboard.retrain import Evaluation, needs_confirmation
from voicebot.dialogue.training import fingerprint_path, live_version_path, model_path, seconds_path
from voicebot.dialogue.versions import ModelVersion, Versions


@pytest.fixture
def installation(install_copy):
    with open(install_copy / "voicebot.yml", "a") as config:
        config.write(f"\nmodels_dir: {install_copy / 'models'}\nnlu: {{keep_versions: 2}}\n")
    inst = load_installation(install_copy / "voicebot.yml")
    inst.models_dir.mkdir()
    model_path(inst, "en").write_bytes(b"installed model")
    fingerprint_path(inst, "en").write_text("data-1")
    return inst


def trained(versions: Versions, content: bytes, at: str, seconds: float = 60.0) -> str:
    version_id = versions.new_id()
    versions.folder.mkdir(parents=True, exist_ok=True)
    versions.path(version_id).write_bytes(content)
    versions.save(ModelVersion(version_id, "en", "tom", at, "data-2", 0.9, seconds))
    return version_id


def test_the_installed_model_is_kept_before_a_new_one_goes_live_and_can_come_back(installation):
    versions = Versions(installation, "en")
    assert versions.all() == [] and versions.live_id() is None and versions.expected_seconds() is None
    seconds_path(installation, "en").write_text("88.5")  # how long `voicebot train` took
    assert versions.expected_seconds() == 88.5  # what the first retraining can expect
    new = trained(versions, b"retrained model", "2026-12-01T18:00:00+00:00", seconds=75.0)
    versions.keep_live()
    versions.make_live(new)
    assert model_path(installation, "en").read_bytes() == b"retrained model"
    assert fingerprint_path(installation, "en").read_text() == "data-2" and versions.live_id() == new
    installed = next(v for v in versions.all() if v.trained_by == "voicebot train")
    assert installed.fingerprint == "data-1" and versions.expected_seconds() == 75.0
    versions.keep_live()  # live is a version already: nothing new
    assert len(versions.all()) == 2
    versions.make_live(installed.id)
    assert model_path(installation, "en").read_bytes() == b"installed model"
    assert fingerprint_path(installation, "en").read_text() == "data-1"
    assert live_version_path(installation, "en").read_text() == installed.id


def test_only_the_newest_versions_and_the_live_one_are_kept(installation):
    versions = Versions(installation, "en")
    first = trained(versions, b"1", "2026-12-01T10:00:00+00:00")
    versions.make_live(first)
    for hour in (11, 12, 13):
        trained(versions, str(hour).encode(), f"2026-12-01T{hour}:00:00+00:00")
    versions.prune()
    kept = [v.id for v in versions.all()]
    assert len(kept) == 3 and first in kept  # keep_versions 2, and the live one
    assert not any(json.loads(p.read_text())["trained_at"].startswith("2026-12-01T11")
                   for p in versions.folder.glob("*.json"))
    with pytest.raises(ConfigError, match="no kept en model 'nothing'"):
        versions.make_live("nothing")


@pytest.mark.parametrize("live, candidate, needed", [((60, 63), (59, 63), False), ((60, 63), (58, 63), True),
                                                     ((60, 63), (63, 63), False), ((0, 0), (0, 0), False)])
def test_a_new_model_worse_beyond_the_margin_needs_a_trainer(live, candidate, needed):
    assert needs_confirmation(Evaluation(live[1], live[0]), Evaluation(candidate[1], candidate[0]), 0.02) is needed
