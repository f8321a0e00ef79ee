"""`voicebot bench handoff`: how fast a caller reaches an agent through the bot's own queue.

Real processes on loopback: a `voicebot serve` with the demo lines and one agent, a baresip
softphone that registers with the bot and answers at once (voicebot/testing/agents.py); callers are
`voicebot call` processes that press 0 on the Danish line. Two phases, one call at a time:

- Handoff: the agent is free; from the bot's handoff decision (the dialogue's reply) to the
  agent's INVITE leaving the bot, and to its 180 Ringing arriving (the phone rings).
- Two-way audio: the agent is busy with another caller while the measured one queues and hears
  hold music; from the agent's 200 OK (answer) to both audio directions joined in the bridge.
  The whisper is off here: with it on, the agent hears who is calling first (its length adds).
"""

import json
import threading
import time
from pathlib import Path
from typing import Callable, List

from voicebot.bench.call import BotProcess, pct, place_calls, row
from voicebot.ports import free_port
from voicebot.testing import agents

CLOCK = "2026-11-24T10:00:00+01:00"  # a Tuesday morning in Denmark: agents at work
DEMO_KOMMUNE = "+4570101010"
AGENT, PASSWORD = "bench", "bench-agent-password"
BUSY_S = 14.0  # in phase two, the agent talks this long to a caller while the next one queues
TARGET_HANDOFF_MS, TARGET_TWO_WAY_MS = 300, 200
RECORDS: List[dict] = []  # the bot's record of every call placed, for calls.json


def run(root: Path, calls: int, say: Callable[[str], None]) -> List[str]:
    """Builds the installation under root, runs both phases, returns the result lines; the
    bot's record of every call goes to root/calls.json."""
    config = agents.build_demo(root, {AGENT: PASSWORD}, whisper=False, ring_timeout_s=10, wrap_up_s=0,
                              announce_every_s=60)
    registrar_port = free_port()
    bot = BotProcess(config, root / "bench.sqlite3", root / "bot.log", clock=CLOCK, number=DEMO_KOMMUNE,
                     extra_args=["--registrar-port", str(registrar_port)])
    try:
        bot.wait_ready()
        with agents.BaresipAgent(registrar_port, AGENT, PASSWORD, root / "agent"):
            wait_for_agent(bot, "available")
            say(f"handoff: {calls} calls, the agent free")
            sent, ringing = handoff_phase(bot, calls)
            say(f"two-way audio: {calls} calls, the agent freed while the caller is on hold")
            two_way = two_way_phase(bot, calls)
    finally:
        bot.stop()
        (root / "calls.json").write_text(json.dumps(RECORDS, ensure_ascii=False, indent=1), encoding="utf-8")
    return [f"Demo Kommune line, one baresip agent (auto-answer, G.722), whisper off; {calls} calls per phase.",
            f"  {'':<34}{'p50':>7}{'p95':>7}{'max':>7}   (ms)",
            row("decision -> INVITE sent", sent),
            row("decision -> agent rings (180)", ringing),
            row("agent answers -> two-way audio", two_way),
            f"Targets: handoff p95 < {TARGET_HANDOFF_MS} ms: {verdict(pct(ringing, 95) < TARGET_HANDOFF_MS)}; "
            f"two-way audio p95 < {TARGET_TWO_WAY_MS} ms: {verdict(pct(two_way, 95) < TARGET_TWO_WAY_MS)}"]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def agent_state(bot: BotProcess) -> str:
    return next(a["state"] for a in bot.get("/queues")[1]["agents"] if a["id"] == AGENT)


def wait_for_agent(bot: BotProcess, state: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while agent_state(bot) != state:
        if time.monotonic() > deadline:
            raise RuntimeError(f"agent {AGENT} not {state}: {bot.get('/queues')[1]}")
        time.sleep(0.1)


def one_call(bot: BotProcess, wait_s: float) -> dict:
    """A caller presses 0 during the greeting and stays wait_s; the bot's record of the call."""
    timeline = place_calls(bot.uri, ["--barge-in", "--dtmf", "0", "--wait", str(wait_s)], 1, wait_s + 30)[0]
    record = bot.call_record(timeline["call_id"])
    if record is None:
        raise RuntimeError(f"no record of call {timeline['call_id']}")
    RECORDS.append(record)
    return record


def first(record: dict, kind: str) -> dict:
    found = [e for e in record["events"] if e["event"] == kind]
    if not found:
        raise RuntimeError(f"call {record['call_id']} has no {kind} event: {record['events']}")
    return found[0]


def handoff_phase(bot: BotProcess, calls: int):
    sent, ringing = [], []
    for _ in range(calls):
        record = one_call(bot, 3)
        sent.append(first(record, "agent_ringing")["handoff_ms"])
        ringing.append(first(record, "agent_alerting")["handoff_ms"])
        wait_for_agent(bot, "available")
    return sent, ringing


def two_way_phase(bot: BotProcess, calls: int) -> List[float]:
    """Each measured caller queues while the agent talks to an earlier caller, so that the agent
    answers them on hold (as in a busy centre), not during the bot's handoff sentence."""
    two_way = []
    for _ in range(calls):
        earlier: List[dict] = []
        talking = threading.Thread(target=lambda: earlier.append(one_call(bot, BUSY_S)))
        talking.start()
        wait_for_agent(bot, "busy")
        record = one_call(bot, BUSY_S)
        talking.join()
        kinds = [e["event"] for e in record["events"]]
        if "queue_position" not in kinds or kinds.index("queue_position") > kinds.index("queue_answered"):
            raise RuntimeError(f"the agent answered before the caller was on hold: {kinds}")
        two_way.append(first(record, "bridged")["two_way_ms"])
        wait_for_agent(bot, "available")
    return two_way
