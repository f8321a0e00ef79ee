"""`voicebot bench cluster`: what the cluster (`voicebot cluster up`) takes, with 1, 2 ... workers.

Everything is real and on loopback: `voicebot cluster up` (Redis, a Rasa server, N workers, the
Kamailio front) answers the Korean test line (voicebot/testing/korean.py; Korean is the one
language with a Vosk model here), or with --line demo-city, Demo City's English line on Whisper
(capacity only: SIPp's calls speak Korean). Records go to a SQLite file.

- Worker start-up: each worker's time from its start to /health answering, as cluster up
  records it, and one worker killed and timed until it answers again.
- Call attempts per second: SIPp (Debian's sip-tester; scenarios in benchmarks/sipp/) places
  short calls (answer, 1 s of silence, BYE) at a rising rate, 10 s a rate, doubling from 1
  call/s, then halving the gap to the last pass down to 1 call/s. A rate passes when at least
  99% of its calls are answered (200) and none gets a 5xx or times out.
- Capacity: levels of 2, 4, 8 ... calls at once (doubling, then halving the gap down to 2),
  started within STAGGER_WINDOW_S by test phones (`voicebot call`, as bench call places them),
  which hear the greeting, ask for the opening hours in espeak-ng speech, hear the answer to its
  end and ask again (both views of each call are kept in the root folder). A level passes when
  every call is answered and recorded, the p95 of the turn latency at the caller is at most the
  line's limit (1000 ms on Vosk, 1500 ms on Whisper; a turn not answered counts as infinitely
  late) and fewer than 1% of the bot's frames are late or missing at the callers (their jitter
  buffers), as bench call judges one bot.
- Soak: the largest cluster under half the capacity found, SIPp streaming the same speech, for
  --soak-minutes; the resident memory of every part (cluster.json's pids with their children)
  each minute, and the growth slope of the last half against the first.

The front drops more than 30 requests in 2 s from one address (pike); so that the figures are the
cluster's and not that limit's, SIPp's calls come from several loopback addresses (127.0.0.1 and
127.0.0.16/28, all trunks), each kept under it; a capacity level's at most 3 requests a call over
5 s stay under it from one. The callers, the front and the workers share the cores.
"""

import contextlib
import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from voicebot import procs
from voicebot.bench.call import (CAPACITY_STEP, CAPACITY_TURNS, CLEAN_FRAMES, INTENT, LINES, MAX_BAD_FRAMES, MAX_P95_MS,
                                 STAGGER_WINDOW_S, BenchLine, bot_turns, frame_counts, linked_installation, pct,
                                 place_calls, process_tree, tree_cpu_seconds, wrong_answers)
from voicebot.cluster.up import RESTART_AFTER_S
from voicebot.config import load_installation
from voicebot.dashboard.auth import harness_token
from voicebot.dialogue.action_server import is_healthy
from voicebot.testing import korean
from voicebot.testing.lines import REPO
from voicebot.testing.phone import MAX_CALLS
from voicebot.testing.sipp import ulaw_speech

SCENARIOS = REPO / "benchmarks" / "sipp"
SOURCES = ["127.0.0.1"] + [f"127.0.0.{n}" for n in range(17, 31)]  # callers' addresses
TRUNKS = ("127.0.0.1", "127.0.0.16/28")
RATE_STEP_S = 10  # calls at one rate for this long
HOLD_MS = 1000  # short calls: answered, then this long before the BYE
MIN_ANSWERED = 0.99
CALLS_PER_SOURCE_PER_S = 3.0  # 3 requests a call: 18 in 2 s, under the front's 30 (pike)
CALLS_PER_SOURCE = 8  # calls at once from one address in a capacity level
LISTEN_MS = 15000  # the answer to "opening hours" lasts about 13 s
LAST_LISTEN_MS = 4000
LATE_TICK_MS = 10  # half a frame: a receiver whose jitter buffer holds one frame misses it, likely
# Half the test phones keep at least this much in their jitter buffers, as a real phone or carrier
# does (40-60 ms); the other half keep pjsua's own, which shrinks to one frame (20 ms) on loopback
# and so also counts a frame sent a few ms late, or fetched a few ms early, as missing.
CALLER_JITTER_FLOOR_MS = 40
GROWTH_LIMIT_MB_PER_H = 20.0  # a part whose last-half slope is above this is flagged
START_TIMEOUT_S = 420


# -- searching for the highest passing level (rates and capacity alike)

def next_level(results: Dict[int, bool], first: int, step: int, maximum: int) -> Optional[int]:
    """The next level to try: `first`, then doubling while levels pass (up to `maximum`); after a
    failure, the middle between the highest pass and the lowest failure, rounded down to `step`,
    until they are `step` apart. None when done."""
    if not results:
        return first
    low = max((level for level, passed in results.items() if passed), default=0)
    high = min((level for level, passed in results.items() if not passed), default=None)
    if high is None:
        return min(2 * low, maximum) if low < maximum else None
    middle = (low + high) // 2 // step * step
    return middle if middle > low and middle not in results else None


def highest_pass(results: Dict[int, bool]) -> Optional[int]:
    """The highest level that passed below the lowest that failed."""
    failed = min((level for level, passed in results.items() if not passed), default=math.inf)
    return max((level for level, passed in results.items() if passed and level < failed), default=None)


def search(first: int, step: int, maximum: int, attempt: Callable[[int], bool]) -> Tuple[Optional[int], Dict[int, bool]]:
    results: Dict[int, bool] = {}
    level = next_level(results, first, step, maximum)
    while level is not None:
        results[level] = attempt(level)
        level = next_level(results, first, step, maximum)
    return highest_pass(results), results


# -- memory growth

def slope_per_hour(samples: Sequence[Tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per hour (nan with fewer than 2)."""
    if len(samples) < 2:
        return math.nan
    mean_t = sum(t for t, _ in samples) / len(samples)
    mean_v = sum(v for _, v in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return math.nan
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread * 3600


def growth(samples: Sequence[Tuple[float, float]]) -> Tuple[float, float, bool]:
    """(first-half slope, last-half slope) in MB/h, the halves split at the middle of the time
    span (the middle sample in both), and whether the last half grows above GROWTH_LIMIT_MB_PER_H:
    warm-up shows in the first half, a leak goes on in the second."""
    if len(samples) < 3:
        return math.nan, math.nan, False
    middle = (samples[0][0] + samples[-1][0]) / 2
    first = [s for s in samples if s[0] <= middle]
    last = [s for s in samples if s[0] >= middle]
    if len(first) < 2:
        first = list(samples[:2])
    if len(last) < 2:
        last = list(samples[-2:])
    early, late = slope_per_hour(first), slope_per_hour(last)
    return early, late, late > GROWTH_LIMIT_MB_PER_H


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (their VmRSS summed)."""
    total_kb = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, StopIteration):
            status = Path(f"/proc/{member}/status").read_text()
            total_kb += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total_kb / 1024


# -- the cluster

class RunningCluster:
    """`voicebot cluster up` (a fresh Cluster) on free loopback ports, its logs and cluster.json
    in folder; stop() ends it (SIGTERM: the Cluster stops its parts in its finally)."""

    def __init__(self, config: Path, store: Path, workers: int, folder: Path, clock: str):
        from voicebot.ports import free_port

        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.workers, self.port = folder, workers, free_port()
        env = {**os.environ, "VOICEBOT_CONFIG": str(config), "VOICEBOT_CLOCK": clock,
               "VOICEBOT_STORE_URL": f"sqlite:///{store}"}
        self.token = harness_token(env["VOICEBOT_STORE_URL"])
        with (folder / "up.log").open("wb") as log:
            self.process = procs.start(
                [sys.executable, "-m", "voicebot.cli", "cluster", "up", "--workers", str(workers),
                 "--port", str(self.port), "--folder", str(folder), *(a for t in TRUNKS for a in ("--trunk", t))],
                env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self.state() or {}).get("ready"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.folder / "up.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"voicebot cluster up did not come up; the end of {self.folder / 'up.log'}:\n{tail}")
            time.sleep(1)

    def state(self) -> Optional[dict]:
        with contextlib.suppress(OSError, ValueError):
            return json.loads((self.folder / "cluster.json").read_text())
        return None

    def components(self) -> Dict[str, dict]:
        return (self.state() or {}).get("components", {})

    def worker_calls(self) -> List[dict]:
        """Every worker's recent call records (GET /calls), each with the worker's name."""
        found = []
        for name, part in self.components().items():
            if name.startswith("worker-"):
                with contextlib.suppress(OSError, ValueError):
                    request = urllib.request.Request(f"http://127.0.0.1:{part['http']}/calls",
                                                     headers={"Authorization": f"Bearer {self.token}"})
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        found += [{**record, "worker": name} for record in json.loads(answer.read())]
        return found

    def records(self, call_ids: Set[str], wait_s: float = 20) -> List[dict]:
        """The workers' records of these calls, once they are over (or after wait_s)."""
        deadline = time.monotonic() + wait_s
        while True:
            found = [r for r in self.worker_calls() if r["call_id"] in call_ids]
            if (len(found) >= len(call_ids) and all(r["state"] in ("ended", "transferred") for r in found)) \
                    or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def restart_s(self, name: str) -> float:
        """Kills one part and times it until it is healthy again (cluster up starts it again after
        RESTART_AFTER_S)."""
        part = self.components()[name]
        began = time.monotonic()
        os.kill(part["pid"], signal.SIGKILL)
        url = f"http://127.0.0.1:{part['http']}/health"
        while self.components()[name]["pid"] == part["pid"] or not is_healthy(url, timeout=2):
            if time.monotonic() - began > START_TIMEOUT_S:
                raise RuntimeError(f"{name} did not come back; see {self.folder / (name + '.log')}")
            time.sleep(0.1)
        return time.monotonic() - began

    def ready_s(self, prefix: str) -> List[float]:
        """How long the parts whose names start with prefix took from their start to healthy."""
        return [part["ready_s"] for name, part in self.components().items()
                if name.startswith(prefix) and part.get("ready_s") is not None]

    def rss(self) -> Dict[str, float]:
        return {name: rss_mb(part["pid"]) for name, part in self.components().items() if part.get("pid")}

    def restarts(self) -> int:
        return sum(part.get("restarts", 0) for part in self.components().values())

    def stop(self) -> None:
        procs.stop(self.process, timeout=60)


# -- SIPp

@dataclass
class SippOutcome:
    calls: int  # placed
    answered: int  # SIPp's successful calls
    failed: int
    timeouts: int  # a response that never came (receive timeouts, retransmissions given up)
    codes: Counter = field(default_factory=Counter)  # final responses other than 200
    answer_ms: List[float] = field(default_factory=list)  # INVITE to 200

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.codes.items() if code >= 500)


def scenario(name: str, workdir: Path, **fill) -> Path:
    text = (SCENARIOS / name).read_text()
    for key, value in fill.items():
        text = text.replace(f"@{key.upper()}@", str(value))
    path = workdir / name.replace(".in", "")
    path.write_text(text)
    return path


class Sipp:
    """SIPp processes calling the front from `sources` addresses at once, sharing out the calls
    and the rate."""

    def __init__(self, port: int, path: Path, workdir: Path, tag: str, calls: int, rate: float, limit: int,
                 sources: int, timeout_s: float):
        from voicebot.ports import free_port

        self.workdir, self.tag, self.calls = workdir, tag, calls
        self.runs: List[Tuple[subprocess.Popen, Path]] = []
        sources = max(1, min(sources, len(SOURCES), calls))
        for index, address in enumerate(SOURCES[:sources]):
            share = len(range(index, calls, sources))
            folder = workdir / f"{tag}-{index}"
            folder.mkdir(parents=True, exist_ok=True)
            command = [
                "sipp", f"127.0.0.1:{port}", "-sf", str(path), "-s", korean.NUMBER,
                "-cid_str", f"{tag}-{index}-%u@%s", "-i", address, "-p", str(free_port(address)),
                "-mi", address, "-mp", str(free_port(address)), "-m", str(share),
                "-r", f"{max(rate * share / calls * 1000, 1):.0f}", "-rp", "1000000",  # calls per 1000 s
                "-l", str(max(1, math.ceil(limit * share / calls))), "-nostdin", "-recv_timeout", "20000",
                "-timeout", f"{timeout_s:.0f}s", "-trace_stat", "-stf", "stat.csv", "-fd", "1",
                "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", "errors.log"]
            out = (folder / "sipp.out").open("wb")
            self.runs.append((procs.start(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL), folder))
            out.close()

    def stop_soon(self) -> None:
        """No new calls; the ones going on finish (SIGUSR1)."""
        for process, _ in self.runs:
            if process.poll() is None:
                process.send_signal(signal.SIGUSR1)

    def wait(self, timeout_s: float) -> SippOutcome:
        deadline = time.monotonic() + timeout_s
        for process, _ in self.runs:
            try:
                process.wait(max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                procs.stop(process)
        outcome = SippOutcome(0, 0, 0, 0)
        for _, folder in self.runs:
            stats = read_stats(folder / "stat.csv")
            outcome.calls += int(stats.get("TotalCallCreated", 0))
            outcome.answered += int(stats.get("SuccessfulCall(C)", 0))
            outcome.failed += int(stats.get("FailedCall(C)", 0))
            outcome.timeouts += int(stats.get("FailedTimeoutOnRecv(C)", 0)) + int(stats.get("FailedMaxUDPRetrans(C)", 0))
            errors = folder / "errors.log"
            if errors.exists():
                outcome.codes.update(int(code) for code in re.findall(
                    r"Aborting call on unexpected message[^\n]*received 'SIP/2\.0 (\d{3})", errors.read_text(errors="replace")))
            for rtt in folder.glob("*_rtt.csv"):
                outcome.answer_ms += [float(row["response_time_ms"]) for row in read_rows(rtt)
                                      if row.get("response_time_ms")]
        return outcome


def read_rows(path: Path) -> List[dict]:
    with contextlib.suppress(OSError):
        with path.open(newline="") as handle:
            return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(handle, delimiter=";")]
    return []


def read_stats(path: Path) -> Dict[str, str]:
    """The last line of SIPp's statistics file: cumulative counts at its exit."""
    rows = read_rows(path)
    return rows[-1] if rows else {}


# -- phases

def why_failed(outcome: SippOutcome) -> str:
    """What made a rate fail, in words."""
    reasons = []
    if outcome.codes.get(486):
        reasons.append(f"{outcome.codes[486]} x 486 Busy Here (every worker held all the calls it can)")
    others = {code: n for code, n in outcome.codes.items() if code != 486}
    if others:
        reasons.append(", ".join(f"{n} x {code}" for code, n in sorted(others.items())))
    if outcome.timeouts:
        reasons.append(f"{outcome.timeouts} timeouts")
    return "; ".join(reasons) or "calls that did not go through"


@dataclass
class RateStep:
    rate: int
    outcome: SippOutcome

    @property
    def passed(self) -> bool:
        o = self.outcome
        return (o.calls > 0 and o.answered >= MIN_ANSWERED * o.calls and o.timeouts == 0
                and o.server_errors == 0)

    def line(self) -> str:
        o = self.outcome
        codes = ", ".join(f"{n}x{code}" for code, n in sorted(o.codes.items())) or "-"
        return (f"  {self.rate:>5}{o.calls:>7}{o.answered:>9}{o.answered / max(1, o.calls):>8.1%}{o.timeouts:>9}"
                f"{pct(o.answer_ms, 50):>8.0f}{pct(o.answer_ms, 95):>8.0f}   {codes:<16}{'pass' if self.passed else 'FAIL'}")


@dataclass
class CapacityLevel:
    """One level of calls at once, as the callers (test phones) and the workers' records saw it."""
    calls: int
    timelines: List[dict]  # voicebot call --json, one per call
    records: List[dict]  # the workers' records of the answered calls
    cluster_cpu_s: float  # every part of the cluster, during the level
    wall_s: float
    intent: str = INTENT  # what every turn asks for
    max_p95_ms: int = MAX_P95_MS

    @property
    def answered(self) -> List[dict]:
        return [t for t in self.timelines if t.get("connected")]

    @property
    def refused(self) -> Counter:
        return Counter(str(t.get("status") or t.get("error")) for t in self.timelines if not t.get("connected"))

    @property
    def latencies(self) -> List[float]:
        """Turn latency at the caller (end of its speech to the bot's first audio heard) of every
        turn the answered calls were to have; a turn not answered or not reached counts as inf."""
        heard = [math.inf if turn["latency_ms"] is None else turn["latency_ms"]
                 for t in self.answered for turn in t["turns"]]
        return heard + [math.inf] * (CAPACITY_TURNS * len(self.answered) - len(heard))

    @property
    def bot_ms(self) -> List[float]:
        """The bot's own turn latency (its records' turn_ms)."""
        return [t["turn_ms"] for r in self.records for t in bot_turns(r) if "turn_ms" in t]

    def _frames(self, which: int, timelines: List[dict]) -> float:
        counts = [frame_counts(t) for t in timelines]  # (bad, expected, short) per call
        return sum(c[which] for c in counts) / max(1, sum(c[1] for c in counts))

    def _floored(self, floored: bool) -> List[dict]:
        return [t for t in self.answered if bool((t.get("received") or {}).get("jitter_floor_ms")) == floored]

    @property
    def bad_share(self) -> float:
        """The share of the bot's frames late or missing at the callers whose jitter buffers
        keep CALLER_JITTER_FLOOR_MS, as a real phone's."""
        return self._frames(0, self._floored(True))

    @property
    def strict_share(self) -> float:
        """The same at the callers with pjsua's own jitter buffer (one frame on loopback)."""
        return self._frames(0, self._floored(False))

    @property
    def short_share(self) -> float:
        """The share of frames the callers' own audio clock did not fetch: the callers' doing."""
        return self._frames(2, self.answered)

    @property
    def bot_late(self) -> float:
        """The share of the bot's frames its clock sent LATE_TICK_MS or more late (the records'
        hangup audio_out): the bot's doing, whatever the callers' jitter buffers make of it."""
        return late_share(e.get("audio_out") for r in self.records for e in r["events"] if e["event"] == "hangup")

    @property
    def phone_late(self) -> float:
        """The same for the callers' own audio clocks, which fetch the bot's frames: the callers' doing."""
        return late_share((t.get("received") or {}).get("clock") for t in self.answered)

    @property
    def wrong_answers(self) -> int:
        return wrong_answers(self.records, self.intent)

    @property
    def per_worker(self) -> Counter:
        return Counter(r["worker"] for r in self.records)

    @property
    def passed(self) -> bool:
        return (len(self.answered) == self.calls and len(self.records) == self.calls
                and pct(self.latencies, 95) <= self.max_p95_ms and self.bad_share < MAX_BAD_FRAMES)

    def why_failed(self) -> str:
        reasons = [f"{n} x {status}" + (" (every worker held all the calls it can)" if status == "486" else "")
                   for status, n in sorted(self.refused.items())]
        if pct(self.latencies, 95) > self.max_p95_ms:
            reasons.append(f"p95 turn latency {pct(self.latencies, 95):.0f} ms")
        if self.bad_share >= MAX_BAD_FRAMES:
            reasons.append(f"{self.bad_share:.2%} of frames late or missing")
        if len(self.records) < len(self.answered):
            reasons.append(f"{len(self.answered) - len(self.records)} calls without a record")
        return "; ".join(reasons) or "calls that did not go through"

    def line(self) -> str:
        spread = "/".join(str(self.per_worker[name]) for name in sorted(self.per_worker)) or "-"
        refused = ", ".join(f"{n}x{status}" for status, n in sorted(self.refused.items())) or "-"
        lat = self.latencies
        return (f"  {self.calls:>5}{len(self.answered):>9}{len(lat):>7}{pct(lat, 50):>7.0f}{pct(lat, 95):>7.0f}"
                f"{pct(self.bot_ms, 95):>8.0f}{self.bad_share:>9.3%}{self.strict_share:>9.3%}{self.short_share:>8.2%}"
                f"{self.bot_late:>9.3%}"
                f"{self.phone_late:>9.3%}"
                f"{self.wrong_answers:>7}"
                f"{self.cluster_cpu_s / max(self.wall_s, 1e-9):>7.2f}   {spread:<10}{refused:<12}"
                f"{'pass' if self.passed else 'FAIL'}")


def late_share(clocks: Iterable[Optional[dict]]) -> float:
    """Of clock punctualities (voicebot.telephony.media.FramePort.clock_lateness), the share of
    ticks LATE_TICK_MS or more late."""
    clocks = [c for c in clocks if c]
    return sum(c[f"late_{LATE_TICK_MS}ms"] for c in clocks) / max(1, sum(c["ticks"] for c in clocks))


def turn_latencies(records: Iterable[dict], turns: int) -> List[float]:
    """The bot's turn latency (turn_ms) of each expected turn (missing ones: inf)."""
    latencies: List[float] = []
    for record in records:
        answered = [t["turn_ms"] for t in bot_turns(record) if "turn_ms" in t][:turns]
        latencies += answered + [math.inf] * (turns - len(answered))
    return latencies


class Bench:
    """The line's installation under root; for the Korean line, SIPp's speech and scenarios too
    (SIPp plays μ-law Korean: the other lines have only the test phones' capacity levels)."""

    def __init__(self, root: Path, say: Callable[[str], None], line: BenchLine = LINES["korean"]):
        self.root, self.say, self.line = root, say, line
        if line.name != "korean":
            self.config = linked_installation(REPO / "voicebot.yml", root / line.name, lambda settings: None, [line.name])
            self.number = load_installation(self.config).tenant(line.name).numbers[0]
            self.sipp = False
            return
        self.config, self.number, self.sipp = korean.build(root), korean.NUMBER, True
        self.work = root / "sipp"
        self.work.mkdir(parents=True, exist_ok=True)
        speech = self.work / "opening_hours.ulaw"
        self.speech_ms = ulaw_speech(korean.ASK_OPENING_HOURS, "ko", speech)
        self.greeting_ms = self._greeting_ms()
        self.short = scenario("short_call.xml.in", self.work, hold_ms=HOLD_MS)
        self.talk = scenario("talk.xml.in", self.work, speech=speech, speech_ms=self.speech_ms + 300,
                             greeting_ms=self.greeting_ms, listen_ms=LISTEN_MS, last_listen_ms=LAST_LISTEN_MS)
        self.call_s = (self.greeting_ms + 2 * (self.speech_ms + 300) + LISTEN_MS + LAST_LISTEN_MS) / 1000

    def _greeting_ms(self) -> int:
        """The Korean line's greeting as spoken, and a second more."""
        import yaml
        from voicebot.audio.tts import Synthesizer

        tenant = yaml.safe_load(next((self.root / "tenants").glob("*.yml")).read_text(encoding="utf-8"))
        return len(Synthesizer("ko").render(tenant["greeting"], 8000).pcm) // 16 + 1000

    def tag(self, what: str) -> str:
        return f"bench-{what}-{uuid.uuid4().hex[:8]}"

    def rate_step(self, cluster: RunningCluster, rate: int) -> RateStep:
        calls = rate * RATE_STEP_S
        sipp = Sipp(cluster.port, self.short, self.work, self.tag(f"rate{rate}"), calls, rate, limit=calls,
                    sources=math.ceil(rate / CALLS_PER_SOURCE_PER_S), timeout_s=RATE_STEP_S + 60)
        step = RateStep(rate, sipp.wait(RATE_STEP_S + 90))
        self.say(step.line())
        time.sleep(HOLD_MS / 1000 + 2)  # the last calls' records close; workers idle again
        return step

    def capacity_level(self, cluster: RunningCluster, calls: int) -> CapacityLevel:
        cpu, wall = tree_cpu_seconds(cluster.process.pid), time.monotonic()
        timelines = place_calls(f"sip:{self.number}@127.0.0.1:{cluster.port}",
                                ["--say", self.line.question] * CAPACITY_TURNS, calls, timeout=150,
                                lang=self.line.caller_lang, jitter_floors=(CALLER_JITTER_FLOOR_MS, None))
        cpu, wall = tree_cpu_seconds(cluster.process.pid) - cpu, time.monotonic() - wall
        ids = {t["call_id"] for t in timelines if t.get("call_id")}
        level = CapacityLevel(calls, timelines, cluster.records(ids), cpu, wall, self.line.intent, self.line.max_p95_ms)
        (self.root / f"capacity-{cluster.workers}-workers-{calls}-calls.json").write_text(
            json.dumps({"callers": level.timelines, "records": level.records}, ensure_ascii=False))
        self.say(level.line())
        time.sleep(2)
        return level

    def soak(self, cluster: RunningCluster, calls: int, minutes: float) -> List[str]:
        tag = self.tag("soak")
        rate = calls / self.call_s * 1.5  # SIPp's -l keeps it at `calls` at once
        total = int(rate * minutes * 60) + calls + 10
        started, started_at = time.monotonic(), time.time()
        samples: Dict[str, List[Tuple[float, float]]] = {}
        seen: Dict[str, dict] = {}

        def sample() -> None:
            elapsed = time.monotonic() - started
            for name, mb in cluster.rss().items():
                samples.setdefault(name, []).append((elapsed, mb))
            for record in cluster.worker_calls():
                if record["call_id"].startswith(tag) and record["state"] in ("ended", "transferred"):
                    seen.setdefault(record["call_id"], record)
        sample()
        restarts = cluster.restarts()
        sipp = Sipp(cluster.port, self.talk, self.work, tag, total, rate, limit=calls,
                    sources=math.ceil(calls / CALLS_PER_SOURCE), timeout_s=minutes * 60 + self.call_s + 120)
        for minute in range(1, math.ceil(minutes) + 1):
            time.sleep(max(0.0, started + min(minute, minutes) * 60 - time.monotonic()))
            sample()
            total_mb = sum(series[-1][1] for series in samples.values())
            self.say(f"  soak {min(minute, minutes):g}/{minutes:g} min: {len(seen)} calls done, "
                     f"{total_mb:.0f} MB resident in all")
        sipp.stop_soon()
        outcome = sipp.wait(self.call_s + 60)
        sample()
        half = started_at + minutes * 30  # calls begun in the first half of the soak, and the others
        early, late = ([r for r in seen.values() if (r["started"] < half) == first] for first in (True, False))
        lines = [f"soak: 2 workers, {calls} calls at once (half the capacity found) for {minutes:g} min; "
                 f"resident memory of each part with its children, sampled each minute; calls by when they began",
                 f"  calls placed {outcome.calls}, answered {outcome.answered}, failed {outcome.failed}, "
                 f"timeouts {outcome.timeouts}; parts restarted {cluster.restarts() - restarts}"]
        for label, records in (("first half", early), ("last half", late)):
            latencies = turn_latencies(records, 2)
            lines.append(f"  {label}: {len(records)} calls, turn latency p50 {pct(latencies, 50):.0f} ms, "
                         f"p95 {pct(latencies, 95):.0f} ms, wrong answers {wrong_answers(records, self.line.intent)}")
        lines.append(f"  {'part':<12}{'start MB':>9}{'end MB':>9}{'1st half MB/h':>15}{'2nd half MB/h':>15}")
        flagged = []
        for name in sorted(samples, key=lambda n: (n.startswith("front"), n)):
            series = samples[name]
            first_slope, last_slope, grows = growth(series)
            if grows:
                flagged.append(name)
            lines.append(f"  {name:<12}{series[0][1]:>9.0f}{series[-1][1]:>9.0f}{first_slope:>15.1f}{last_slope:>15.1f}"
                         f"{'   GROWING' if grows else ''}")
        lines.append(f"  memory growth (last-half slope above {GROWTH_LIMIT_MB_PER_H:g} MB/h): "
                     + (", ".join(flagged) if flagged else "none"))
        if minutes < 20:
            lines.append("  (a soak this short shows warm-up more than leaks: the 30-minute run is the one to judge)")
        return lines


def searched(first: int, step: int, most: int, measure: Callable[[int], Any]) -> Tuple[Optional[int], list]:
    """search() with each step measured (a RateStep or CapacityLevel, which says if it passed):
    the highest value passed, and every step measured, in order."""
    steps: Dict[int, Any] = {}

    def attempt(value: int) -> bool:
        steps[value] = measure(value)
        return steps[value].passed
    best, _ = search(first, step, most, attempt)
    return best, [steps[value] for value in sorted(steps)]


def run(root: Path, workers_max: int, max_rate: int, max_calls: int, soak_minutes: float,
        say: Callable[[str], None], workers_min: int = 1, line: BenchLine = LINES["korean"]) -> List[str]:
    """Builds the line's installation under root, runs the phases for workers_min..workers_max
    workers (then the soak on the largest cluster), returns the result lines."""
    bench = Bench(root, say, line)
    store = root / "bench.sqlite3"
    rates: Dict[int, Tuple[Optional[int], List[RateStep]]] = {}
    capacities: Dict[int, Tuple[Optional[int], List[CapacityLevel]]] = {}
    ready: Dict[int, Tuple[List[float], float]] = {}  # workers' start-up times, one's restart
    soak_lines: List[str] = []
    for workers in range(workers_min, workers_max + 1):
        cluster = RunningCluster(bench.config, store, workers, root / f"cluster-{workers}", line.clock)
        try:
            say(f"{workers} worker{'s' if workers > 1 else ''}: starting the cluster")
            cluster.wait_ready()
            say(f"workers ready after {', '.join(f'{s:.1f}' for s in cluster.ready_s('worker-'))} s")
            if bench.sipp:
                say(f"call attempts per second, {workers} worker(s)")
                say(RATE_HEAD)
                rates[workers] = searched(1, 1, max_rate, lambda rate: bench.rate_step(cluster, rate))
            say(f"capacity, {workers} worker(s)")
            say(CAPACITY_HEAD)
            capacities[workers] = searched(CAPACITY_STEP, CAPACITY_STEP, max_calls,
                                           lambda calls: bench.capacity_level(cluster, calls))
            best_calls = capacities[workers][0]
            if workers == workers_max and soak_minutes > 0 and bench.sipp:
                say(f"soak: {soak_minutes:g} min")
                soak_lines = bench.soak(cluster, max(1, (best_calls or 2) // 2), soak_minutes)
            ready[workers] = cluster.ready_s("worker-"), cluster.restart_s("worker-1")
            say(f"worker-1 killed and ready again after {ready[workers][1]:.1f} s")
        finally:
            cluster.stop()
    return result_lines(bench, rates, capacities, ready, soak_lines, max_rate, max_calls)


RATE_HEAD = "   rate  calls answered    share timeouts  p50 ms  p95 ms   not 200"
CAPACITY_HEAD = ("  calls answered  turns    p50    p95 bot p95   frames   strict   short bot late phone late  wrong  cores"
                 "   per worker  refused")


def result_lines(bench: Bench, rates: dict, capacities: dict, ready: dict, soak_lines: List[str], max_rate: int,
                 max_calls: int) -> List[str]:
    line = bench.line
    lines = [f"{line.title}, {line.recogniser}, through the Kamailio front (voicebot cluster up) over loopback "
             f"SIP/RTP; the callers, the front, Redis, the Rasa server and the workers share {os.cpu_count()} cores", "",
             "worker start-up (cluster up starts them together, after the Rasa server; ready = /health answers):"]
    lines += [f" {workers} worker{'s' if workers > 1 else ''}: ready after "
              f"{', '.join(f'{s:.1f}' for s in started)} s; worker-1 killed and ready again after {restart:.1f} s "
              f"(cluster up waits {RESTART_AFTER_S:g} s before starting it again)"
              for workers, (started, restart) in ready.items()]
    if rates:
        lines += ["", f"call attempts per second: short calls (answer, {HOLD_MS} ms, BYE), {RATE_STEP_S} s a rate; "
                      f"a rate passes with >= {MIN_ANSWERED:.0%} answered (200), no 5xx, no timeout (p50/p95: INVITE to 200)"]
    for workers, (best, steps) in rates.items():
        lines += [f" {workers} worker{'s' if workers > 1 else ''}:", RATE_HEAD, *[s.line() for s in steps],
                  f"  highest rate passed: {best if best is not None else 'none'} calls/s"
                  + (" (the highest tried: raise --max-rate)" if best == max_rate else "")]
        failed = [s for s in steps if not s.passed and (best is None or s.rate > best)]
        if failed:
            lines.append(f"  the next rate failed on: {why_failed(failed[0].outcome)}")
    lines += ["",
              f"capacity: test phones (voicebot call, {MAX_CALLS} calls a process) place calls of {CAPACITY_TURNS} turns "
              f"(the greeting heard, \"opening hours\" asked and the answer heard to its end, again), started within "
              f"{STAGGER_WINDOW_S:.0f} s; a level passes with every call answered and recorded, p95 turn latency at the "
              f"caller <= {line.max_p95_ms} ms and < {MAX_BAD_FRAMES:.0%} of the bot's frames late or missing at the callers;",
              "p50/p95: at the caller, end of its speech to the bot's first audio heard; bot p95: the bot's own "
              f"(records' turn_ms); frames: the bot's, late or missing at the callers whose jitter buffers keep at least "
              f"{CALLER_JITTER_FLOOR_MS} ms, as a real phone's (half the phones); strict: at the other half, with pjsua's "
              "own jitter buffer, which holds one frame on loopback; short: frames the callers' "
              f"own audio clock missed; bot late / phone late: the share of the bot's frames that its audio clock sent, "
              f"and that the callers' audio clocks fetched, {LATE_TICK_MS} ms or more after their time (each side's doing); "
              "cores: the cluster's CPU seconds per second (callers not counted)"]
    for workers, (best, levels) in capacities.items():
        lines += [f" {workers} worker{'s' if workers > 1 else ''}:", CAPACITY_HEAD, *[level.line() for level in levels],
                  f"  most simultaneous calls: {best if best is not None else 'none'}"
                  + (" (the highest tried: raise --max-calls)" if best == max_calls else "")]
        failed = [level for level in levels if not level.passed and (best is None or level.calls > best)]
        if failed:
            lines.append(f"  the next level failed on: {failed[0].why_failed()}")
    lines += full_workers_lines(capacities)
    if 1 in capacities and len(capacities) > 1:
        top = max(capacities)
        lines += ["", f"{top} workers : 1 worker on this machine:"]
        if rates:
            lines.append(f"  call attempts per second {ratio(rates[top][0], rates[1][0])} ({rates[top][0]} / {rates[1][0]})")
        lines.append(f"  simultaneous calls       {ratio(capacities[top][0], capacities[1][0])} "
                     f"({capacities[top][0]} / {capacities[1][0]})")
    return lines + ([""] + soak_lines if soak_lines else [])


def full_workers_lines(capacities: Dict[int, Tuple[Optional[int], List[CapacityLevel]]]) -> List[str]:
    """Issue 21's clean audio: the bot's frames at the callers on the levels where every worker
    held all the calls it can."""
    full = {workers: level for workers, (_, levels) in capacities.items() for level in levels
            if level.calls == workers * MAX_CALLS and len(level.answered) == level.calls}
    if not full:
        return []
    worst = max(level.bad_share for level in full.values())
    return ["", f"the bot's frames late or missing at the callers (jitter buffers of at least {CALLER_JITTER_FLOOR_MS} ms; "
            f"strict: pjsua's own) with every worker holding {MAX_CALLS} calls: "
            + ", ".join(f"{workers} worker{'s' if workers > 1 else ''} {level.bad_share:.3%} (strict {level.strict_share:.3%})"
                        for workers, level in full.items()),
            f"  < {CLEAN_FRAMES:.1%}: {'met' if worst < CLEAN_FRAMES else 'NOT met'}"]


def ratio(many: Optional[int], one: Optional[int]) -> str:
    return f"{many / one:.2f}" if many and one else "n/a"
