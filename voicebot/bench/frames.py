"""`voicebot bench frames`: the bot's audio at the caller with several calls at once, with Rasa
in the bot's process (`voicebot serve` alone) and in a process of its own (`voicebot rasa serve`,
the bot started with --rasa-server, as `voicebot cluster up` runs its workers), in alternating
rounds on one machine, so that its noise falls on both alike. A frame is bad when the caller's
jitter buffer had none to play, lost one or dropped one: the gaps a caller hears. The callers'
own audio clock is counted apart (short): frames it did not fetch in time are the caller's."""

import os
import subprocess
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Sequence

from voicebot import procs
from voicebot.bench.call import CLEAN_FRAMES, LINES, BotProcess, Level, pct, run_level
from voicebot.dialogue.action_server import is_healthy
from voicebot.ports import free_port
from voicebot.testing import korean

SERVER = "Rasa server"
MODES = ("Rasa in the bot", SERVER)
START_TIMEOUT_S = 240


@contextmanager
def rasa_server(config: Path, log: Path) -> Iterator[Sequence[str]]:
    """`voicebot rasa serve` for the Korean line; yields the bot's arguments to use it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = procs.start(
            [sys.executable, "-m", "voicebot.cli", "rasa", "serve", "--lang", "ko", "--port", str(port)],
            env={**os.environ, "VOICEBOT_CONFIG": str(config)}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not is_healthy(url, timeout=2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"voicebot rasa serve did not come up; see {log}")
            time.sleep(0.5)
        yield ["--rasa-server", f"ko={url}"]
    finally:
        procs.stop(process)


def run_round(root: Path, config: Path, round_: int, mode: str, calls: int) -> Level:
    line = LINES["korean"]
    name = f"{round_}-{'server' if mode == SERVER else 'in-bot'}"
    with (rasa_server(config, root / f"rasa-{name}.log") if mode == SERVER else nullcontext([])) as args:
        bot = BotProcess(config, root / "frames.sqlite3", root / f"bot-{name}.log", line.clock, extra_args=args)
        try:
            bot.wait_ready()
            return run_level(bot, line, calls, [])
        finally:
            bot.stop()


def run(root: Path, calls: int, rounds: int, say: Callable[[str], None]) -> List[str]:
    root.mkdir(parents=True, exist_ok=True)
    line = LINES["korean"]
    config = korean.build(root)
    levels: Dict[str, List[Level]] = {mode: [] for mode in MODES}
    for round_ in range(1, rounds + 1):
        for mode in MODES:
            level = run_round(root, config, round_, mode, calls)
            levels[mode].append(level)
            say(f"round {round_}, {mode}: {level.bad_frames} of {level.expected_frames} frames bad")
    lines = [f"{line.title}, {line.recogniser}: {calls} calls at once, each of 2 turns heard to the end; "
             f"{rounds} rounds, the two ways alternating, each on a bot of its own",
             f"  {'':<17}{'bad frames':<24}{'per round':<28}{'caller short':<14}turn latency p50 / p95"]
    targets = ["", "target:"]
    for mode, runs in levels.items():
        bad, expected = sum(r.bad_frames for r in runs), sum(r.expected_frames for r in runs)
        share = bad / max(1, expected)
        short = sum(r.caller_short_frames for r in runs)
        latencies = [x for r in runs for x in r.latencies]
        per_round = ", ".join(f"{r.bad_share:.2%}" for r in runs)
        lines.append(f"  {mode:<17}{f'{bad} of {expected} ({share:.3%})':<24}{per_round:<28}"
                     f"{short / max(1, expected):<14.3%}{pct(latencies, 50):.0f} / {pct(latencies, 95):.0f} ms")
        targets.append(f"  < {CLEAN_FRAMES:.1%} of frames late or missing at {calls} calls per worker, {mode}: "
                       f"{'met' if share < CLEAN_FRAMES else 'NOT met'} ({share:.3%})")
    return lines + targets
