"""The `voicebot` commands as trainers and newcomers use them."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicebot.config import load_installation
from voicebot.dialogue.runtime import Dialogue
from voicebot.dialogue.training import fingerprint, is_stale
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.ports import free_port

REPO = Path(__file__).resolve().parents[1]


def voicebot(*args, stdin: str = "", timeout: float = 600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voicebot.cli", *args], input=stdin, cwd=REPO, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_chat_in_the_terminal(trained):
    result = voicebot("chat", "--line", "demo-city", stdin="are you open right now\nno thanks\n",
                      env={"VOICEBOT_CLOCK": "2026-11-24T10:00:00+00:00"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"bot> {trained.tenant('demo-city').greeting}"
    assert "bot> The town hall customer service centre is open now, until 5 pm." in result.stdout
    assert lines[-2:] == ["bot> Thank you for calling. Goodbye.", "[the bot hung up]"]


def test_chat_rejects_an_unknown_line(trained):
    result = voicebot("chat", "--line", "atlantis")
    assert result.returncode != 0
    assert "no line 'atlantis'" in result.stderr


def test_nlu_parse_writes_one_json_object_per_line(trained):
    result = voicebot("nlu", "parse", "--lang", "da",
                      stdin="har biblioteket åbent på lørdag\njeg skal have nyt pas\n\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["intent"] for r in rows] == ["opening_hours", "passport", None]
    assert {"entity": "office", "value": "biblioteket"} in [
        {k: e[k] for k in ("entity", "value")} for e in rows[0]["entities"]]
    assert 0 < rows[1]["confidence"] <= 1 and len(rows[1]["ranking"]) == 3


def test_training_is_skipped_when_nothing_changed(trained, install_copy):
    assert not is_stale(trained, "en")
    result = voicebot("train", "--lang", "en")
    assert result.returncode == 0 and "en: model is up to date" in result.stdout
    # A changed example makes the copy's model stale.
    copy = load_installation(install_copy / "voicebot.yml")
    before = fingerprint(copy, "en")
    assert before == fingerprint(trained, "en")
    nlu = install_copy / "nlu_data" / "en" / "nlu.yml"
    nlu.write_text(nlu.read_text().replace("    - hello\n", "    - hello there my friend\n", 1))
    assert fingerprint(copy, "en") != before and fingerprint(copy, "da") == fingerprint(trained, "da")


def test_training_refuses_an_utterance_under_two_intents(install_copy):
    (install_copy / "nlu_data" / "en" / "extra.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: complaint\n  examples: |\n    - passport\n')
    result = voicebot("--config", str(install_copy / "voicebot.yml"), "train", "--lang", "en")
    assert result.returncode == 1
    assert "'passport' is an example of both" in result.stderr and "'complaint'" in result.stderr
    assert not (install_copy / "models" / "en.tar.gz").exists()


@pytest.mark.slow
def test_cross_validation_report(trained):
    result = voicebot("test", "nlu", "--lang", "en", "--folds", "2", "--epochs", "10")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2-fold cross-validation" in out and "macro F1" in out and "worst confusions" in out
    accuracy = float(out.split("intent accuracy")[1].split()[0])
    assert 0.3 < accuracy <= 1.0  # ten epochs on half the data: rough, but far above chance (0.05)
    assert all(f"    {intent} " in out for intent in ("passport", "out_of_scope", "greet"))


def test_action_server_down_hands_the_caller_off(trained):
    """Rasa alone would go silent; the caller must hear an apology and reach a person."""
    dead = f"http://127.0.0.1:{free_port()}"
    dialogue = Dialogue(trained, dead, ["de"]).load()
    tenant = trained.tenant("stadt-kreis")
    reply = asyncio.run(dialogue.handle(tenant, "dead-actions", "ich brauche einen neuen reisepass"))
    assert reply.texts == [phrasebook("de").say("handoff_technical")]
    assert reply.handoff["reason"] == "technical_fault" and reply.handoff["queue"] == "stadt-kreis-pool"


@pytest.mark.parametrize("lang", ["da", "de", "en", "nb", "sv"])
def test_the_held_out_off_topic_set_is_large_and_unseen_in_training(inst, lang):
    """`bench nlu` measures off-topic false accepts on at least 300 questions per language that
    the model never saw: none may be a training example or a held-out dialogue test utterance."""
    from voicebot.dialogue.training import load_nlu

    def norm(text: str) -> str:
        return " ".join(text.lower().split())

    held_out = [norm(t) for t in (inst.root / "benchmarks" / "data" / lang / "out_of_scope.txt")
                .read_text(encoding="utf-8").splitlines() if t.strip()]
    assert len(held_out) >= 300 and len(set(held_out)) == len(held_out)
    trained_on = {norm(e.get("text")) for e in load_nlu(inst, lang).intent_examples}
    assert not set(held_out) & trained_on
