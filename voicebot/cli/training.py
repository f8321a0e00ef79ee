"""Trainers' commands: `train`, `nlu parse`, `test nlu`."""

import asyncio
import json
import sys
from pathlib import Path
from typing import Optional

import click

from voicebot.cli import Context, main
from voicebot.cli.common import _languages


@main.command()
@click.option("--lang", help="Only this language.")
@click.option("--force", is_flag=True, help="Train even if the data did not change.")
@click.option("--candidate", type=click.Path(dir_okay=False, path_type=Path),
              help="Train --lang's model into this .tar.gz and leave the live model alone.")
@click.pass_obj
def train(obj: Context, lang: Optional[str], force: bool, candidate: Optional[Path]) -> None:
    """Train one model per language, only where the data changed."""
    from voicebot.dialogue.training import train_language, train_stale

    if candidate:
        if not lang or not candidate.name.endswith(".tar.gz"):
            raise click.UsageError("--candidate needs --lang and a path ending in .tar.gz")
        click.echo(f"{lang}: candidate -> {train_language(obj.inst, lang, into=candidate.resolve())}")
        return
    train_stale(obj.inst, _languages(obj.inst, lang), force=force, report=click.echo)


@main.group()
def nlu() -> None:
    """NLU tools for trainers."""


@nlu.command("parse")
@click.option("--lang", required=True, help="Language model to use.")
@click.pass_obj
def nlu_parse(obj: Context, lang: str) -> None:
    """Read utterances from stdin, one per line; write one JSON object per line."""
    from voicebot.dialogue.runtime import Dialogue

    _languages(obj.inst, lang)
    dialogue = Dialogue(obj.inst, action_server_url="", languages=[lang]).load()

    async def run():
        for line in sys.stdin:
            parsed = await dialogue.parse(lang, line.rstrip("\n"))
            click.echo(json.dumps({
                "text": parsed.get("text", ""),
                "intent": parsed["intent"]["name"],
                "confidence": round(float(parsed["intent"]["confidence"] or 0), 4),
                "entities": [{k: e.get(k) for k in ("entity", "value", "start", "end")}
                             for e in parsed.get("entities", [])],
                "ranking": [{"intent": r["name"], "confidence": round(float(r["confidence"]), 4)}
                            for r in parsed.get("intent_ranking", [])[:3]],
            }, ensure_ascii=False), nl=True)
            sys.stdout.flush()

    asyncio.run(run())


@main.group("test")
def test_group() -> None:
    """Quality checks for trainers."""


@test_group.command("nlu")
@click.option("--lang", help="Only this language.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20))
@click.option("--epochs", type=click.IntRange(1, 500), help="Override DIET epochs (faster, rougher).")
@click.pass_obj
def test_nlu(obj: Context, lang: Optional[str], folds: int, epochs: Optional[int]) -> None:
    """Cross-validation report per language: accuracy, per-intent F1, worst confusions."""
    from voicebot.dialogue.evaluation import cross_validate

    for language in _languages(obj.inst, lang):
        report = cross_validate(obj.inst, language, folds, epochs, report=click.echo)
        click.echo("\n".join(report.lines()))
