"""The `voicebot` command."""

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Optional

import click
import yaml

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


def _languages(inst: Installation, lang: Optional[str]) -> list:
    if lang and lang not in inst.languages:
        raise click.BadParameter(f"no line speaks {lang!r}; languages: {', '.join(inst.languages)}")
    return [lang] if lang else inst.languages


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


@main.command()
@click.option("--lang", help="Only this language.")
@click.option("--force", is_flag=True, help="Train even if the data did not change.")
@click.pass_obj
def train(obj: Context, lang: Optional[str], force: bool) -> None:
    """Train one model per language, only where the data changed."""
    from voicebot.dialogue.training import train_stale

    train_stale(obj.inst, _languages(obj.inst, lang), force=force, report=click.echo)


def _start_actions(obj: Context, port: Optional[int] = None):
    from voicebot.dialogue.action_server import ActionServerProcess

    settings = obj.inst.settings.action_server
    if not settings.spawn:
        return None, settings.url
    server = ActionServerProcess(obj.config_path, settings.host, settings.port if port is None else port)
    return server.start(), server.url


@main.command()
@click.option("--line", "line_id", required=True, help="Line (tenant) id, e.g. demo-kommune.")
@click.option("--caller", help="Caller's phone number, as caller ID would give it.")
@click.pass_obj
def chat(obj: Context, line_id: str, caller: Optional[str]) -> None:
    """Talk to a line in the terminal."""
    from voicebot.channels.terminal import chat as run_chat
    from voicebot.dialogue.runtime import Dialogue

    tenant = obj.inst.tenant(line_id)
    server, url = _start_actions(obj, port=0)
    try:
        dialogue = Dialogue(obj.inst, url, [tenant.language]).load()
        asyncio.run(run_chat(dialogue, tenant, caller))
    finally:
        if server:
            server.stop()


@main.command()
@click.option("--host", help="Address for the HTTP text channel (default from voicebot.yml).")
@click.option("--port", type=int, help="Port for the HTTP text channel.")
@click.option("--actions-port", type=int, help="Port for the spawned action server (0: any free port).")
@click.pass_obj
def serve(obj: Context, host: Optional[str], port: Optional[int], actions_port: Optional[int]) -> None:
    """Run the HTTP text channel and the action server."""
    from voicebot.channels.http import create_app
    from voicebot.dialogue.runtime import Dialogue

    http = obj.inst.settings.http
    server, url = _start_actions(obj, port=actions_port)
    try:
        dialogue = Dialogue(obj.inst, url)
        app = create_app(obj.inst, dialogue)
        app.register_listener(lambda app, loop: dialogue.load(), "before_server_start")
        click.echo(f"text channel on http://{host or http.host}:{port or http.port}, actions on {url}")
        app.run(host=host or http.host, port=port or http.port, access_log=False, motd=False)
    finally:
        if server:
            server.stop()


@main.group()
def prompts() -> None:
    """Pre-rendered speech for the phone line."""


@prompts.command("build")
@click.option("--rate", "rates", type=int, multiple=True, default=(8000, 16000), show_default=True,
              help="Sample rate to render at (G.711 calls use 8000, G.722 16000); repeatable.")
@click.pass_obj
def prompts_build(obj: Context, rates) -> None:
    """Render every line's greeting and fixed prompts into audio_prompts/ (only what is missing)."""
    from voicebot.audio.tts import PromptCache, build_prompts, voice_for
    from voicebot.knowledge.phrasebook import phrasebook

    cache = PromptCache(obj.inst.path(obj.inst.settings.audio_prompts_dir))
    for tenant in obj.inst.tenants.values():
        total, rendered = build_prompts(tenant, phrasebook(tenant.language).data, cache, list(rates))
        click.echo(f"{tenant.id} ({tenant.language}, voice {voice_for(tenant)}): "
                   f"{total} prompts, {rendered} rendered now")


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


@main.group()
def bench() -> None:
    """Benchmarks: print figures and write them to benchmarks/RESULTS.md."""


@bench.command("nlu")
@click.option("--lang", help="Only this language.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20))
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default benchmarks/RESULTS.md).")
@click.pass_obj
def bench_nlu(obj: Context, lang: Optional[str], folds: int, output: Optional[Path]) -> None:
    """Cross-validated accuracy and macro F1, out-of-scope false accepts, parse latency."""
    from voicebot.benchmarks import record
    from voicebot.dialogue.evaluation import cross_validate, heldout_and_latency
    from voicebot.dialogue.training import model_path

    inst = obj.inst
    lines = []
    for language in _languages(inst, lang):
        report = cross_validate(inst, language, folds, report=click.echo)
        data = inst.root / "benchmarks" / "data" / language
        oos = (data / "out_of_scope.txt").read_text(encoding="utf-8").split("\n")
        probes = [u for utterances in yaml.safe_load(
            (inst.root / "tests" / "data" / f"dialogue_{language}.yml").read_text(encoding="utf-8")).values()
            for u in utterances]
        report.heldout_oos_false_accept, report.latency_ms = heldout_and_latency(
            str(model_path(inst, language)), [t for t in oos if t.strip()], probes)
        click.echo("\n".join(report.lines()))
        lines += report.lines() + [""]
    command = "voicebot bench nlu" + (f" --lang {lang}" if lang else "") + f" --folds {folds}"
    path = record(output or inst.root / "benchmarks" / "RESULTS.md", "NLU", command, lines)
    click.echo(f"results written to {path}")


if __name__ == "__main__":
    main()
