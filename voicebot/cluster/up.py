"""`voicebot cluster up`: the whole cluster on one machine, for trying and testing. Redis (unless
one is given), a Rasa server per language, N bot workers and the Kamailio front, each its own
process with its log in the folder; a component that exits is started again (a worker that
comes back rejoins the front when it answers OPTIONS). What runs where is in cluster.json."""

import json
import logging
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from voicebot import procs
from voicebot.channels.http import CONVERSATION_KEY_ENV
from voicebot.config import Installation
from voicebot.dialogue.action_server import is_healthy
from voicebot.ports import free_port
from voicebot.store import RecordStore

logger = logging.getLogger(__name__)

# How many workers a machine carries unless told (workers_for): calls per core to aim for (a
# worker holds MAX_CALLS; `voicebot bench cluster` carried 20 calls with speech both ways on 5
# workers and 2 cores, the cluster using half a core, with the callers on the same cores), and
# each part's resident memory as measured in its soak (worker 650 MB, Rasa server 960 MB), with room.
CALLS_PER_CORE = 10
WORKER_MB, RASA_SERVER_MB = 700, 1000
START_TIMEOUT_S = 300
RESTART_AFTER_S = 1.0


@dataclass
class Component:
    name: str
    command: List[str]
    health_url: Optional[str] = None  # answers 200 once it is ready
    ports: Dict[str, int] = field(default_factory=dict)
    process: Optional[subprocess.Popen] = None
    restarts: int = 0
    started_at: float = 0.0  # time.monotonic() of the last start
    ready_s: Optional[float] = None  # from the first start to healthy

    def start(self, folder: Path, env: dict) -> None:
        self.started_at = time.monotonic()
        log = open(folder / f"{self.name}.log", "ab")
        self.process = procs.start(self.command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
        log.close()

    def wait_ready(self, folder: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.health_url and not is_healthy(self.health_url, timeout=2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (folder / f"{self.name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} did not start; the end of {folder / self.name}.log:\n{tail}")
            time.sleep(0.5)
        self.ready_s = round(time.monotonic() - self.started_at, 2)

    def as_dict(self) -> dict:
        return {"pid": self.process.pid if self.process else None, "restarts": self.restarts,
                "ready_s": self.ready_s, **self.ports}


def redis_command(host: str, port: int, folder: Path) -> List[str]:
    """redis-server keeping nothing on disk: the workers and Rasa servers write their state back
    when it returns empty."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed: install the Debian package 'redis-server' "
                           "(scripts/install.sh does) or give --redis")
    return ["redis-server", "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)]


def workers_for(cores: int, available_mb: float, languages: int) -> int:
    """As many workers as the cores carry CALLS_PER_CORE calls with, as far as the memory left
    beside the Rasa servers holds them; at least one."""
    from voicebot.telephony.sip import MAX_CALLS

    by_cores = math.ceil(cores * CALLS_PER_CORE / MAX_CALLS)
    by_memory = int((available_mb - languages * RASA_SERVER_MB) // WORKER_MB)
    return max(1, min(by_cores, by_memory))


def machine() -> tuple:
    """This machine's cores (those this process may run on) and available memory in MB."""
    with open("/proc/meminfo") as meminfo:
        available_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
    return len(os.sched_getaffinity(0)), available_kb / 1024


class Cluster:
    def __init__(self, inst: Installation, workers: int, host: str, port: int, folder: Path,
                 redis_url: Optional[str] = None, trunks: tuple = ()):
        self.inst, self.host, self.port, self.folder = inst, host, port, folder
        self.redis_url, self.trunks = redis_url, trunks
        self.components = self._plan(workers)
        # The workers share text conversations (a key to sign their ids) and the agent queue (Redis).
        self.env = {CONVERSATION_KEY_ENV: secrets.token_hex(32), **os.environ,
                    "VOICEBOT_CONFIG": str(inst.settings_file), "VOICEBOT_REDIS_URL": self.redis_url}
        self._stopping = False

    def _voicebot(self, *args: str) -> List[str]:
        return [sys.executable, "-m", "voicebot.cli", *args]

    def _plan(self, workers: int) -> List[Component]:
        components = []
        if not self.redis_url:
            redis_port = free_port(self.host)
            self.redis_url = f"redis://{self.host}:{redis_port}"
            components.append(Component("redis", redis_command(self.host, redis_port, self.folder),
                                        ports={"port": redis_port}))
        rasa_urls = {}
        for lang in self.inst.languages:
            port = free_port(self.host)
            rasa_urls[lang] = f"http://{self.host}:{port}"
            components.append(Component(f"rasa-{lang}", self._voicebot(
                "rasa", "serve", "--lang", lang, "--host", self.host, "--port", str(port), "--redis", self.redis_url),
                health_url=rasa_urls[lang], ports={"http": port}))
        rasa_args = [arg for lang, url in rasa_urls.items() for arg in ("--rasa-server", f"{lang}={url}")]
        for n in range(1, workers + 1):
            ports = {"http": free_port(self.host), "sip": free_port(self.host), "registrar": free_port(self.host)}
            components.append(Component(f"worker-{n}", self._voicebot(
                "serve", "--host", self.host, "--port", str(ports["http"]), "--sip-port", str(ports["sip"]),
                "--registrar-port", str(ports["registrar"]), *rasa_args),
                health_url=f"http://{self.host}:{ports['http']}/health", ports=ports))
        front = ["cluster", "front", "--host", self.host, "--port", str(self.port), "--folder", str(self.folder / "front")]
        front += [arg for c in components if c.name.startswith("worker-") for arg in ("--worker", f"{self.host}:{c.ports['sip']}")]
        front += [arg for trunk in self.trunks for arg in ("--trunk", trunk)]
        components.append(Component("front", self._voicebot(*front), ports={"sip": self.port}))
        return components

    def run(self, report=print) -> None:
        """Start everything in order, then keep it running until SIGTERM or SIGINT."""
        self.folder.mkdir(parents=True, exist_ok=True)
        signal.signal(signal.SIGTERM, lambda *_: self._stop_soon())
        signal.signal(signal.SIGINT, lambda *_: self._stop_soon())
        try:
            RecordStore(self.inst.settings.store_url, self.inst.root).close()  # migrated once, before the workers
            # Rasa servers load in parallel, then the workers, then the front before them.
            for stage in (("redis", "rasa-"), ("worker-",), ("front",)):
                started = [c for c in self.components if c.name.startswith(stage)]
                for component in started:
                    component.start(self.folder, self.env)
                for component in started:
                    component.wait_ready(self.folder)
                    report(f"{component.name} ready after {component.ready_s:.1f} s "
                           + " ".join(f"{k}={v}" for k, v in component.ports.items()))
            self._write_state(ready=True)
            report(f"cluster ready: calls to sip:NUMBER@{self.host}:{self.port}; state in {self.folder / 'cluster.json'}")
            self._supervise(report)
        finally:
            self.stop()

    def _supervise(self, report) -> None:
        while not self._stopping:
            for component in self.components:
                code = component.process.poll()
                if code is not None and not self._stopping:
                    report(f"{component.name} exited ({code}); starting it again")
                    time.sleep(RESTART_AFTER_S)
                    component.restarts += 1
                    component.start(self.folder, self.env)
                    self._write_state(ready=True)
            time.sleep(0.5)

    def _stop_soon(self) -> None:
        self._stopping = True

    def stop(self) -> None:
        self._stopping = True
        for component in reversed(self.components):
            if component.process is not None:
                procs.stop(component.process)
        self._write_state(ready=False)

    def _write_state(self, ready: bool) -> None:
        state = {"ready": ready, "front": f"{self.host}:{self.port}", "redis": self.redis_url,
                 "components": {c.name: c.as_dict() for c in self.components}}
        temporary = self.folder / "cluster.json.new"
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.folder / "cluster.json")

