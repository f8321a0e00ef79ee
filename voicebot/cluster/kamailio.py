"""The Kamailio front's configuration, generated from the workers' addresses, the trunks allowed
to send calls and the lines' numbers: dispatcher giving each call to the worker with the fewest
calls in progress, OPTIONS health checks and failover to the next worker, pike against floods,
one refusal for everything else, topology hiding."""

import glob
import ipaddress
import os
import secrets
import socket
import string
from pathlib import Path
from typing import Iterable, Tuple

TEMPLATE = Path(__file__).with_name("kamailio.cfg.tmpl")
# With no trunk named, only callers on the front's own machine may call (tests, trying it out).
DEFAULT_TRUNKS = ("127.0.0.1",)


def modules_dir() -> str:
    found = sorted(glob.glob("/usr/lib/*/kamailio/modules/")) + sorted(glob.glob("/usr/lib/kamailio/modules/"))
    if not found:
        raise RuntimeError("Kamailio's modules are not installed: install the Debian package 'kamailio'")
    return found[0]


TCP_ONLY = "tcp:"


def trunk_network(value: str) -> Tuple[ipaddress.IPv4Network, bool]:
    """A trunk as an address or CIDR network ('192.0.2.10', '198.51.100.0/28'), and whether it
    sends over TCP only ('tcp:192.0.2.10'); ValueError otherwise."""
    value = value.strip()
    tcp_only = value.lower().startswith(TCP_ONLY)
    network = ipaddress.ip_network(value[len(TCP_ONLY):] if tcp_only else value, strict=False)
    if network.version != 4:
        raise ValueError(f"{value!r}: the front listens on IPv4 only")
    return network, tcp_only


def trunk_text(value: str) -> str:
    """A trunk as the front's options name it: 'tcp:192.0.2.10/32', '198.51.100.0/28'."""
    network, tcp_only = trunk_network(value)
    return (TCP_ONLY if tcp_only else "") + str(network)


def numbers_regex(numbers: Iterable[str]) -> str:
    """A POSIX regex for Kamailio matching the dialled user part the workers accept: a number
    configured as +N is dialled as +N or N (voicebot.telephony.line), perhaps with user
    parameters (;phone-context=...), which the workers ignore too."""
    alternatives = sorted({("[+]?" + n[1:]) if n.startswith("+") else n for n in numbers})
    if not alternatives:
        raise ValueError("no line has a number: the front would refuse every call")
    return "^(" + "|".join(alternatives) + ")(;.*)?$"


def _mask_key(folder: Path) -> str:
    """topoh's key, made once and kept: a restarted front (or a second one with the same key)
    can still decode the headers of calls in progress."""
    path = folder / "topoh.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(24))
    return path.read_text().strip()


def write_front(folder: Path, host: str, port: int, workers: Iterable[Tuple[str, int]], numbers: Iterable[str],
                trunks: Iterable[str] = DEFAULT_TRUNKS, ping_interval_s: int = 2, failover_ms: int = 2000,
                flood_requests: int = 30, children: int = 2) -> Path:
    """kamailio.cfg, its dispatcher list and address list in `folder`; returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    workers = list(workers)
    listing = folder / "dispatcher.list"
    # "set URI flags priority attrs": duid names the worker whose calls in progress the
    # dispatcher counts (algorithm 10, fewest first). Its list is ordered by priority, highest
    # first (equal ones come out in reverse): a tie goes to the worker named first.
    listing.write_text("".join(f"1 sip:{h}:{p} 0 {len(workers) - n} duid=worker{n + 1}\n"
                               for n, (h, p) in enumerate(workers)))
    # The permissions module's address file, "group address mask port" (port 0: any):
    # group 1 the trunks, group 2 the workers' SIP addresses, group 3 the trunks on TCP only.
    addresses = folder / "addresses.list"
    addresses.write_text("".join(f"{3 if tcp_only else 1} {n.network_address} {n.prefixlen} 0\n"
                                 for n, tcp_only in map(trunk_network, trunks))
                         + "".join(f"2 {socket.gethostbyname(h)} 32 {p}\n" for h, p in workers))
    config = folder / "kamailio.cfg"
    config.write_text(string.Template(TEMPLATE.read_text()).substitute(
        host=host, port=port, modules=modules_dir(), dispatcher_list=listing, address_list=addresses,
        numbers=numbers_regex(numbers), mask_key=_mask_key(folder), ping_interval_s=ping_interval_s,
        failover_ms=failover_ms, flood_requests=flood_requests, children=children))
    return config
