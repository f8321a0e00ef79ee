"""`voicebot bench startup`: how long a bot with three languages takes from `voicebot serve`
to its first answered call, its memory then, and where the time goes.

- End to end: `voicebot serve` with three demo lines (English, Danish, German; their trained
  models), a test phone already started; as soon as /health answers, it dials. Time to health,
  to the first call answered (its media up), and the bot's resident memory after that call.
- Per part, in a fresh process of its own: importing Rasa (and TensorFlow), then for each
  language loading its model and its first parse, with the memory each adds; once with Rasa's
  own Agent.load and once as the bot loads (voicebot.dialogue.quick_load), in the same run.
  What the end-to-end time has beyond those parts is the rest: the action server, speech
  models, the SIP stack and prompts.
"""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Sequence

LINES = ("demo-city", "demo-kommune", "stadt-kreis")  # en, da, de
TARGET_FIRST_CALL_S = 15

# Run in a child process: prints one JSON object.
PARTS = """
import asyncio, json, sys, time
def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:")) / 1024
started = time.monotonic()
from rasa.core.agent import Agent
from voicebot.config import load_installation
from voicebot.dialogue.quick_load import use_quick_load
from voicebot.dialogue.training import model_path
parts = {"import_s": time.monotonic() - started, "import_mb": rss_mb(), "languages": []}
if sys.argv[2] == "quick":
    use_quick_load()
inst = load_installation()
for lang in json.loads(sys.argv[1]):
    before, memory = time.monotonic(), rss_mb()
    agent = Agent.load(str(model_path(inst, lang)))
    loaded = time.monotonic()
    asyncio.run(agent.parse_message("hello"))
    parts["languages"].append({"lang": lang, "load_s": loaded - before, "first_parse_s": time.monotonic() - loaded,
                               "mb": rss_mb() - memory})
print(json.dumps(parts))
"""


def run(root: Path, say: Callable[[str], None], lines: Sequence[str] = LINES) -> List[str]:
    from voicebot.bench.call import BotProcess
    from voicebot.config import load_installation
    from voicebot.testing.lines import REPO
    from voicebot.testing.phone import TestPhone, parse_turns

    inst = load_installation(REPO / "voicebot.yml")
    languages = [inst.tenant(line).language for line in lines]
    say(f"end to end: voicebot serve with {', '.join(lines)} ({', '.join(languages)})")
    with TestPhone() as phone:
        turns = parse_turns(["--wait", "1"], languages[0])
        spawned = time.monotonic()
        bot = BotProcess(REPO / "voicebot.yml", root / "startup.sqlite3", root / "bot.log",
                         clock="2026-11-24T10:00:00+00:00", number=inst.tenant(lines[0]).numbers[0],
                         extra_args=[arg for line in lines for arg in ("--line", line)])
        try:
            bot.wait_ready(timeout=300)
            healthy = time.monotonic() - spawned
            dialled = time.monotonic()
            timeline = phone.place(bot.uri, turns, timeout=60)
            if not timeline.get("connected"):
                raise RuntimeError(f"the first call was not answered: {timeline}; see {bot.log}")
            answered = dialled + timeline["connect_ms"] / 1000 - spawned
            memory = bot.rss_mb()
        finally:
            bot.stop()
    parts = {way: measure_parts(languages, way, say) for way in ("rasa", "quick")}
    quick = parts["quick"]
    loading = sum(p["load_s"] + p["first_parse_s"] for p in quick["languages"])
    report = [f"voicebot serve, lines {', '.join(lines)} (languages {', '.join(languages)}), models trained already:",
              f"  /health answers after          {healthy:6.1f} s",
              f"  first call answered after      {answered:6.1f} s   (target <= {TARGET_FIRST_CALL_S} s: "
              f"{'met' if answered <= TARGET_FIRST_CALL_S else 'NOT met'})",
              f"  resident memory then           {memory:6.0f} MB  (bot and action server)",
              "Where the time goes (each part measured alone, one process each way):",
              f"  import Rasa and TensorFlow     {quick['import_s']:6.1f} s   {quick['import_mb']:6.0f} MB",
              "  model load + first parse       Rasa's load     the bot's (voicebot/dialogue/quick_load.py)"]
    for rasa, ours in zip(parts["rasa"]["languages"], quick["languages"]):
        report.append(f"  {ours['lang']}:{'':28}{rasa['load_s']:5.1f} s + {rasa['first_parse_s']:.2f} s"
                      f"   {ours['load_s']:5.1f} s + {ours['first_parse_s']:.2f} s   +{ours['mb']:4.0f} MB")
    report.append(f"  everything else (SIP, speech models, action server, prompts) about "
                  f"{max(0.0, answered - quick['import_s'] - loading):.1f} s")
    return report


def measure_parts(languages: Sequence[str], way: str, say: Callable[[str], None]) -> dict:
    """Rasa's import, then each language's model load ("rasa": Rasa's own; "quick": the bot's)
    and first parse, in a fresh process."""
    from voicebot.testing.lines import REPO

    say(f"per part, {way} load, in a process of its own")
    done = subprocess.run([sys.executable, "-c", PARTS, json.dumps(languages), way], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"measuring the parts failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
