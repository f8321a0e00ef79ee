"""Free ports for the servers one process starts for another (the action server, the parts of a
cluster, test peers), where the port must be chosen before the server binds it.

A port the kernel hands out for `bind(0)` is free only until someone else binds it: the kernel
may give the same port to the next `bind(0)` or outgoing connection anywhere on the machine
before our server binds it (a CI run lost a whole test module that way). So ports come from
below the kernel's ephemeral range, which it never hands out by itself, and each is claimed
machine-wide for a while, so two processes asking at the same moment get different ports."""

import os
import random
import socket
import tempfile
import time
from pathlib import Path

CLAIMS = Path(tempfile.gettempdir()) / "voicebot-ports"
CLAIM_S = 600  # far longer than any server takes to bind the port it was given
LOWEST = 10000  # below it, registered services and baresip's default RTP ports


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on `host`, claimed for CLAIM_S seconds."""
    lowest, highest = LOWEST, _ephemeral_start() - 1
    if highest - lowest >= 1000:
        for _ in range(100):
            port = random.randint(lowest, highest)
            if _bindable(host, port) and _claim(port):
                return port
    with socket.socket() as sock:  # no room below the ephemeral range, or it is all taken
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(host: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def _claim(port: int) -> bool:
    """Whether this process may have `port`: no other claimed it within CLAIM_S seconds."""
    try:
        CLAIMS.mkdir()
        CLAIMS.chmod(0o1777)  # every user's processes claim here, as in /tmp
    except FileExistsError:
        pass
    claim = CLAIMS / str(port)
    try:
        if time.time() - claim.stat().st_mtime < CLAIM_S:
            return False
        claim.unlink()  # an old claim
    except FileNotFoundError:
        pass
    except OSError:  # another user's claim
        return False
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        return True
    except OSError:  # another process claimed it just now
        return False
