"""`voicebot bench ...`: the benchmarks (in voicebot/bench), each writing its section of
benchmarks/RESULTS.md."""

from pathlib import Path
from typing import Callable, List, Optional

import click

from voicebot.cli import Context, main
from voicebot.cli.common import _languages


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


@bench.command("frames")
@click.option("--calls", default=4, show_default=True, type=click.IntRange(1, 4),
              help="Calls at once (one bot process holds 4).")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1, 20),
              help="Rounds of each way, alternating.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Build the Korean test line here and keep the bots' logs (default: a temporary folder).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default benchmarks/RESULTS.md).")
def bench_frames(calls: int, rounds: int, root: Optional[Path], output: Optional[Path]) -> None:
    """The bot's audio at the caller, calls at once, with Rasa in the bot's process and in a
    Rasa server of its own (about 2 minutes a round)."""
    from voicebot.bench.frames import run

    command = f"voicebot bench frames --calls {calls} --rounds {rounds}"
    _run_bench("Frames under load", command, root, output, lambda folder: run(folder, calls, rounds, click.echo))


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
@click.option("--workers-min", default=1, show_default=True, type=click.IntRange(1, 8),
              help="The smallest cluster to measure (the ratio to 1 worker needs 1).")
@click.option("--workers-max", default=2, show_default=True, type=click.IntRange(1, 8),
              help="Clusters of --workers-min .. this many workers; the soak runs on the largest.")
@click.option("--max-rate", default=32, show_default=True, type=click.IntRange(1, 45),
              help="Most call attempts per second to try (the ramp doubles from 1, then narrows down).")
@click.option("--max-calls", default=16, show_default=True, type=click.IntRange(2, 120),
              help="Most calls at once to try (the ramp doubles from 2, then narrows down).")
@click.option("--soak-minutes", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Soak at half the capacity found, sampling memory each minute (0: none).")
@click.option("--line", "line_name", type=click.Choice(["korean", "demo-city"]), default="korean", show_default=True,
              help="The Korean test line (Vosk), or Demo City's English line (Whisper; capacity only).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Build the line's installation here and keep it, with the clusters' logs and SIPp's files "
                   "(default: a temporary folder).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default benchmarks/RESULTS.md).")
def bench_cluster(workers_min: int, workers_max: int, max_rate: int, max_calls: int, soak_minutes: float,
                  line_name: str, root: Optional[Path], output: Optional[Path]) -> None:
    """The cluster (voicebot cluster up) with 1, 2 ... workers, called through the front: worker
    start-up, call attempts per second (SIPp), most simultaneous calls with p95 turn latency <= 1 s
    (Whisper: 1.5 s) and < 1% of frames late or missing at the callers (test phones), the ratio to
    1 worker, and a soak watching every part's memory (Korean test line)."""
    from voicebot.bench.call import LINES
    from voicebot.bench.cluster import run

    if workers_min > workers_max:
        raise click.BadParameter("must not be above --workers-max", param_hint="--workers-min")
    korean = line_name == "korean"  # SIPp's rates and soak only there
    command = (f"voicebot bench cluster --workers-min {workers_min} --workers-max {workers_max} --max-calls {max_calls} "
               + (f"--max-rate {max_rate} --soak-minutes {soak_minutes:g}" if korean else f"--line {line_name}"))
    _run_bench("Cluster" if korean else f"Cluster: {line_name}", command, root, output,
               lambda folder: run(folder, workers_max, max_rate, max_calls, soak_minutes, click.echo, workers_min,
                                  LINES[line_name]))


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


@bench.command("startup")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Results file (default benchmarks/RESULTS.md).")
def bench_startup(output: Optional[Path]) -> None:
    """A bot with three languages: time from `voicebot serve` to /health and to the first answered
    call, its memory, and the time and memory of each part (Rasa's import, each model's load)."""
    from voicebot.bench.startup import run

    _run_bench("Start-up", "voicebot bench startup", None, output, lambda folder: run(folder, click.echo))


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
