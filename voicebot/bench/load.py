"""`voicebot bench load`: do a burst of chats and a flood of large requests slow the calls?

A `voicebot serve` on the Korean test line (Vosk, the streaming path: its turns are the quickest,
so a delay shows) takes one call of `turns` turns twice: alone, and while `chats` text clients
each send a turn as soon as the last is answered (waiting Retry-After when told to send again)
and 1 MB bodies arrive 20 a second, from a process at lower priority. A probe asks /health
every 0.1 s throughout.
The figures, alone and under load side by side: the call's turn latency at the caller and its
dialogue part, /health's answer time, the text turns answered and refused, and how quickly a
large body is refused. Clients, caller and bot share the machine's cores.
"""

import asyncio
import contextlib
import json
import multiprocessing
import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import aiohttp

from voicebot.bench.call import LINES, BotProcess, join_call, keep, pct, place_calls, prepare
from voicebot.config.settings import TextChannel
from voicebot.testing import korean
from voicebot.testing.phone import BARGE_IN_AFTER_S

LINE = LINES["korean"]
TENANT = "ko-test"
LARGE_BYTES = 1024 * 1024
LARGE_PER_S = 20
CLIENTS_NICE = 10
PROBE_EVERY_S = 0.1
WARM_UP_S = 5.0  # the chats are all under way before the call


@dataclass
class Load:
    """What the load's clients saw, in ms."""
    text_ms: List[float] = field(default_factory=list)  # answered text turns
    busy: int = 0  # text turns told to send again (503)
    failed: List[str] = field(default_factory=list)  # anything else
    large_ms: List[float] = field(default_factory=list)  # large bodies refused (413, or closed unread)


@contextlib.contextmanager
def probing(bot: BotProcess) -> Iterator[List[float]]:
    """/health's answer times, asked every PROBE_EVERY_S from a thread of this process."""
    times: List[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.wait(PROBE_EVERY_S):
            started = time.monotonic()
            with urllib.request.urlopen(bot.url + "/health", timeout=60) as answer:
                answer.read()
            times.append(1000 * (time.monotonic() - started))
    thread = threading.Thread(target=probe, name="probe", daemon=True)
    thread.start()
    try:
        yield times
    finally:
        stop.set()
        thread.join(60)


@contextlib.contextmanager
def loading(bot: BotProcess, chats: int) -> Iterator[Load]:
    """The chats and the large bodies from a process of their own at a lower priority: on a
    real installation they come from elsewhere, so here they must not take the bot's cores."""
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    process = context.Process(target=_clients, args=(bot.url, bot.token, chats, stop, results), daemon=True)
    process.start()
    load = Load()
    try:
        yield load
    finally:
        stop.set()
        load.__dict__.update(results.get(timeout=180).__dict__)
        process.join(30)


def _clients(url: str, token: str, chats: int, stop, results) -> None:
    os.nice(CLIENTS_NICE)
    load = Load()
    try:
        asyncio.run(_load(url, token, chats, stop, load))
    except Exception as error:  # the figures so far, and why they stopped
        load.failed.append(f"the clients stopped: {error!r}")
    results.put(load)


async def _load(url: str, token: str, chats: int, stop, load: Load) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(url, headers=headers, connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        await asyncio.gather(*[_chat(http, load, stop) for _ in range(chats)], _large_bodies(url, token, load, stop))


async def _chat(http: aiohttp.ClientSession, load: Load, stop) -> None:
    """A chat sends its next turn as soon as the last is answered."""
    async with http.post(f"/lines/{TENANT}/conversations") as answer:
        conversation = (await answer.json())["conversation_id"]
    while not stop.is_set():
        started = time.monotonic()
        async with http.post(f"/lines/{TENANT}/conversations/{conversation}/messages",
                             json={"text": korean.ASK_OPENING_HOURS}) as answer:
            await answer.read()
        if answer.status == 200:
            load.text_ms.append(1000 * (time.monotonic() - started))
        elif answer.status == 503:
            load.busy += 1
            await asyncio.sleep(float(answer.headers.get("Retry-After", "2")))
        else:
            load.failed.append(f"text turn: {answer.status}")


async def _large_bodies(url: str, token: str, load: Load, stop) -> None:
    host, port = url.rsplit("/", 1)[1].split(":")
    head = (f"POST /lines/{TENANT}/conversations/x/messages HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {LARGE_BYTES}\r\n\r\n").encode()
    while not stop.is_set():
        started = time.monotonic()
        status = await _send_large(host, int(port), head)
        if status in ("413", "closed"):
            load.large_ms.append(1000 * (time.monotonic() - started))
        else:
            load.failed.append(f"large body: {status}")
        await asyncio.sleep(max(0.0, started + 1 / LARGE_PER_S - time.monotonic()))


async def _send_large(host: str, port: int, head: bytes) -> str:
    """What a 1 MB body got: its status, or "closed" (the server answered and closed before
    reading it, and the socket lost the answer)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head + b" " * LARGE_BYTES)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        return line.split()[1].decode() if line.startswith(b"HTTP/") else "closed"
    except ConnectionError:
        return "closed"
    finally:
        writer.close()


def call_turns(bot: BotProcess, turns: int, raw: List[dict], phase: str) -> Tuple[List[float], List[float]]:
    """One call of `turns` barge-in turns: latency at the caller and the dialogue's part, in ms."""
    script = ["--barge-in", "--say", LINE.question] * turns
    [timeline] = place_calls(bot.uri, script, 1, timeout=60 + 5 * len(script), lang=LINE.caller_lang)
    if not timeline.get("connected"):
        raise RuntimeError(f"the bot did not answer: {timeline}; see {bot.log}")
    times, _ = join_call(timeline, keep(raw, phase, [timeline], bot)[0])
    return ([t.latency_ms for t in times if t.latency_ms is not None],
            [t.bot["dialogue_ms"] for t in times if t.bot])


def run(root: Path, chats: int, turns: int, say: Callable[[str], None], text: Optional[dict] = None) -> List[str]:
    """`text`: text channel settings instead of the defaults, to compare."""
    text = text or {}
    root.mkdir(parents=True, exist_ok=True)
    config, number, serve_args = prepare(LINE, root)
    if text:
        with config.open("a", encoding="utf-8") as settings:
            settings.write("\ntext: " + json.dumps(text) + "\n")
    bot = BotProcess(config, root / "bench.sqlite3", root / "bot.log", LINE.clock, number, serve_args)
    raw: List[dict] = []
    try:
        bot.wait_ready()
        say(f"alone: one call of {turns} turns")
        with probing(bot) as alone_health:
            alone_call = call_turns(bot, turns, raw, "alone")
        say(f"under load: {chats} chats and {LARGE_PER_S} bodies of 1 MB a second, then the same call")
        with probing(bot) as loaded_health, loading(bot, chats) as load:
            time.sleep(WARM_UP_S)
            loaded_call = call_turns(bot, turns, raw, "under load")
    finally:
        bot.stop()
        (root / "calls.json").write_text(json.dumps(raw, ensure_ascii=False, indent=1), encoding="utf-8")
    return figures(alone_call, alone_health, loaded_call, loaded_health, load, chats, turns, TextChannel(**text))


def figures(alone_call, alone_health: List[float], loaded_call, loaded_health: List[float], loaded: Load,
            chats: int, turns: int, settings: TextChannel) -> List[str]:
    def row(label: str, before: List[float], after: List[float]) -> str:
        cells = "".join(f"{pct(values, q):>7.0f}" for values in (before, after) for q in (50, 95, 100))
        ratio = pct(after, 50) / pct(before, 50) if before and pct(before, 50) else float("nan")
        return f"  {label:<30}{cells}{ratio:>8.2f}"

    text = loaded.text_ms
    return [
        f"{LINE.title}, {LINE.recogniser}; one call of {turns} turns (each spoken {BARGE_IN_AFTER_S} s into the "
        f"bot's answer), alone and while {chats} chats send turns and {LARGE_PER_S} bodies of "
        f"{LARGE_BYTES // 1024} kB arrive a second (clients at nice {CLIENTS_NICE} on the same machine); text "
        f"turns at once {settings.turns_at_once}, {settings.max_waiting} waiting, waiting for calls at most "
        f"{settings.wait_for_calls_s:g} s"
        + ("" if settings == TextChannel() else " (defaults: " + ", ".join(f"{k} {v}" for k, v in TextChannel()) + ")"),
        f"  {'(ms)':<30}{'alone':>21}{'under load':>21}{'p50':>8}",
        f"  {'':<30}" + f"{'p50':>7}{'p95':>7}{'max':>7}" * 2 + f"{'ratio':>8}",
        row("call: turn latency at caller", alone_call[0], loaded_call[0]),
        row("call: NLU and dialogue", alone_call[1], loaded_call[1]),
        row("/health answer", alone_health, loaded_health),
        f"  text turns: {len(text)} answered (p50 {pct(text, 50):.0f} ms, p95 {pct(text, 95):.0f} ms), "
        f"{loaded.busy} told to send again (503)",
        f"  {LARGE_BYTES // 1024} kB bodies: {len(loaded.large_ms)} refused (413, or closed unread) "
        f"(p50 {pct(loaded.large_ms, 50):.0f} ms, max {pct(loaded.large_ms, 100):.0f} ms)",
        f"  other failures: {len(loaded.failed)}" + (f" ({sorted(set(loaded.failed))[:5]})" if loaded.failed else ""),
    ]
