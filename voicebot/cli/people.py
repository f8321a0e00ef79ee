"""People: `users` (dashboard logins and API tokens) and `agents` (live agents' SIP logins)."""

from typing import Tuple

import click

from voicebot.cli import Context, main
from voicebot.cli.common import _records


@main.group()
def users() -> None:
    """Dashboard logins and API tokens."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["operator", "trainer", "agent", "admin"]))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 10 characters (asked for when not given; or pipe it in on standard input).")
@click.option("--line", "lines", multiple=True, metavar="LINE",
              help="A line whose topics, answers and models the login may change (repeat for more; "
                   "default: every line).")
@click.pass_obj
def users_add(obj: Context, name: str, role: str, password: str, lines: Tuple[str, ...]) -> None:
    """Add a login, or set a login's role, lines and password (its sessions end)."""
    from voicebot.dashboard.auth import Logins

    for line_id in lines:
        if line_id not in obj.inst.tenants:
            raise click.BadParameter(f"no line {line_id!r}; configured: {', '.join(obj.inst.tenants)}",
                                     param_hint="--line")
    try:
        Logins(_records(obj.inst).session).add_user(name, role, password, list(lines) or None)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--password" if "password" in str(error) else "--role")
    click.echo(f"{name} can sign in at /dashboard as {role}" + (f" for {', '.join(lines)}" if lines else ""))


@users.command("token")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["operator", "trainer", "agent", "admin", "channel"]),
              help="channel: a front end that carries text conversations, nothing else.")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 3650), help="It stops working after.")
@click.pass_obj
def users_token(obj: Context, name: str, role: str, days: int) -> None:
    """Print a new API token for a machine (a PBX, a wallboard, a chat front end); the JSON API
    wants it as "Authorization: Bearer TOKEN". A new token of the same name replaces the old."""
    from voicebot.dashboard.auth import Logins

    try:
        token = Logins(_records(obj.inst).session).issue_token(name, role, days)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME")
    click.echo(token)


@users.command("remove")
@click.argument("name")
@click.pass_obj
def users_remove(obj: Context, name: str) -> None:
    """Remove a login or an API token; its sessions end at once."""
    from voicebot.dashboard.auth import Logins

    if not Logins(_records(obj.inst).session).remove(name):
        raise click.ClickException(f"no login or token named {name!r}")
    click.echo(f"{name} removed")


@users.command("list")
@click.pass_obj
def users_list(obj: Context) -> None:
    from voicebot.dashboard.auth import NO_PASSWORD, Logins

    for user in Logins(_records(obj.inst).session).users():
        click.echo(f"{user.name}\t{user.role}" + (f"\tlines {user.lines}" if user.lines else "")
                   + ("\t(API token)" if user.password_hash == NO_PASSWORD else ""))


@main.group()
def agents() -> None:
    """Live agents who answer queued callers."""


@agents.command("hash-password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.pass_obj
def agents_hash_password(obj: Context, username: str, password: str) -> None:
    """Print the ha1 to put in voicebot.yml for USERNAME (the password itself is never stored)."""
    from voicebot.queue.registrar import ha1

    if len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="--password")
    realm = obj.inst.settings.agent_registrar.realm
    click.echo(f"{username}: {{username: {username}, ha1: {ha1(username, realm, password)}, queues: [...], name: ...}}")
