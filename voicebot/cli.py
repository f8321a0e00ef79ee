"""The `voicebot` command."""

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional, Tuple

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

    def serve_only(self, line_ids) -> None:
        self._inst = self.inst.serving(line_ids)


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


@main.command()
@click.option("--line", "line_id", required=True, help="Line (tenant) id, e.g. demo-kommune.")
@click.option("--caller", help="Caller's phone number, as caller ID would give it.")
@click.pass_obj
def chat(obj: Context, line_id: str, caller: Optional[str]) -> None:
    """Talk to a line in the terminal."""
    from voicebot.channels.terminal import chat as run_chat
    from voicebot.dialogue.runtime import Dialogue

    tenant = obj.inst.tenant(line_id)
    with _action_server(obj, port=0) as (url, _):
        dialogue = Dialogue(obj.inst, url, [tenant.language]).load()
        asyncio.run(run_chat(dialogue, tenant, caller))


@main.command()
@click.option("--host", help="Address for the HTTP text channel (default from voicebot.yml).")
@click.option("--port", type=int, help="Port for the HTTP text channel.")
@click.option("--actions-port", type=int, help="Port for the spawned action server (0: any free port).")
@click.option("--sip-port", type=int, help="Port for the SIP line, UDP and TCP (default from voicebot.yml).")
@click.option("--registrar-port", type=int, help="Port where agents' softphones register (UDP).")
@click.option("--no-sip", is_flag=True, help="Text channel only, no phone line.")
@click.option("--rasa-server", "rasa_servers", multiple=True, metavar="LANG=URL", callback=lambda c, p, v: _rasa_servers(v),
              help="A language's Rasa server (voicebot rasa serve), instead of its model in this process (repeatable).")
@click.option("--line", "line_ids", multiple=True, metavar="ID",
              help="Serve only this line (repeatable; default all): only its language's model is loaded.")
@click.option("--worker", "worker_name", help="This process's name in the call records (default HOST:HTTP-PORT): "
                                              "started again under it, it ends the calls it left open.")
@click.pass_obj
def serve(obj: Context, host: Optional[str], port: Optional[int], actions_port: Optional[int],
          sip_port: Optional[int], registrar_port: Optional[int], no_sip: bool, rasa_servers: dict,
          line_ids: tuple, worker_name: Optional[str]) -> None:
    """Run the phone line (SIP), the HTTP text channel and the action server."""
    from voicebot.app import Bot, ServeOptions

    if line_ids:
        obj.serve_only(line_ids)
    options = ServeOptions(host, port, actions_port, not no_sip, sip_port, registrar_port, rasa_servers, worker_name)
    Bot(obj.inst, obj.config_path, options, say=click.echo).run()


def _rasa_servers(values) -> dict:
    servers = dict(value.partition("=")[::2] for value in values)
    wrong = [f"{lang}={url}" for lang, url in servers.items() if not lang or not url.startswith(("http://", "https://"))]
    if wrong:
        raise click.BadParameter(f"{', '.join(wrong)}: give LANG=http://HOST:PORT")
    return servers


def _records(inst, worker: Optional[str] = None):
    """The store, migrated; an unreachable database stops start-up with a clear error."""
    from voicebot.metrics import Metrics
    from voicebot.store import RecordStore

    return RecordStore(inst.settings.store_url, inst.root, inst.settings.nlu.review_below, metrics=Metrics(),
                       worker=worker)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("uri")
@click.option("--lang", default="en", show_default=True, help="Language (espeak-ng voice) for --say turns.")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), help="Write what was heard to this WAV.")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
@click.option("--timeout", default=60.0, show_default=True, help="Give up after this many seconds.")
@click.option("--accept-transfer", is_flag=True, help="Follow a REFER (default: decline it and stay).")
@click.option("--calls", default=1, show_default=True, type=click.IntRange(1),
              help="Place this many calls, each playing the turns; prints a list of timelines.")
@click.option("--concurrent", default=1, show_default=True, type=click.IntRange(1),
              help="With --calls: this many calls at a time (one caller holds at most 4).")
@click.option("--stagger", default=0.0, show_default=True, type=click.FloatRange(0),
              help="With --calls: seconds between the starts of the first calls.")
@click.option("--from", "number", default="caller", show_default=True,
              help="Calling number (the From user part: the bot's caller ID).")
@click.pass_context
def call(ctx: click.Context, uri: str, lang: str, record: Optional[Path], as_json: bool, timeout: float,
         accept_transfer: bool, calls: int, concurrent: int, stagger: float, number: str) -> None:
    """Dial a bot and play caller turns, in order: --say TEXT, --wav FILE, --dtmf DIGITS,
    --wait SECONDS (then the next turn plays whatever the bot does: hold music never goes quiet);
    --barge-in before a turn speaks it over the bot. Prints what was heard and the latencies."""
    from voicebot.testing.phone import TestPhone, parse_turns, timeline_json

    try:
        turns = parse_turns(ctx.args, lang)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if calls > 1:
        if record or accept_transfer:
            raise click.UsageError("--record and --accept-transfer are for a single call, not with --calls")
        _call_many(uri, turns, calls, concurrent, stagger, timeout, as_json, number)
        return
    transport = "tcp" if ";transport=tcp" in uri.lower() else "udp"
    timeline = TestPhone(number=number, transport=transport).run(uri, turns, record, timeout,
                                                                 accept_transfer=accept_transfer)
    if as_json:
        click.echo(timeline_json(timeline))
    else:
        _print_timeline(timeline)
    if not timeline.get("connected"):
        raise click.ClickException(f"the call was not answered: {timeline.get('status')} {timeline.get('reason')}")


@main.command()
@click.option("--line", "line_id", default="demo-kommune", show_default=True, help="Line to call.")
@click.pass_obj
def demo(obj: Context, line_id: str) -> None:
    """Start the bot (phone line and text channel), place one demo call, keep the bot running."""
    import subprocess
    import time
    import urllib.request

    from voicebot import procs
    from voicebot.testing.phone import TestPhone, parse_turns

    inst, tenant = obj.inst, obj.inst.tenant(line_id)
    bot = subprocess.Popen([sys.executable, "-m", "voicebot.cli", "serve"], preexec_fn=procs.die_with_parent)
    try:
        click.echo("starting the bot (loading the language models takes a minute or two) ...")
        while bot.poll() is None:
            try:
                urllib.request.urlopen(f"{inst.settings.http.url}/health", timeout=1)
                break
            except OSError:
                time.sleep(1)
        if bot.poll() is not None:
            raise click.ClickException("the bot did not start; see the messages above")
        uri = f"sip:{tenant.numbers[0]}@{inst.settings.sip.host}:{inst.settings.sip.port}"
        click.echo(f"demo call to {tenant.name}: {uri}, pressing 1 (the first menu topic)")
        _print_timeline(TestPhone().run(uri, parse_turns(["--dtmf", "1"], tenant.language)))
        click.echo(f"the bot keeps running: ring {uri} from a softphone, or press Ctrl-C to stop")
        click.echo(f"dashboard: {inst.settings.http.url}/dashboard/ (first add a login: "
                   "'voicebot users add NAME --role admin')")
        bot.wait()
    finally:
        procs.stop(bot)


def _call_many(uri: str, turns: list, calls: int, concurrent: int, stagger: float, timeout: float,
               as_json: bool, number: str) -> None:
    from voicebot.testing.phone import TestPhone, timeline_json

    with TestPhone(number=number) as phone:
        try:
            timelines = phone.place_many(uri, turns, calls, concurrent, timeout, stagger)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
    if as_json:
        click.echo(timeline_json(timelines))
    else:
        for timeline in timelines:
            if timeline.get("connected"):
                _print_timeline(timeline)
            else:
                click.echo(f"not answered: {timeline.get('status')} {timeline.get('reason')} "
                           f"{timeline.get('error', '')}")
    failed = sum(not t.get("connected") for t in timelines)
    if failed:
        raise click.ClickException(f"{failed} of {calls} calls were not answered")


def _print_timeline(timeline: dict) -> None:
    click.echo(f"connected in {timeline['connect_ms']} ms, call id {timeline['call_id']}")
    for turn in timeline["turns"]:
        click.echo(f"  caller {turn['kind']} {turn['value']!r}{' (barge-in)' if turn['barge_in'] else ''}: "
                   f"bot answered after {turn['latency_ms']} ms and spoke {turn['bot_ms']} ms")
    for uri in timeline["transfers"]:
        click.echo(f"  bot transferred the call to {uri}")
    click.echo(f"heard {timeline['heard_ms']} ms of audio; hung up by the {timeline['hung_up_by']}")


@main.group()
def agents() -> None:
    """Live agents who answer queued callers."""


@agents.command("hash-password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.pass_obj
def agents_hash_password(obj: Context, username: str, password: str) -> None:
    """Print the ha1 to put in voicebot.yml for USERNAME (the password itself is never stored)."""
    from voicebot.queue.registrar import ha1

    if len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="--password")
    realm = obj.inst.settings.agent_registrar.realm
    click.echo(f"{username}: {{username: {username}, ha1: {ha1(username, realm, password)}, queues: [...], name: ...}}")


@main.group()
def models() -> None:
    """Speech recognition models."""


@models.command("get")
@click.argument("lang")
@click.option("--engine", type=click.Choice(["vosk", "whisper"]),
              help="Vosk (streaming; the default where LANG has a Vosk model) or Whisper (any language; the default "
                   "otherwise, and with --size).")
@click.option("--size", help="Whisper model to fetch (default small): tiny, base, small, medium, large-v3, or "
                             "da-hviske-tiske (Danish); see voicebot/audio/asr/catalogue.py.")
@click.option("--url", help="Download from here instead of the catalogue (Vosk: the zip; Whisper: the folder "
                            "holding the model's files).")
@click.option("--sha256", help="Expected SHA-256 of the download (Vosk).")
@click.pass_obj
def models_get(obj: Context, lang: str, engine: Optional[str], size: Optional[str], url: Optional[str],
               sha256: Optional[str]) -> None:
    """Download a speech model for LANG into the cache (asr.cache_dir)."""
    from voicebot.audio.asr import cache_dir, vosk, whisper

    engine = engine or ("whisper" if size or lang not in vosk.CATALOGUE else "vosk")
    if engine == "vosk" and size:
        raise click.UsageError("--size is for --engine whisper")
    if engine == "whisper" and sha256:
        raise click.UsageError("--sha256 is for --engine vosk (Whisper files are checked against the catalogue)")
    with _download_bar(f"{lang} {engine} model") as progress:
        if engine == "vosk":
            path = vosk.download(lang, cache_dir(obj.inst), progress, url, sha256)
        else:
            path = whisper.download(lang, size or "small", cache_dir(obj.inst), progress, url)
    click.echo(f"{lang} {engine} model in {path}; SHA-256:\n{(path / 'SHA256').read_text().rstrip()}")
    if engine == "whisper":
        click.echo(f"to use it, set in voicebot.yml: asr.models.{lang}: {{engine: whisper, model: {path.name}}}")


@models.command("prepare")
@click.pass_obj
def models_prepare(obj: Context) -> None:
    """Assemble the bundled Whisper base model in the cache (once; later runs only check it is there)."""
    from voicebot.audio.asr import cache_dir, whisper

    ready = whisper.bundled_ready(cache_dir(obj.inst))
    path = whisper.assemble_bundled(cache_dir(obj.inst))
    click.echo(f"Whisper {whisper.BUNDLED} model {'already in' if ready else 'assembled and checked in'} {path}")


@contextlib.contextmanager
def _download_bar(what: str):
    """A progress bar for a download; a ConfigError (offline, damaged) becomes one clear message."""
    from tqdm import tqdm

    bar = tqdm(unit="B", unit_scale=True, desc=what)

    def progress(size: int, total: int) -> None:
        bar.total = total or None
        bar.update(size)
    try:
        yield progress
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    finally:
        bar.close()


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
    from voicebot.bench.results import record
    from voicebot.dialogue.evaluation import cross_validate, heldout_and_latency
    from voicebot.dialogue.training import load_heldout, model_path

    inst = obj.inst
    lines = []
    for language in _languages(inst, lang):
        report = cross_validate(inst, language, folds, report=click.echo)
        data = inst.root / "benchmarks" / "data" / language
        oos = (data / "out_of_scope.txt").read_text(encoding="utf-8").split("\n")
        probes = [text for _, text in load_heldout(inst, language)]
        oos = [t for t in oos if t.strip()]
        report.heldout_oos_accepted, report.latency_ms = heldout_and_latency(
            str(model_path(inst, language)), oos, probes, inst.routine_intents)
        report.heldout_oos_size = len(oos)
        report.heldout_oos_false_accept = len(report.heldout_oos_accepted) / max(len(oos), 1)
        click.echo("\n".join(report.lines()))
        lines += report.lines() + [""]
    command = "voicebot bench nlu" + (f" --lang {lang}" if lang else "") + f" --folds {folds}"
    path = record(output or inst.root / "benchmarks" / "RESULTS.md", "NLU", command, lines)
    click.echo(f"results written to {path}")


@bench.command("dialogue")
@click.option("--lang", help="Only this language.")
@click.option("--scenarios", "folder", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of <lang>.yml scenario files (default benchmarks/dialogue).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default benchmarks/RESULTS.md).")
@click.pass_obj
def bench_dialogue(obj: Context, lang: Optional[str], folder: Optional[Path], output: Optional[Path]) -> None:
    """Multi-turn conversations through the real dialogue, each at its own clock instant:
    correct, partly right and wrong per language and category, and every wrong fact; then the
    held-out off-topic questions (benchmarks/data): how many got a municipal answer."""
    from voicebot.bench.dialogue import run

    folder = folder or obj.inst.root / "benchmarks" / "dialogue"
    command = "voicebot bench dialogue" + (f" --lang {lang}" if lang else "")
    off_topic = obj.inst.root / "benchmarks" / "data"
    _run_bench("Dialogue", command, None, output,
               lambda _: run(obj.inst, _languages(obj.inst, lang), folder, click.echo, off_topic))


@bench.command("call")
@click.option("--line", "line_name", default="korean", show_default=True, type=click.Choice(["korean", "demo-city"]),
              help="The Korean test line (Vosk, streaming) or the English demo line demo-city (Whisper base).")
@click.option("--turns", default=50, show_default=True, type=click.IntRange(1),
              help="Turns in the latency phase (calls of up to 10 turns, one call at a time).")
@click.option("--max-calls", default=32, show_default=True, type=click.IntRange(2, 60),
              help="Most calls at once to try (the ramp doubles from 2, then narrows down).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Build the Korean test line here and keep it (a demo line: keep its logs here), with "
                   "calls.json: both views of every call (default: a temporary folder).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default benchmarks/RESULTS.md).")
def bench_call(line_name: str, turns: int, max_calls: int, root: Optional[Path], output: Optional[Path]) -> None:
    """Phone line over loopback SIP: turn latency and its parts, barge-in, most simultaneous
    calls, CPU and memory per call (the Korean test line: the one language with a Vosk model here;
    or demo-city on Whisper)."""
    from voicebot.bench.call import LINES, run

    section, line = ("Phone line" if line_name == "korean" else f"Phone line: {line_name}"), LINES[line_name]
    command = "voicebot bench call" + (f" --line {line_name}" if line_name != "korean" else "") \
        + f" --turns {turns} --max-calls {max_calls}"
    _run_bench(section, command, root, output, lambda folder: run(folder, turns, max_calls, click.echo, line))


@bench.command("speech")
@click.option("--lang", "langs", default="da,de,en", show_default=True, help="Languages, comma-separated.")
@click.option("--quick", is_flag=True, help="A smoke run of about 2 minutes: 8 utterances, 2 conditions.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default benchmarks/RESULTS.md).")
@click.pass_obj
def bench_speech(obj: Context, langs: str, quick: bool, output: Optional[Path]) -> None:
    """Recogniser on the held-out utterances as espeak-ng speech through G.711 and G.722, clean
    and noisy: word error rate, intent accuracy from speech next to text, intents on noise-only
    clips, recogniser CPU per second of speech."""
    from voicebot.bench.speech import run

    languages = [lang for part in langs.split(",") if part.strip() for lang in _languages(obj.inst, part.strip())]
    command = "voicebot bench speech" + (f" --lang {','.join(languages)}" if langs != "da,de,en" else "") \
        + (" --quick" if quick else "")
    _run_bench("Speech", command, None, output, lambda folder: run(obj.inst, languages, quick, click.echo))


@bench.command("handoff")
@click.option("--calls", default=20, show_default=True, type=click.IntRange(1), help="Calls per phase.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Build the installation here and keep it, with the bot's and the agent's logs.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default: benchmarks/RESULTS.md).")
def bench_handoff(calls: int, root: Optional[Path], output: Optional[Path]) -> None:
    """Agent queue over loopback SIP: handoff decision to the agent's phone ringing, and agent
    answer to two-way audio (a baresip agent, the Danish demo line)."""
    from voicebot.bench.handoff import run

    _run_bench("Agent handoff", f"voicebot bench handoff --calls {calls}", root, output,
               lambda folder: run(folder, calls, click.echo))


@bench.command("load")
@click.option("--chats", default=200, show_default=True, type=click.IntRange(1, 2000),
              help="Text clients sending turns at once.")
@click.option("--turns", default=10, show_default=True, type=click.IntRange(1, 50),
              help="Turns of the call measured alone and under load.")
@click.option("--turns-at-once", type=click.IntRange(1, 1000),
              help="Let this many text turns into the dialogue at once, none refused (to compare with the default).")
@click.option("--wait-for-calls", type=click.FloatRange(0, 30),
              help="Seconds a text turn waits at most for a call's turn (text.wait_for_calls_s; 0: calls not first).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Build the Korean test line here and keep it, with calls.json (default: a temporary folder).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default benchmarks/RESULTS.md).")
def bench_load(chats: int, turns: int, turns_at_once: Optional[int], wait_for_calls: Optional[float],
               root: Optional[Path], output: Optional[Path]) -> None:
    """A live call's turns and /health alone and while many chats and 1 MB bodies arrive: the
    calls must keep their latency (the Korean test line)."""
    from voicebot.bench.load import run

    text = {**({"turns_at_once": turns_at_once, "max_waiting": 10000} if turns_at_once else {}),
            **({"wait_for_calls_s": wait_for_calls} if wait_for_calls is not None else {})}
    options = (f" --turns-at-once {turns_at_once}" if turns_at_once else "") \
        + (f" --wait-for-calls {wait_for_calls:g}" if wait_for_calls is not None else "")
    section = "Load: chats and large bodies beside a call" + (f" ({options.strip()})" if options else "")
    command = f"voicebot bench load --chats {chats} --turns {turns}" + options
    _run_bench(section, command, root, output, lambda folder: run(folder, chats, turns, click.echo, text))


@bench.command("cluster")
@click.option("--workers-max", default=2, show_default=True, type=click.IntRange(1, 8),
              help="Clusters of 1 .. this many workers; the soak runs on the largest.")
@click.option("--max-rate", default=32, show_default=True, type=click.IntRange(1, 45),
              help="Most call attempts per second to try (the ramp doubles from 1, then narrows down).")
@click.option("--max-calls", default=16, show_default=True, type=click.IntRange(2, 120),
              help="Most calls at once to try (the ramp doubles from 2, then narrows down).")
@click.option("--soak-minutes", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Soak at half the capacity found, sampling memory each minute (0: none).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Build the Korean test line here and keep it, with the clusters' logs and SIPp's files "
                   "(default: a temporary folder).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default benchmarks/RESULTS.md).")
def bench_cluster(workers_max: int, max_rate: int, max_calls: int, soak_minutes: float, root: Optional[Path],
                  output: Optional[Path]) -> None:
    """The cluster (voicebot cluster up) with 1 and 2 workers, called by SIPp through the front:
    call attempts per second, most simultaneous calls with p95 turn latency <= 1 s, the 2:1
    ratio, and a soak watching every part's memory (Korean test line)."""
    from voicebot.bench.cluster import run

    _run_bench("Cluster", f"voicebot bench cluster --workers-max {workers_max} --max-rate {max_rate} "
               f"--max-calls {max_calls} --soak-minutes {soak_minutes:g}", root, output,
               lambda folder: run(folder, workers_max, max_rate, max_calls, soak_minutes, click.echo))


@bench.command("records")
@click.option("--calls", default=100_000, show_default=True, type=click.IntRange(1))
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366))
@click.option("--store-url", help="An empty database to fill (default: a temporary SQLite file).")
@click.option("--nlu", is_flag=True, help="Load the trained models so the inbox page shows its guesses (a minute more).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Results file (default benchmarks/RESULTS.md).")
def bench_records(calls: int, days: int, store_url: Optional[str], nlu: bool, output: Optional[Path]) -> None:
    """Report queries and dashboard pages with CALLS stored calls (100,000: about 8 minutes to generate)."""
    from voicebot.bench.records import main as run_records_bench

    run_records_bench(calls, store_url, days, output, click.echo, nlu)


@bench.command("vad")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Results file (default benchmarks/RESULTS.md).")
def bench_vad(output: Optional[Path]) -> None:
    """Voice activity detectors (energy, Silero) on the same telephone audio: spoken turns found,
    false starts on noise, hum, coughs, typing and hold music, CPU per 20 ms frame."""
    from voicebot.bench.vad import run

    _run_bench("VAD", "voicebot bench vad", None, output, lambda folder: run(click.echo))


def _run_bench(section: str, command: str, root: Optional[Path], output: Optional[Path],
               run: Callable[[Path], List[str]]) -> None:
    """Run a benchmark in root (default: a temporary folder), print its lines and write them to
    the results file's section."""
    import tempfile

    from voicebot.bench.results import record
    from voicebot.testing.lines import REPO

    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        lines = run((root or Path(scratch)).resolve())
    click.echo("\n".join(lines))
    path = record(output or REPO / "benchmarks" / "RESULTS.md", section, command, lines)
    click.echo(f"results written to {path}")


@main.group()
def rasa() -> None:
    """A language's Rasa as its own server, shared by several bot workers."""


@rasa.command("serve")
@click.option("--lang", required=True, help="The language whose model this server runs.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5005, show_default=True, type=click.IntRange(1, 65535))
@click.option("--redis", "redis_url", metavar="redis://HOST:PORT",
              help="Keep conversations and their locks in Redis, so several servers share them.")
@click.option("--actions-port", type=int, default=0, help="Port for its action server (0: any free port).")
@click.pass_obj
def rasa_serve(obj: Context, lang: str, host: str, port: int, redis_url: Optional[str], actions_port: int) -> None:
    """Serve LANG's model over HTTP for workers started with --rasa-server LANG=URL (the API
    wants the token in VOICEBOT_RASA_TOKEN, if that is set)."""
    from voicebot.dialogue import rasa_server

    _languages(obj.inst, lang)
    with _action_server(obj, actions_port, supervise=True) as (url, _):
        click.echo(f"Rasa for {lang} on http://{host}:{port}" + (f", conversations in {redis_url}" if redis_url else ""))
        rasa_server.serve(obj.inst, lang, host, port, url, redis_url, os.environ.get("VOICEBOT_RASA_TOKEN"))


@main.group()
def cluster() -> None:
    """Several bot workers behind one SIP front."""


def _address(value: str) -> tuple:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not HOST:PORT")
    return host, int(port)


def _trunk(value: str) -> str:
    from voicebot.cluster.kamailio import trunk_text

    try:
        return trunk_text(value)
    except ValueError as error:
        raise click.BadParameter(str(error))


@cluster.command("front")
@click.option("--worker", "workers", multiple=True, required=True, callback=lambda c, p, v: [_address(w) for w in v],
              help="A bot worker's SIP address, HOST:PORT (repeat for each worker).")
@click.option("--trunk", "trunks", multiple=True, default=("127.0.0.1",), show_default=True,
              callback=lambda c, p, v: [_trunk(t) for t in v],
              help="An address or CIDR network allowed to send calls (repeat for each trunk); "
                   "anyone else gets 403 to everything. 'tcp:ADDRESS' for a trunk that sends over TCP "
                   "only: UDP from its address, which anyone can forge, is then dropped.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where callers reach the front.")
@click.option("--port", default=5060, show_default=True, type=click.IntRange(1, 65535))
@click.option("--flood-requests", default=30, show_default=True, type=click.IntRange(5, 100000),
              help="Requests in 2 s from one address above which its requests are dropped (pike); "
                   "mind a busy trunk.")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("var/cluster"),
              show_default=True, help="Where the generated Kamailio configuration goes.")
@click.option("--check", is_flag=True, help="Only write and check the configuration.")
@click.pass_obj
def cluster_front(obj: Context, workers: list, trunks: list, host: str, port: int, flood_requests: int,
                  folder: Path, check: bool) -> None:
    """Run Kamailio in front of the workers: calls from the trunks to the lines' numbers spread
    over the workers that answer OPTIONS, a worker that fails or does not answer is skipped,
    floods from one address are dropped, everything else gets one refusal, and the workers'
    addresses are hidden from callers."""
    import shutil
    import subprocess

    from voicebot.cluster.kamailio import write_front

    if shutil.which("kamailio") is None:
        raise click.ClickException("kamailio is not installed: install the Debian package 'kamailio'")
    numbers = [n for tenant in obj.inst.tenants.values() for n in tenant.numbers]
    config = write_front(folder.resolve(), host, port, workers, numbers, trunks, flood_requests=flood_requests)
    checked = subprocess.run(["kamailio", "-c", "-f", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise click.ClickException(f"Kamailio refused {config}:\n{checked.stderr[-2000:]}")
    click.echo(f"front on sip:{host}:{port} for " + ", ".join(f"{h}:{p}" for h, p in workers)
               + f"; trunks {', '.join(trunks)} ({config})")
    if not check:
        os.execvp("kamailio", ["kamailio", "-DD", "-E", "-f", str(config)])


@cluster.command("up")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 32))
@click.option("--host", default="127.0.0.1", show_default=True, help="Where every part listens.")
@click.option("--port", default=5060, show_default=True, type=click.IntRange(1, 65535), help="The front's SIP port.")
@click.option("--redis", "redis_url", metavar="redis://HOST:PORT", help="A Redis to use (default: start one).")
@click.option("--trunk", "trunks", multiple=True, help="Passed to the front (default there: 127.0.0.1).")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("var/cluster"),
              show_default=True, help="Logs, the front's configuration and cluster.json.")
@click.pass_obj
def cluster_up(obj: Context, workers: int, host: str, port: int, redis_url: Optional[str], trunks: tuple,
               folder: Path) -> None:
    """Run a whole cluster on this machine: Redis, a Rasa server per language, WORKERS bot
    workers and the Kamailio front; parts that exit are started again. Records go to the
    configured store_url (use PostgreSQL beyond one machine)."""
    from voicebot.cluster.up import Cluster

    try:
        Cluster(obj.inst, workers, host, port, folder.resolve(), redis_url, trunks).run(report=click.echo)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None


@main.group()
def users() -> None:
    """Dashboard logins and API tokens."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["operator", "trainer", "agent", "admin"]))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 10 characters (asked for when not given; or pipe it in on standard input).")
@click.option("--line", "lines", multiple=True, metavar="LINE",
              help="A line whose topics, answers and models the login may change (repeat for more; "
                   "default: every line).")
@click.pass_obj
def users_add(obj: Context, name: str, role: str, password: str, lines: Tuple[str, ...]) -> None:
    """Add a login, or set a login's role, lines and password (its sessions end)."""
    from voicebot.dashboard.auth import Logins

    for line_id in lines:
        if line_id not in obj.inst.tenants:
            raise click.BadParameter(f"no line {line_id!r}; configured: {', '.join(obj.inst.tenants)}",
                                     param_hint="--line")
    try:
        Logins(_records(obj.inst).session).add_user(name, role, password, list(lines) or None)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--password" if "password" in str(error) else "--role")
    click.echo(f"{name} can sign in at /dashboard as {role}" + (f" for {', '.join(lines)}" if lines else ""))


@users.command("token")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["operator", "trainer", "agent", "admin", "channel"]),
              help="channel: a front end that carries text conversations, nothing else.")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 3650), help="It stops working after.")
@click.pass_obj
def users_token(obj: Context, name: str, role: str, days: int) -> None:
    """Print a new API token for a machine (a PBX, a wallboard, a chat front end); the JSON API
    wants it as "Authorization: Bearer TOKEN". A new token of the same name replaces the old."""
    from voicebot.dashboard.auth import Logins

    try:
        token = Logins(_records(obj.inst).session).issue_token(name, role, days)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME")
    click.echo(token)


@users.command("remove")
@click.argument("name")
@click.pass_obj
def users_remove(obj: Context, name: str) -> None:
    """Remove a login or an API token; its sessions end at once."""
    from voicebot.dashboard.auth import Logins

    if not Logins(_records(obj.inst).session).remove(name):
        raise click.ClickException(f"no login or token named {name!r}")
    click.echo(f"{name} removed")


@users.command("list")
@click.pass_obj
def users_list(obj: Context) -> None:
    from voicebot.dashboard.auth import NO_PASSWORD, Logins

    for user in Logins(_records(obj.inst).session).users():
        click.echo(f"{user.name}\t{user.role}" + (f"\tlines {user.lines}" if user.lines else "")
                   + ("\t(API token)" if user.password_hash == NO_PASSWORD else ""))


@main.group()
def records() -> None:
    """Call records: data subject requests and the retention purge."""


@records.command("export")
@click.argument("call_id")
@click.pass_obj
def records_export(obj: Context, call_id: str) -> None:
    """Print everything stored about one call or conversation, as JSON."""
    data = _records(obj.inst).export(call_id)
    if data is None:
        raise click.ClickException(f"no call {call_id!r} in the store")
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@records.command("delete")
@click.argument("call_id")
@click.pass_obj
def records_delete(obj: Context, call_id: str) -> None:
    """Delete one call or conversation and everything stored with it."""
    deleted = _records(obj.inst).delete(call_id)
    if not deleted["calls"]:
        raise click.ClickException(f"no call {call_id!r} in the store")
    click.echo("deleted " + ", ".join(f"{n} {table}" for table, n in deleted.items()))


@records.command("purge")
@click.pass_obj
def records_purge(obj: Context) -> None:
    """Delete records older than each line's retention_days (`voicebot serve` does it hourly)."""
    for tenant, count in _records(obj.inst).purge_expired(obj.inst.tenants.values()).items():
        click.echo(f"{tenant}: {count} calls deleted")


@main.command()
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
              help="From this day (UTC), e.g. 2026-11-01.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), help="Up to this day (default: now).")
@click.option("--line", "line_id", help="Only this line (tenant) id.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_obj
def report(obj: Context, since, until, line_id: Optional[str], as_json: bool) -> None:
    """Containment, handoff rate by reason and topic, service level and abandonment."""
    from voicebot.store.report import format_report

    if line_id:
        obj.inst.tenant(line_id)
    service_levels = {q: queue.service_level_s for q, queue in obj.inst.settings.queues.items()}
    figures = _records(obj.inst).report(since, until, line_id, service_levels)
    click.echo(json.dumps(figures.as_dict(), indent=2) if as_json else format_report(figures))


if __name__ == "__main__":
    main()
