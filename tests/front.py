"""`voicebot cluster front` (Kamailio) before the session's bot, started once per test run."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from voicebot import procs
from voicebot.ports import free_port

REPO = Path(__file__).resolve().parents[1]


class Front:
    """`voicebot cluster front` on a free port before the given workers, logging to a file."""

    def __init__(self, folder: Path, workers, *options: str):
        self.port, self.log = free_port(), folder / "kamailio.log"
        command = [sys.executable, "-m", "voicebot.cli", "cluster", "front", "--port", str(self.port),
                   "--folder", str(folder), *options]
        for worker in workers:
            command += ["--worker", f"127.0.0.1:{worker}"]
        self.process = procs.start(command, cwd=REPO,
                                        stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        time.sleep(3)  # an OPTIONS round marks the worker up
        assert self.alive(), self.log.read_text()[-3000:]

    def uri(self, number: str) -> str:
        return f"sip:{number}@127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        procs.stop(self.process)


@pytest.fixture(scope="session")
def front(bot, tmp_path_factory):
    """The front before the session's bot; trunks: the default, 127.0.0.1 only."""
    running = Front(tmp_path_factory.mktemp("front"), [bot.sip_port])
    yield running
    running.stop()
