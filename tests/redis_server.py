"""A private Redis server for tests: Debian's redis-server on a free loopback port, keeping
nothing on disk, stopped by itself. The `redis_server` fixture reaches every test through
conftest's pytest_plugins:

    def test_something(redis_server):
        redis_server.url      # redis://127.0.0.1:PORT
        redis_server.stop()   # "Redis unavailable"
        redis_server.start()  # back, same port (empty: nothing was kept)
"""

import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest
import redis

from voicebot import procs
from voicebot.cluster.up import redis_command
from voicebot.ports import free_port


class PrivateRedis:
    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 20) -> None:
        self.process = procs.start(
            [*redis_command("127.0.0.1", self.port, self.folder), "--logfile", str(self.folder / "redis.log")],
            stdin=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}: "
                                       + (self.folder / "redis.log").read_text()[-2000:])
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            procs.stop(self.process)
            self.process = None


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
