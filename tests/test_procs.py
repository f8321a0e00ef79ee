"""Children started with procs.start end with the process that started them, however it ends."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from voicebot import procs

PARENT = """
from voicebot import procs
child = procs.start(["sleep", "120"])
print(child.pid, flush=True)
import time
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:  # a zombie has ended: this container's PID 1 may not reap it
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_child_ends_when_its_parent_is_killed():
    assert procs.SETPRIV, "setpriv (util-linux) is missing"
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + 10  # setpriv sets the signal, then becomes the command
        while Path(f"/proc/{child}/comm").read_text().strip() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert alive(child)
        os.kill(parent.pid, signal.SIGKILL)  # no handler, no clean-up of its own
        parent.wait()
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        procs.stop(parent)
