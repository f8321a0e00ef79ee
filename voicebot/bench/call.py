"""`voicebot bench call`: turn latency, barge-in, capacity and cost per call of the phone line.

Everything is real and on loopback: a `voicebot serve` subprocess answers on one line, and
`voicebot call` processes dial it over SIP and RTP (one pjsua2 endpoint per process, which
holds at most caller.MAX_CALLS calls). The caller measures from the end of its speech to the
bot's first audio it hears; the bot's call records (GET /calls/<id>) split that time up.
Two lines (LINES): the Korean test line (voicebot/testing/korean.py; Korean is the one language
with a Vosk model here: the streaming path), and the English demo line demo-city on the
bundled Whisper base model (the segmented path, decoded on the line's pool from the caller's
first pause), served from the project's own voicebot.yml with only that line loaded.

- Latency: calls one at a time. The answer to "opening hours" lasts about 13 s, so waiting for
  each answer would make 50 turns take a quarter of an hour: the caller instead speaks each turn
  BARGE_IN_AFTER_S into the bot's speech, so every turn also measures barge-in.
- End of turn: the latency phase, and calls whose turns pause mid-sentence (the line's `paused`
  turns), on three bots: the line as configured (routine questions answered early, taken back
  if the caller goes on), turns judged by the words but answered only once they end
  (answer_early_ms 0), and turns ended by the fixed hangover alone: how much sooner each
  answers, and whether it cuts off more callers who pause. Capacity is measured on the first,
  whose callers, hearing each answer to the end before they speak, also show how much of the
  bot they heard over their own words (early answers they went on after).
- Capacity: levels of 2, 4, 8 ... calls at once, each call hearing its answers to the end; once
  a level fails, the gap to the last pass is halved down to 2 calls. A level fails on p95 turn
  latency above the line's limit (1 s on Vosk, 1.5 s on Whisper), on 1% or more of the bot's
  frames late or missing at the caller (its jitter buffer had none to play, lost one or dropped
  one), or on a call refused or cut short.
  The callers share the cores with the bot, so the figures are on the safe side.
- Cost: the bot's CPU time (with its action server and espeak-ng runs) per second of call, and
  its resident memory at the level's peak over idle, per call.
"""

import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import yaml

from voicebot import procs
from voicebot.dashboard.auth import harness_token
from voicebot.telephony.media import FRAME_MS
from voicebot.testing import korean
from voicebot.testing.lines import REPO
from voicebot.testing.phone import BARGE_IN_AFTER_S, MAX_CALLS, PAUSE_S, timeline_from_output
from voicebot.timeline import frames_late_or_missing, without_taken_back

CLOCK = "2026-11-24T10:00:00+09:00"  # a Tuesday morning in Seoul: the office is open
INTENT = "opening_hours"  # what every test turn asks about
TURNS_PER_CALL = 10  # in the latency phase
CAPACITY_TURNS = 2  # per call in the capacity phase
CAPACITY_STEP = 2
STAGGER_WINDOW_S = 5.0  # a level's calls start spread over this, so that turns do not all coincide
MAX_P95_MS = 1000
MAX_BAD_FRAMES = 0.01
CLEAN_FRAMES = 0.001  # issue 21: the share late or missing at the callers with every worker full
TARGET_CALLS = 10
PAUSED_CALLS = 4  # calls of the line's paused turns, per way of ending a turn
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class BenchLine:
    """A line the benchmark can call, and what it expects of it."""
    name: str  # what --line takes
    title: str
    recogniser: str
    caller_lang: str  # espeak-ng voice of the test caller's turns
    question: str  # every turn asks it: a routine answer, no handoff
    intent: str  # what the bot should take the question for
    clock: str  # when the calls happen (VOICEBOT_CLOCK)
    max_p95_ms: int  # a capacity level passes at or below it
    target_p50_ms: int
    paused: Tuple[str, ...] = ()  # the question with a caller's pause (" ... ") mid-sentence


LINES = {
    "korean": BenchLine("korean", "Korean test line", "Vosk (streaming)", "ko", korean.ASK_OPENING_HOURS,
                        INTENT, CLOCK, MAX_P95_MS, 300,
                        ("영업 시간 ... 알려 주세요",)),
    # "What are your opening hours?" comes out of Whisper word for word through G.722 (checked);
    # a misheard turn would go to the fallback, and two of those to a person, ending the test.
    "demo-city": BenchLine("demo-city", "Demo City line (English)", "Whisper base (faster-whisper, per turn)", "en-gb",
                           "what are your opening hours", INTENT,
                           "2026-11-24T10:00:00+00:00", 1500, 900,  # a Tuesday morning in London
                           ("I would like to ... know your opening hours", "are you open on ... Saturday")),
}


def prepare(line: BenchLine, root: Path) -> Tuple[Path, str, List[str]]:
    """The line's settings file, the number to dial and `voicebot serve`'s extra arguments.
    The Korean line's installation is the benchmark's own (under root); demo-city's is the
    project's."""
    if line.name == "korean":
        return korean.build(root), korean.NUMBER, []
    from voicebot.config import load_installation

    config = REPO / "voicebot.yml"  # the demo lines with their trained models and prompts
    return config, load_installation(config).tenant(line.name).numbers[0], ["--line", line.name]


def linked_installation(config: Path, folder: Path, change: Callable[[dict], None], lines: Sequence[str] = ()) -> Path:
    """The installation of `config` in `folder`: links to everything beside its settings file, and
    a settings file of its own, changed by `change`; with `lines`, its tenants are those lines only."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    change(settings)
    if lines:
        tenants, source = folder / "tenants-served", config.parent / settings.get("tenants_dir", "tenants")
        tenants.mkdir(exist_ok=True)
        for line in lines:
            if not (tenants / f"{line}.yml").is_symlink():
                (tenants / f"{line}.yml").symlink_to(source / f"{line}.yml")
        settings["tenants_dir"] = tenants.name
    for entry in config.parent.iterdir():
        if entry != folder and entry.name != config.name and not (folder / entry.name).is_symlink():
            (folder / entry.name).symlink_to(entry)
    linked = folder / config.name
    linked.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return linked


def with_end_of_turn(config: Path, root: Path, name: str, **end_of_turn) -> Path:
    """The same installation with other audio.end_of_turn settings: listen_to_words False (the
    fixed hangover, as before the words were judged), answer_early_ms 0 (no early answers)."""
    def change(settings: dict) -> None:
        audio = settings.setdefault("audio", {})
        audio["end_of_turn"] = {**audio.get("end_of_turn", {}), **end_of_turn}
    return linked_installation(config, root / name, change)


class BotProcess:
    """`voicebot serve` on free loopback ports (by default the Korean line at CLOCK); its output
    goes to a log."""

    def __init__(self, config: Path, store: Path, log: Path, clock: str = CLOCK,
                 number: str = korean.NUMBER, extra_args: Sequence[str] = ()):
        from voicebot.ports import free_port

        self.url = f"http://127.0.0.1:{free_port()}"
        self.sip_port = free_port()
        self.log, self.number = log, number
        env = {**os.environ, "VOICEBOT_CONFIG": str(config), "VOICEBOT_CLOCK": clock,
               "VOICEBOT_STORE_URL": f"sqlite:///{store}"}
        self.token = harness_token(env["VOICEBOT_STORE_URL"])
        with log.open("wb") as out:
            self.process = procs.start(
                [sys.executable, "-m", "voicebot.cli", "serve", "--port", self.url.rsplit(":", 1)[1],
                 "--actions-port", "0", "--sip-port", str(self.sip_port), *extra_args],
                env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(OSError):
                if self.get("/health")[0] == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"voicebot serve did not come up; see {self.log}")

    @property
    def uri(self) -> str:
        return f"sip:{self.number}@127.0.0.1:{self.sip_port}"

    def get(self, path: str) -> Tuple[int, dict]:
        try:
            request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, {}

    def call_record(self, call_id: str) -> Optional[dict]:
        """The bot's record of a call once the bot has closed it too (None if it does not)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, record = self.get(f"/calls/{urllib.parse.quote(call_id, safe='')}")
            if status == 200 and record["state"] in ("ended", "transferred"):
                return record
            time.sleep(0.2)
        return None

    def cpu_seconds(self) -> float:
        """CPU time of the bot, its action server and the espeak-ng runs it waited for."""
        return tree_cpu_seconds(self.process.pid)

    def rss_mb(self) -> float:
        """Resident memory of the bot and its action server."""
        total_kb = 0
        for pid in process_tree(self.process.pid):
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                total_kb += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return total_kb / 1024

    def stop(self) -> None:
        procs.stop(self.process)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process, its children and the children they waited for."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / CLOCK_TICKS


def process_tree(pid: int) -> List[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    tree = [pid]
    for parent in tree:  # grows while it is walked: children, then theirs
        tree += [child for child, of in parents.items() if of == parent]
    return tree


@contextlib.contextmanager
def peak_rss(bot: BotProcess) -> Iterator[List[float]]:
    """Samples the bot's resident memory twice a second; the list holds the peak so far."""
    peak, stop = [bot.rss_mb()], threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            peak[0] = max(peak[0], bot.rss_mb())
    sampler = threading.Thread(target=sample, name="rss", daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


def place_calls(uri: str, turns: List[str], calls: int, timeout: float, lang: str = "ko",
                jitter_floors: Sequence[Optional[int]] = (None,)) -> List[dict]:
    """`calls` calls at once playing `turns` (voicebot call arguments), from as few `voicebot
    call` processes as hold them, but one per jitter buffer floor (process i's phone has
    jitter_floors[i % len]; None: pjsua's own); their starts spread evenly over STAGGER_WINDOW_S."""
    processes = max(min(calls, len(jitter_floors)), math.ceil(calls / MAX_CALLS))
    gap = STAGGER_WINDOW_S / calls
    callers = []
    for index in range(processes):
        time.sleep(gap if index else 0)
        share = len(range(index, calls, processes))  # calls index, index + processes, ...
        floor = jitter_floors[index % len(jitter_floors)]
        callers.append(subprocess.Popen(
            [sys.executable, "-m", "voicebot.cli", "call", uri, "--lang", lang, "--json", "--timeout", str(timeout),
             "--calls", str(share), "--concurrent", str(share), "--stagger", str(gap * processes),
             *(["--jitter-floor-ms", str(floor)] if floor is not None else []), *turns],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    return [timeline for caller in callers for timeline in timelines_of(caller)]


def timelines_of(caller: subprocess.Popen) -> List[dict]:
    out, _ = caller.communicate()
    data = timeline_from_output(out)
    if data is None:
        raise RuntimeError(f"voicebot call printed no timeline: {out[-2000:]}")
    return data if isinstance(data, list) else [data]


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # callers that have exited
    return usage.ru_utime + usage.ru_stime


def keep(raw: List[dict], phase: str, timelines: List[dict], bot: BotProcess) -> List[Optional[dict]]:
    """The bot's records of these calls; both views go to `raw` too."""
    records = [bot.call_record(t["call_id"]) if t.get("call_id") else None for t in timelines]
    raw += [{"phase": phase, "caller": t, "bot": r} for t, r in zip(timelines, records)]
    return records


# -- joining the caller's and the bot's views

@dataclass
class TurnTimes:
    latency_ms: Optional[float]  # caller: end of its speech to the bot's first audio heard
    bot: Optional[dict] = None  # bot: end_of_speech_ms, asr_ms, dialogue_ms, turn_ms


def bot_turns(record: dict) -> List[dict]:
    """The bot's side of each caller utterance it found words in: heard, answered, playing (an
    early answer taken back is no turn of its own: the caller went on in that turn)."""
    turns: List[dict] = []
    for event in without_taken_back(record["events"]):
        if event["event"] == "heard" and event.get("text"):
            turns.append({"end_of_speech_ms": event["end_of_speech_ms"], "asr_ms": event["asr_ms"],
                          "asr_busy_ms": event.get("asr_busy_ms", 0), "turn_end": event.get("turn_end", "silence")})
        elif event["event"] == "bot" and turns:
            turns[-1]["dialogue_ms"] = event["dialogue_ms"]
        elif event["event"] == "playing" and "turn_ms" in event and turns:
            turns[-1]["turn_ms"] = event["turn_ms"]
    return turns


def join_call(timeline: dict, record: Optional[dict]) -> Tuple[List[TurnTimes], List[int]]:
    """Per caller turn, both views (the bot's only when its turns match the caller's one to
    one); and the bot's barge-in stop times."""
    caller = [TurnTimes(t["latency_ms"]) for t in timeline["turns"]]
    if record is None:
        return caller, []
    bot = bot_turns(record)
    if len(bot) == len(caller) and all("turn_ms" in b for b in bot):
        for turn, side in zip(caller, bot):
            turn.bot = side
    return caller, [e["stop_ms"] for e in record["events"] if e["event"] == "barge_in"]


# -- figures

def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))] if ordered else math.nan


def row(label: str, values: Sequence[float], note: str = "") -> str:
    figures = "".join(f"{pct(values, q):>7.0f}" for q in (50, 95, 100)) if values else "      -" * 3
    return f"  {label:<34}{figures}   n={len(values)}{'  ' + note if note else ''}"


def latency_lines(turns: List[TurnTimes], stops: List[int], stopped_after: List[int], hangover_ms: int) -> List[str]:
    heard = [t.latency_ms for t in turns if t.latency_ms is not None]
    joined = [t for t in turns if t.bot and t.latency_ms is not None]

    def part(key: str) -> List[float]:
        return [t.bot[key] for t in joined]
    tts = [t.bot["turn_ms"] - t.bot["end_of_speech_ms"] - t.bot["asr_ms"] - t.bot["dialogue_ms"] for t in joined]
    return [
        f"  {'(ms)':<34}{'p50':>7}{'p95':>7}{'max':>7}",
        row("turn latency at the caller", heard, f"unanswered {len(turns) - len(heard)}"),
        row("  end-of-speech detection", part("end_of_speech_ms"), f"hangover {hangover_ms} ms"),
        row("  ASR final", part("asr_ms")),
        row("  NLU and dialogue", part("dialogue_ms")),
        row("  TTS to first audio queued", tts, "the answer is in the prompt cache after the first"),
        row("  RTP, jitter buffers, playout", [t.latency_ms - t.bot["turn_ms"] for t in joined]),
        row("  bot turn (the four above)", part("turn_ms")),
        row("recogniser busy on the turn", part("asr_busy_ms"), "decoding starts at the caller's first pause"),
        row("barge-in: bot stopped playback", stops, "from speech start detected"),
        row("barge-in: caller heard the bot", stopped_after, "from the caller's first word"),
    ]


@dataclass
class Level:
    calls: int
    latencies: List[float]  # unanswered turns count as infinitely late
    bad_frames: int
    expected_frames: int
    caller_short_frames: int  # frames the caller's own audio clock missed
    refused: List[str]  # why calls were not answered
    cut_short: int  # calls answered that ended before their last turn
    wrong_answers: int  # turns the bot took for something other than the opening hours
    bot_cpu_s: float
    asr_busy_s: float  # the recogniser's time on the level's turns
    call_s: float
    wall_s: float
    caller_cpu_s: float
    peak_rss_mb: float
    max_p95_ms: float = MAX_P95_MS
    over_caller_ms: Tuple[int, ...] = ()  # per turn: the bot heard over the caller's own words

    @property
    def bad_share(self) -> float:
        return self.bad_frames / max(1, self.expected_frames)

    @property
    def passed(self) -> bool:
        return (not self.refused and not self.cut_short and pct(self.latencies, 95) <= self.max_p95_ms
                and self.bad_share < MAX_BAD_FRAMES)

    @property
    def cpu_per_call(self) -> float:
        """Share of one core per call: bot CPU seconds per second of call."""
        return self.bot_cpu_s / max(self.call_s, 1e-9)


def frame_counts(timeline: dict) -> Tuple[int, int, int]:
    """(late or missing, expected, short at the caller) frames of the bot's audio on one call."""
    received = timeline.get("received")
    if not received or not received["media_ms"]:
        return 0, 0, 0
    expected = received["media_ms"] // FRAME_MS
    return frames_late_or_missing(received), expected, max(0, expected - received["frames_heard"])


def wrong_answers(records: Iterable[Optional[dict]], intent: str) -> int:
    """The bot's turns in the call records taken for another intent than `intent`."""
    return sum(e["event"] == "bot" and e.get("intent") != intent for r in records for e in (r or {}).get("events", []))


def run_level(bot: BotProcess, line: BenchLine, calls: int, raw: List[dict]) -> Level:
    cpu, caller_cpu, wall = bot.cpu_seconds(), children_cpu_seconds(), time.monotonic()
    with peak_rss(bot) as peak:
        timelines = place_calls(bot.uri, ["--say", line.question] * CAPACITY_TURNS, calls, timeout=150,
                                lang=line.caller_lang)
    cpu, caller_cpu, wall = bot.cpu_seconds() - cpu, children_cpu_seconds() - caller_cpu, time.monotonic() - wall
    records = keep(raw, f"{calls} calls", timelines, bot)
    bad, expected, short = (sum(counts) for counts in zip(*(frame_counts(t) for t in timelines)))
    answered = [t for t in timelines if t.get("connected")]
    return Level(
        calls, latencies=[math.inf if turn["latency_ms"] is None else turn["latency_ms"]
                          for t in answered for turn in t["turns"]],
        bad_frames=bad, expected_frames=expected, caller_short_frames=short,
        refused=[t.get("error") or f"{t.get('status')} {t.get('reason')}" for t in timelines if not t.get("connected")],
        cut_short=sum(len(t["turns"]) < CAPACITY_TURNS for t in answered),
        wrong_answers=wrong_answers(records, line.intent),
        bot_cpu_s=cpu, asr_busy_s=sum(e.get("asr_busy_ms", 0) for r in records for e in (r or {}).get("events", [])
                                      if e["event"] == "heard") / 1000,
        call_s=sum(t["received"]["media_ms"] for t in answered if t.get("received")) / 1000,
        wall_s=wall, caller_cpu_s=caller_cpu, peak_rss_mb=peak[0], max_p95_ms=line.max_p95_ms,
        over_caller_ms=tuple(turn.get("bot_over_caller_ms", 0) for t in answered for turn in t["turns"]))


def level_line(level: Level) -> str:
    latency = f"{len(level.latencies):>6}{pct(level.latencies, 50):>7.0f}{pct(level.latencies, 95):>7.0f}"
    frames = f"{level.bad_share:>9.3%}{level.caller_short_frames / max(1, level.expected_frames):>9.3%}"
    cpu = f"{level.cpu_per_call:>10.1%}{level.bot_cpu_s / level.wall_s:>9.2f}{level.caller_cpu_s / level.wall_s:>9.2f}"
    failures = f"{len(level.refused):>7}{level.cut_short:>6}{level.wrong_answers:>6}"
    return (f"  {level.calls:>5}{latency}{frames}{cpu}{level.peak_rss_mb:>8.0f}{failures}"
            f"   {'pass' if level.passed else 'FAIL'}")


# -- the run

def run(root: Path, turns: int, max_calls: int, say: Callable[[str], None], line: BenchLine = LINES["korean"]
        ) -> List[str]:
    """Builds or finds the line (under root), runs the phases, returns the result lines; both
    views of every call go to root/calls.json. The end of turn judged by the words is compared
    with the fixed hangover in the same run (a second bot)."""
    from voicebot.config import load_installation

    root.mkdir(parents=True, exist_ok=True)
    config, number, serve_args = prepare(line, root)
    hangover_ms = load_installation(config).settings.audio.hangover_ms
    modes = {"early": config,
             "words": with_end_of_turn(config, root, "words-only", answer_early_ms=0),
             "fixed": with_end_of_turn(config, root, "fixed-hangover", listen_to_words=False)}
    raw: List[dict] = []
    ends: Dict[str, EndOfTurn] = {}
    try:
        for mode, settings in modes.items():
            bot = BotProcess(settings, root / f"bench-{mode}.sqlite3", root / f"bot-{mode}.log", line.clock, number,
                             serve_args)
            try:
                bot.wait_ready()
                say(f"{mode}: latency: {turns} turns, one call at a time")
                first = len(raw)
                lines, p50, spoken = latency_phase(bot, line, turns, hangover_ms, raw)
                say(f"{mode}: pauses mid-sentence")
                pauses = pauses_phase(bot, line, raw)
                taken_back = [e for call in raw[first:] for e in (call["bot"] or {}).get("events", [])
                              if e["event"] == "taken_back"]
                ends[mode] = end_of_turn_figures(spoken, pauses, taken_back)
                if mode == "early":
                    result, early_p50 = lines, p50
                    idle_rss = bot.rss_mb()
                    levels = capacity_phase(bot, line, max_calls, raw, say)
            finally:
                bot.stop()
    finally:
        (root / "calls.json").write_text(json.dumps(raw, ensure_ascii=False, indent=1), encoding="utf-8")
    best = most_calls(levels)
    return (result + end_of_turn_lines(ends, hangover_ms, line)
            + capacity_lines(levels, best, idle_rss, max_calls, line)
            + target_lines(line, early_p50, ends, best, max_calls))


def latency_phase(bot: BotProcess, line: BenchLine, turns: int, hangover_ms: int, raw: List[dict]
                  ) -> Tuple[List[str], float, "LatencyTurns"]:
    calls = math.ceil(turns / TURNS_PER_CALL)
    script = ["--barge-in", "--say", line.question] * math.ceil(turns / calls)
    joined: List[TurnTimes] = []
    stops: List[int] = []
    stopped_after: List[int] = []
    buffered: Dict[str, List[float]] = {"bot": [], "callers": []}  # jitter buffers' average delay, per call
    split = 0
    for _ in range(calls):
        [timeline] = place_calls(bot.uri, script, 1, timeout=60 + 5 * len(script), lang=line.caller_lang)
        if not timeline.get("connected"):
            raise RuntimeError(f"the bot did not answer: {timeline}; see {bot.log}")
        [record] = keep(raw, "latency", [timeline], bot)
        split += max(0, len(bot_turns(record or {"events": []})) - len(timeline["turns"]))
        times, stop_ms = join_call(timeline, record)
        joined += times
        stops += stop_ms
        stopped_after += [t["bot_stopped_after_ms"] for t in timeline["turns"]
                          if t.get("bot_stopped_after_ms") is not None]
        hangup = next((e for e in (record or {}).get("events", []) if e["event"] == "hangup"), {})
        buffered["bot"] += [hangup["audio_in"]["jbuf_delay_ms"]] if "audio_in" in hangup else []
        buffered["callers"] += [timeline["received"]["jbuf_delay_ms"]] if timeline.get("received") else []
    codec = timeline.get("received", {}).get("codec", "?")
    heard = [t.latency_ms for t in joined if t.latency_ms is not None]
    head = [f"{line.title}, {line.recogniser}, over loopback SIP/RTP ({codec}); bot and test callers share "
            "the machine",
            f"caller asks {line.question!r} (espeak-ng {line.caller_lang}) every turn",
            f"latency: {len(joined)} turns in {calls} call{'s' if calls > 1 else ''}, one at a time; each turn "
            f"is spoken {BARGE_IN_AFTER_S} s into the bot's speech (barge-in), so it need not wait out the answer"]
    lines = head + latency_lines(joined, stops, stopped_after, hangover_ms)
    lines.append("  of RTP, jitter buffers, playout: the jitter buffers' average delay, p50 of the calls: the bot's "
                 f"(caller to bot) {pct(buffered['bot'], 50):.0f} ms, the caller's (bot to caller) "
                 f"{pct(buffered['callers'], 50):.0f} ms")
    return lines, pct(heard, 50), LatencyTurns(joined, split)


@dataclass
class LatencyTurns:
    """The latency phase's turns, joined where both views match, and how many more turns the
    bot heard than the caller spoke (a turn heard as two: cut off at a gap inside it)."""
    turns: List[TurnTimes]
    split: int


def pauses_phase(bot: BotProcess, line: BenchLine, raw: List[dict]) -> Tuple[int, int]:
    """Calls whose turns pause PAUSE_S mid-sentence: (turns, turns cut off), a turn being cut
    off when the bot took it for more than one (it answered the first part, and did not take
    that answer back)."""
    turns = cut_off = 0
    for _ in range(PAUSED_CALLS):
        script = [arg for text in line.paused for arg in ("--barge-in", "--say", text)]
        [timeline] = place_calls(bot.uri, script, 1, timeout=60 + 5 * len(script), lang=line.caller_lang)
        [record] = keep(raw, "pauses", [timeline], bot)
        heard = len(bot_turns(record or {"events": []}))
        turns += len(line.paused)
        cut_off += max(0, heard - len(line.paused))
    return turns, cut_off


@dataclass
class EndOfTurn:
    latencies: List[float]
    end_of_speech: List[float]
    ended_by: Dict[str, int]  # early (answered early), complete, unfinished, silence
    taken_back: List[dict]  # the records' events of early answers taken back
    split: int  # unpaused turns the bot heard as two
    paused_turns: int
    cut_off: int


def end_of_turn_figures(spoken: LatencyTurns, pauses: Tuple[int, int], taken_back: List[dict]) -> EndOfTurn:
    ended_by: Dict[str, int] = {}
    for turn in spoken.turns:
        if turn.bot:
            ended_by[turn.bot["turn_end"]] = ended_by.get(turn.bot["turn_end"], 0) + 1
    return EndOfTurn([t.latency_ms for t in spoken.turns if t.latency_ms is not None],
                     [t.bot["end_of_speech_ms"] for t in spoken.turns if t.bot], ended_by, taken_back,
                     spoken.split, *pauses)


def end_of_turn_lines(ends: Dict[str, EndOfTurn], hangover_ms: int, line: BenchLine) -> List[str]:
    modes = ["early", "words", "fixed"]
    note = f"against the fixed {hangover_ms} ms hangover alone, each on its own bot, one after the other"
    titles = {"early": "answered early", "words": "judged by the words", "fixed": "fixed hangover"}

    def cells(value: Callable[[EndOfTurn], str]) -> str:
        return "".join(f"{value(ends[m]):>22}" for m in modes)
    return ["", f"end of turn judged by the words (audio.end_of_turn) {note}",
            f"  {'':<40}" + "".join(f"{titles[m]:>22}" for m in modes),
            f"  {'turn latency at the caller, p50 / p95':<40}"
            + cells(lambda e: f"{pct(e.latencies, 50):.0f} / {pct(e.latencies, 95):.0f} ms"),
            f"  {'end-of-speech detection, p50 / p95':<40}"
            + cells(lambda e: f"{pct(e.end_of_speech, 50):.0f} / {pct(e.end_of_speech, 95):.0f} ms"),
            f"  {'turns ended: early/complete/unfinished/silence':<40}"
            + cells(lambda e: "/".join(str(e.ended_by.get(k, 0))
                                       for k in ("early", "complete", "unfinished", "silence"))),
            f"  {'early answers taken back':<40}" + cells(lambda e: str(len(e.taken_back))),
            f"  {'  stopped after them, p50 / most':<40}" + cells(lambda e: stopped_after(e.taken_back)),
            f"  {'unpaused turns heard as two':<40}" + cells(lambda e: str(e.split)),
            f"  {'paused turns cut off':<40}" + cells(lambda e: f"{e.cut_off} of {e.paused_turns}"),
            f"  (paused: {' | '.join(repr(t) for t in line.paused)}, \"...\" a {PAUSE_S} s pause; cut off: the bot "
            "took one turn for two)"]


def stopped_after(taken_back: List[dict]) -> str:
    """How soon the bot stopped the early answers taken back, from their decision (the caller
    hears about the last RTP and playout delay less of each: see the latency parts)."""
    stops = [e["stopped_after_ms"] for e in taken_back if e.get("stopped_after_ms") is not None]
    return f"{pct(stops, 50):.0f} / {max(stops)} ms" if stops else "-"


def capacity_phase(bot: BotProcess, line: BenchLine, max_calls: int, raw: List[dict],
                   say: Callable[[str], None]) -> List[Level]:
    """Doubles the calls while a level passes (up to max_calls), then halves the gap between
    the highest pass and the lowest failure down to CAPACITY_STEP calls."""
    levels: List[Level] = []
    calls: Optional[int] = CAPACITY_STEP
    while calls:
        say(f"capacity: {calls} calls at once")
        levels.append(run_level(bot, line, calls, raw))
        say(level_line(levels[-1]))
        low = max((level.calls for level in levels if level.passed), default=0)
        high = min((level.calls for level in levels if not level.passed), default=None)
        if high is None:
            calls = min(2 * low, max_calls) if low < max_calls else None
        else:
            middle = (low + high) // 2 // CAPACITY_STEP * CAPACITY_STEP
            calls = middle if middle > low else None
    return sorted(levels, key=lambda level: level.calls)


def most_calls(levels: List[Level]) -> Optional[Level]:
    """The largest level that passed below the smallest that failed."""
    failed = min((level.calls for level in levels if not level.passed), default=math.inf)
    return max((level for level in levels if level.passed and level.calls < failed),
               key=lambda level: level.calls, default=None)


def capacity_lines(levels: List[Level], best: Optional[Level], idle_rss: float, max_calls: int,
                   line: BenchLine = LINES["korean"]) -> List[str]:
    refusals = sorted({reason for level in levels for reason in level.refused})
    lines = ["",
             f"capacity: calls of {CAPACITY_TURNS} turns, each answer heard to the end, started within "
             f"{STAGGER_WINDOW_S:.0f} s; a level passes",
             f"with p95 turn latency <= {line.max_p95_ms} ms, < {MAX_BAD_FRAMES:.0%} of the bot's frames late or "
             "missing at the caller, no call refused or cut short",
             "  calls turns    p50    p95  bad fr. caller fr. CPU/call bot cores caller c.  RSS MB refus.  cut wrong",
             *[level_line(level) for level in levels],
             "  (bad fr.: jitter buffer empty, lost or discarded; caller fr.: frames the caller's own clock missed;",
             "   cores: CPU seconds per second; cut: calls that ended early; wrong: turns taken for another intent)",
             *([f"  refused: {', '.join(refusals)}"] if refusals else []),
             "  recogniser busy (its seconds per second of the level): "
             + ", ".join(f"{level.calls} calls {level.asr_busy_s / level.wall_s:.2f}" for level in levels),
             over_caller_line(levels)]
    if best is None:
        return lines + ["  no level passed"]
    more = " (the highest tried: raise --max-calls)" if best.calls >= max_calls else ""
    return lines + [
        f"  most simultaneous calls: {best.calls}{more}",
        f"  per call at {best.calls} calls: {best.cpu_per_call:.1%} of one core (bot CPU per second of call), "
        f"{(best.peak_rss_mb - idle_rss) / best.calls:.1f} MB resident (peak {best.peak_rss_mb:.0f} MB "
        f"over {idle_rss:.0f} MB idle, bot and action server)", *limit_lines(levels, best, line)]


def over_caller_line(levels: List[Level]) -> str:
    over = [ms for level in levels for ms in level.over_caller_ms]
    heard = [ms for ms in over if ms]
    return (f"  the bot heard over the caller's words (an early answer the caller went on after): {len(heard)} of "
            f"{len(over)} turns" + (f", p50 {pct(heard, 50):.0f} ms, at most {max(heard)} ms" if heard else ""))


def limit_lines(levels: List[Level], best: Level, line: BenchLine) -> List[str]:
    """What stopped the ramp: one process's call slots, and how far the shared decoder is from full."""
    lines = []
    if best.calls == MAX_CALLS and any(level.refused for level in levels):
        lines.append(f"  limit here: one bot process holds {MAX_CALLS} calls (pjsua2's PJSUA_MAX_CALLS); more "
                     "need more workers (voicebot cluster up)")
    busy = best.asr_busy_s / best.wall_s
    if line.name != "korean" and busy > 0:  # Whisper: one decode at a time for every call
        lines.append(f"  one Whisper model decodes one turn at a time for every call: busy {busy:.0%} of the time at "
                     f"{best.calls} calls, far from full on average, but turns that come together wait for each other")
    return lines


def target_lines(line: BenchLine, p50: float, ends: Dict[str, EndOfTurn], best: Optional[Level],
                 max_calls: int) -> List[str]:
    calls = best.calls if best else 0

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"
    lines = ["", "targets:",
             f"  {line.recogniser.split(' (')[0]}: p50 turn latency <= {line.target_p50_ms} ms: "
             f"{verdict(p50 <= line.target_p50_ms)} ({p50:.0f} ms)"]
    words = ends["early"].cut_off + ends["early"].split
    fixed = ends["fixed"].cut_off + ends["fixed"].split
    lines.append(f"  no more turns cut off than the fixed hangover: {verdict(words <= fixed)} "
                 f"({words} against {fixed}, paused or not)")
    return lines + [f"  >= {TARGET_CALLS} simultaneous calls on {os.cpu_count()} cores: "
                    + (verdict(calls >= TARGET_CALLS) if calls >= TARGET_CALLS or max_calls >= TARGET_CALLS
                       else "not tried") + f" ({calls})"]
