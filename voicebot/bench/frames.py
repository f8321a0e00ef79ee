"""`voicebot bench frames`: the bot's audio at the caller with several calls at once, with the
long-lived objects frozen out of Python's full garbage collections (voicebot/memory.py) and
without (VOICEBOT_GC_FREEZE=0), in alternating rounds on one machine, so that its noise falls
on both alike. A frame is bad when the caller's jitter buffer had none to play, lost one or
dropped one: the gaps a caller hears."""

from pathlib import Path
from typing import Callable, Dict, List

from voicebot.bench.call import LINES, BotProcess, Level, pct, run_level
from voicebot.testing import korean

MODES = {"frozen": {}, "not frozen": {"VOICEBOT_GC_FREEZE": "0"}}


def run(root: Path, calls: int, rounds: int, say: Callable[[str], None]) -> List[str]:
    root.mkdir(parents=True, exist_ok=True)
    line = LINES["korean"]
    config = korean.build(root)
    levels: Dict[str, List[Level]] = {mode: [] for mode in MODES}
    for round_ in range(1, rounds + 1):
        for mode, env in MODES.items():
            bot = BotProcess(config, root / "frames.sqlite3", root / f"bot-{round_}-{mode.replace(' ', '-')}.log",
                             line.clock, env=env)
            try:
                bot.wait_ready()
                levels[mode].append(run_level(bot, line, calls, []))
            finally:
                bot.stop()
            level = levels[mode][-1]
            say(f"round {round_}, {mode}: {level.bad_frames} of {level.expected_frames} frames bad")
    lines = [f"{line.title}, {line.recogniser}: {calls} calls at once, each of 2 turns heard to the end; "
             f"{rounds} rounds, the two ways alternating, each on a bot of its own",
             f"  {'':<12}{'bad frames':<24}{'per round':<28}turn latency p50 / p95"]
    for mode, runs in levels.items():
        bad, expected = sum(r.bad_frames for r in runs), sum(r.expected_frames for r in runs)
        latencies = [x for r in runs for x in r.latencies]
        per_round = ", ".join(f"{r.bad_share:.2%}" for r in runs)
        lines.append(f"  {mode:<12}{f'{bad} of {expected} ({bad / max(1, expected):.3%})':<24}{per_round:<28}"
                     f"{pct(latencies, 50):.0f} / {pct(latencies, 95):.0f} ms")
    frozen = levels["frozen"]
    share = sum(r.bad_frames for r in frozen) / max(1, sum(r.expected_frames for r in frozen))
    return lines + ["", "target:", f"  < 0.1% of frames late or missing at {calls} calls per worker: "
                    f"{'met' if share < 0.001 else 'NOT met'} ({share:.3%}, frozen)"]
