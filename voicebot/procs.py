"""Child processes that cannot outlive the process that started them."""

import shutil
import subprocess
import sys
from typing import List, Sequence

# util-linux's setpriv (Essential in Debian) sets the parent-death signal and execs the command.
# Not Popen's preexec_fn: that runs Python in the forked child of a process whose other threads
# (pjsua, TensorFlow, the store's writer) may hold locks at that moment, and the child can hang
# before it ever execs, and the thread that started it with it (a CI run lost its action server's
# restart and a retraining that way).
SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def dying_with_parent(command: Sequence[str]) -> List[str]:
    """`command`, SIGTERMed when the thread that starts it exits, however it exits (once
    setpriv has run: a parent killed within its first millisecond leaves the child)."""
    return [SETPRIV, "--pdeathsig", "TERM", "--", *command] if SETPRIV else list(command)


def start(command: Sequence[str], **popen) -> subprocess.Popen:
    """Popen of a child that dies with the thread that starts it: start it from a thread that
    lives as long as the child should (the main thread, a supervisor)."""
    return subprocess.Popen(dying_with_parent(command), **popen)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
