"""The Kamailio front's configuration, generated from the workers' addresses: dispatcher with
OPTIONS health checks and failover to the next worker, pike against floods."""

import glob
import string
from pathlib import Path
from typing import Iterable, Tuple

TEMPLATE = Path(__file__).with_name("kamailio.cfg.tmpl")


def modules_dir() -> str:
    found = sorted(glob.glob("/usr/lib/*/kamailio/modules/")) + sorted(glob.glob("/usr/lib/kamailio/modules/"))
    if not found:
        raise RuntimeError("Kamailio's modules are not installed: install the Debian package 'kamailio'")
    return found[0]


def write_front(folder: Path, host: str, port: int, workers: Iterable[Tuple[str, int]], ping_interval_s: int = 2,
                failover_ms: int = 2000, flood_requests: int = 30, children: int = 2) -> Path:
    """kamailio.cfg and its dispatcher list in `folder`; returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    listing = folder / "dispatcher.list"
    listing.write_text("".join(f"1 sip:{h}:{p}\n" for h, p in workers))
    config = folder / "kamailio.cfg"
    config.write_text(string.Template(TEMPLATE.read_text()).substitute(
        host=host, port=port, modules=modules_dir(), dispatcher_list=listing, ping_interval_s=ping_interval_s,
        failover_ms=failover_ms, flood_requests=flood_requests, children=children))
    return config
