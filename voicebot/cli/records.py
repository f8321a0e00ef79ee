"""The call records: `records` (export, delete, purge) and `report`."""

import json
from typing import Optional

import click

from voicebot.cli import Context, main
from voicebot.cli.common import _records


@main.group()
def records() -> None:
    """Call records: data subject requests and the retention purge."""


@records.command("export")
@click.argument("call_id")
@click.pass_obj
def records_export(obj: Context, call_id: str) -> None:
    """Print everything stored about one call or conversation, as JSON."""
    data = _records(obj.inst).export(call_id)
    if data is None:
        raise click.ClickException(f"no call {call_id!r} in the store")
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@records.command("delete")
@click.argument("call_id")
@click.pass_obj
def records_delete(obj: Context, call_id: str) -> None:
    """Delete one call or conversation and everything stored with it."""
    deleted = _records(obj.inst).delete(call_id)
    if not deleted["calls"]:
        raise click.ClickException(f"no call {call_id!r} in the store")
    click.echo("deleted " + ", ".join(f"{n} {table}" for table, n in deleted.items()))


@records.command("purge")
@click.pass_obj
def records_purge(obj: Context) -> None:
    """Delete records older than each line's retention_days (`voicebot serve` does it hourly)."""
    for tenant, count in _records(obj.inst).purge_expired(obj.inst.tenants.values()).items():
        click.echo(f"{tenant}: {count} calls deleted")


@main.command()
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
              help="From this day (UTC), e.g. 2026-11-01.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), help="Up to this day (default: now).")
@click.option("--line", "line_id", help="Only this line (tenant) id.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--csv", "as_csv", type=click.Choice(["figures", "calls"]),
              help="Print the figures, or the calls of the period as stored, as CSV.")
@click.pass_obj
def report(obj: Context, since, until, line_id: Optional[str], as_json: bool, as_csv: Optional[str]) -> None:
    """Containment, handoff rate by reason and topic, service level and abandonment."""
    from voicebot.store.csv_export import calls_csv, figures_csv
    from voicebot.store.report import format_report
    from voicebot.store.record import utcnow

    if line_id:
        obj.inst.tenant(line_id)
    store = _records(obj.inst)
    if as_csv == "calls":
        click.echo(calls_csv(store.calls_between(since, until or utcnow(), line_id)), nl=False)
        return
    service_levels = {q: queue.service_level_s for q, queue in obj.inst.settings.queues.items()}
    figures = store.report(since, until, line_id, service_levels)
    if as_csv:
        click.echo(figures_csv(figures), nl=False)
    else:
        click.echo(json.dumps(figures.as_dict(), indent=2) if as_json else format_report(figures))


@main.command("alert-rules")
@click.pass_obj
def alert_rules_command(obj: Context) -> None:
    """Print Prometheus alert rules for each queue's thresholds (voicebot.yml: queues.<id>.alert_when)."""
    import yaml

    from voicebot.queue.health import alert_rules

    click.echo("# Made by `voicebot alert-rules` from voicebot.yml (queues.<id>.alert_when): make it again after a change.\n"
               + yaml.safe_dump(alert_rules(obj.inst.settings), sort_keys=False, allow_unicode=True, width=200), nl=False)
