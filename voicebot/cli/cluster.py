"""Several processes for one installation: `cluster` (the SIP front, a whole cluster on one
machine) and `rasa serve` (a language's Rasa shared by several workers)."""

import os
from pathlib import Path
from typing import Optional

import click

from voicebot.cli import Context, main
from voicebot.cli.common import _action_server, _languages


@main.group()
def cluster() -> None:
    """Several bot workers behind one SIP front."""


def _address(value: str) -> tuple:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not HOST:PORT")
    return host, int(port)


def _trunk(value: str) -> str:
    from voicebot.cluster.kamailio import trunk_text

    try:
        return trunk_text(value)
    except ValueError as error:
        raise click.BadParameter(str(error))


@cluster.command("front")
@click.option("--worker", "workers", multiple=True, required=True, callback=lambda c, p, v: [_address(w) for w in v],
              help="A bot worker's SIP address, HOST:PORT (repeat for each worker).")
@click.option("--trunk", "trunks", multiple=True, default=("127.0.0.1",), show_default=True,
              callback=lambda c, p, v: [_trunk(t) for t in v],
              help="An address or CIDR network allowed to send calls (repeat for each trunk); "
                   "anyone else gets 403 to everything. 'tcp:ADDRESS' for a trunk that sends over TCP "
                   "only: UDP from its address, which anyone can forge, is then dropped.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where callers reach the front.")
@click.option("--port", default=5060, show_default=True, type=click.IntRange(1, 65535))
@click.option("--flood-requests", default=30, show_default=True, type=click.IntRange(5, 100000),
              help="Requests in 2 s from one address above which its requests are dropped (pike); "
                   "mind a busy trunk.")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("var/cluster"),
              show_default=True, help="Where the generated Kamailio configuration goes.")
@click.option("--check", is_flag=True, help="Only write and check the configuration.")
@click.pass_obj
def cluster_front(obj: Context, workers: list, trunks: list, host: str, port: int, flood_requests: int,
                  folder: Path, check: bool) -> None:
    """Run Kamailio in front of the workers: calls from the trunks to the lines' numbers spread
    over the workers that answer OPTIONS, a worker that fails or does not answer is skipped,
    floods from one address are dropped, everything else gets one refusal, and the workers'
    addresses are hidden from callers."""
    import shutil
    import subprocess

    from voicebot.cluster.kamailio import write_front

    if shutil.which("kamailio") is None:
        raise click.ClickException("kamailio is not installed: install the Debian package 'kamailio'")
    numbers = [n for tenant in obj.inst.tenants.values() for n in tenant.numbers]
    config = write_front(folder.resolve(), host, port, workers, numbers, trunks, flood_requests=flood_requests)
    checked = subprocess.run(["kamailio", "-c", "-f", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise click.ClickException(f"Kamailio refused {config}:\n{checked.stderr[-2000:]}")
    click.echo(f"front on sip:{host}:{port} for " + ", ".join(f"{h}:{p}" for h, p in workers)
               + f"; trunks {', '.join(trunks)} ({config})")
    if not check:
        os.execvp("kamailio", ["kamailio", "-DD", "-E", "-f", str(config)])


@cluster.command("up")
@click.option("--workers", type=click.IntRange(1, 32),
              help="Bot workers (default: as many as this machine's cores and memory carry).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where every part listens.")
@click.option("--port", default=5060, show_default=True, type=click.IntRange(1, 65535), help="The front's SIP port.")
@click.option("--redis", "redis_url", metavar="redis://HOST:PORT", help="A Redis to use (default: start one).")
@click.option("--trunk", "trunks", multiple=True, help="Passed to the front (default there: 127.0.0.1).")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("var/cluster"),
              show_default=True, help="Logs, the front's configuration and cluster.json.")
@click.pass_obj
def cluster_up(obj: Context, workers: Optional[int], host: str, port: int, redis_url: Optional[str],
               trunks: tuple, folder: Path) -> None:
    """Run a whole cluster on this machine: Redis, a Rasa server per language, WORKERS bot
    workers and the Kamailio front; parts that exit are started again. Records go to the
    configured store_url (use PostgreSQL beyond one machine)."""
    from voicebot.cluster.up import Cluster, machine, workers_for

    if workers is None:
        cores, available_mb = machine()
        workers = workers_for(cores, available_mb, len(obj.inst.languages))
        click.echo(f"{workers} workers for {cores} cores and {available_mb / 1024:.1f} GB available "
                   f"({len(obj.inst.languages)} Rasa servers beside them); --workers to choose")
    try:
        Cluster(obj.inst, workers, host, port, folder.resolve(), redis_url, trunks).run(report=click.echo)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None


@main.group()
def rasa() -> None:
    """A language's Rasa as its own server, shared by several bot workers."""


@rasa.command("serve")
@click.option("--lang", required=True, help="The language whose model this server runs.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5005, show_default=True, type=click.IntRange(1, 65535))
@click.option("--redis", "redis_url", metavar="redis://HOST:PORT",
              help="Keep conversations and their locks in Redis, so several servers share them.")
@click.option("--actions-port", type=int, default=0, help="Port for its action server (0: any free port).")
@click.pass_obj
def rasa_serve(obj: Context, lang: str, host: str, port: int, redis_url: Optional[str], actions_port: int) -> None:
    """Serve LANG's model over HTTP for workers started with --rasa-server LANG=URL (the API
    wants the token in VOICEBOT_RASA_TOKEN, if that is set)."""
    from voicebot.dialogue import rasa_server

    _languages(obj.inst, lang)
    with _action_server(obj, actions_port, supervise=True) as (url, _):
        click.echo(f"Rasa for {lang} on http://{host}:{port}" + (f", conversations in {redis_url}" if redis_url else ""))
        rasa_server.serve(obj.inst, lang, host, port, url, redis_url, os.environ.get("VOICEBOT_RASA_TOKEN"))
