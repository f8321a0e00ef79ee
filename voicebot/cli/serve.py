"""Running the bot and talking to it: `serve`, `chat`, `demo`, and `call` (the test phone)."""

import asyncio
import sys
from pathlib import Path
from typing import Optional

import click

from voicebot.cli import Context, main
from voicebot.cli.common import _action_server


@main.command()
@click.option("--host", help="Address for the HTTP text channel (default from voicebot.yml).")
@click.option("--port", type=int, help="Port for the HTTP text channel.")
@click.option("--actions-port", type=int, help="Port for the spawned action server (0: any free port).")
@click.option("--sip-port", type=int, help="Port for the SIP line, UDP and TCP (default from voicebot.yml).")
@click.option("--registrar-port", type=int, help="Port where agents' softphones register (UDP).")
@click.option("--no-sip", is_flag=True, help="Text channel only, no phone line.")
@click.option("--rasa-server", "rasa_servers", multiple=True, metavar="LANG=URL", callback=lambda c, p, v: _rasa_servers(v),
              help="A language's Rasa server (voicebot rasa serve), instead of its model in this process (repeatable).")
@click.option("--line", "line_ids", multiple=True, metavar="ID",
              help="Serve only this line (repeatable; default all): only its language's model is loaded.")
@click.option("--worker", "worker_name", help="This process's name in the call records (default HOST:HTTP-PORT): "
                                              "started again under it, it ends the calls it left open.")
@click.pass_obj
def serve(obj: Context, host: Optional[str], port: Optional[int], actions_port: Optional[int],
          sip_port: Optional[int], registrar_port: Optional[int], no_sip: bool, rasa_servers: dict,
          line_ids: tuple, worker_name: Optional[str]) -> None:
    """Run the phone line (SIP), the HTTP text channel and the action server."""
    from voicebot.app import Bot, ListenError, ServeOptions

    if line_ids:
        obj.serve_only(line_ids)
    options = ServeOptions(host, port, actions_port, not no_sip, sip_port, registrar_port, rasa_servers, worker_name)
    try:
        Bot(obj.inst, obj.config_path, options, say=click.echo).run()
    except ListenError as error:
        raise click.ClickException(str(error)) from None


def _rasa_servers(values) -> dict:
    servers = dict(value.partition("=")[::2] for value in values)
    wrong = [f"{lang}={url}" for lang, url in servers.items() if not lang or not url.startswith(("http://", "https://"))]
    if wrong:
        raise click.BadParameter(f"{', '.join(wrong)}: give LANG=http://HOST:PORT")
    return servers


@main.command()
@click.option("--line", "line_id", required=True, help="Line (tenant) id, e.g. demo-kommune.")
@click.option("--caller", help="Caller's phone number, as caller ID would give it.")
@click.pass_obj
def chat(obj: Context, line_id: str, caller: Optional[str]) -> None:
    """Talk to a line in the terminal."""
    from voicebot.channels.terminal import chat as run_chat
    from voicebot.dialogue.runtime import Dialogue

    tenant = obj.inst.tenant(line_id)
    with _action_server(obj, port=0) as (url, _):
        dialogue = Dialogue(obj.inst, url, [tenant.language]).load()
        asyncio.run(run_chat(dialogue, tenant, caller))


@main.command()
@click.option("--line", "line_id", default="demo-kommune", show_default=True, help="Line to call.")
@click.pass_obj
def demo(obj: Context, line_id: str) -> None:
    """Start the bot (phone line and text channel), place one demo call, keep the bot running."""
    import time
    import urllib.request

    from voicebot import procs
    from voicebot.testing.phone import TestPhone, parse_turns

    inst, tenant = obj.inst, obj.inst.tenant(line_id)
    bot = procs.start([sys.executable, "-m", "voicebot.cli", "serve"])
    try:
        click.echo("starting the bot (loading the language models takes a minute or two) ...")
        while bot.poll() is None:
            try:
                urllib.request.urlopen(f"{inst.settings.http.url}/health", timeout=1)
                break
            except OSError:
                time.sleep(1)
        if bot.poll() is not None:
            raise click.ClickException("the bot did not start; see the messages above")
        uri = f"sip:{tenant.numbers[0]}@{inst.settings.sip.host}:{inst.settings.sip.port}"
        click.echo(f"demo call to {tenant.name}: {uri}, pressing 1 (the first menu topic)")
        _print_timeline(TestPhone().run(uri, parse_turns(["--dtmf", "1"], tenant.language)))
        click.echo(f"the bot keeps running: ring {uri} from a softphone, or press Ctrl-C to stop")
        click.echo(f"dashboard: {inst.settings.http.url}/dashboard/ (first add a login: "
                   "'voicebot users add NAME --role admin')")
        bot.wait()
    finally:
        procs.stop(bot)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("uri")
@click.option("--lang", default="en", show_default=True, help="Language (espeak-ng voice) for --say turns.")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), help="Write what was heard to this WAV.")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
@click.option("--timeout", default=60.0, show_default=True, help="Give up after this many seconds.")
@click.option("--accept-transfer", is_flag=True, help="Follow a REFER (default: decline it and stay).")
@click.option("--calls", default=1, show_default=True, type=click.IntRange(1),
              help="Place this many calls, each playing the turns; prints a list of timelines.")
@click.option("--concurrent", default=1, show_default=True, type=click.IntRange(1),
              help="With --calls: this many calls at a time (one caller holds at most 4).")
@click.option("--stagger", default=0.0, show_default=True, type=click.FloatRange(0),
              help="With --calls: seconds between the starts of the first calls.")
@click.option("--from", "number", default="caller", show_default=True,
              help="Calling number (the From user part: the bot's caller ID).")
@click.option("--jitter-floor-ms", type=click.IntRange(0), default=None,
              help="The least the phone's jitter buffer holds, as a real phone's (default: pjsua's, "
                   "which shrinks to 20 ms on loopback).")
@click.pass_context
def call(ctx: click.Context, uri: str, lang: str, record: Optional[Path], as_json: bool, timeout: float,
         accept_transfer: bool, calls: int, concurrent: int, stagger: float, number: str,
         jitter_floor_ms: Optional[int]) -> None:
    """Dial a bot and play caller turns, in order: --say TEXT (" ... " in it: a 0.6 s pause),
    --wav FILE, --dtmf DIGITS, --wait SECONDS (then the next turn plays whatever the bot does:
    hold music never goes quiet); --barge-in before a turn speaks it over the bot. Prints what
    was heard and the latencies."""
    from voicebot.testing.phone import TestPhone, parse_turns, timeline_json

    try:
        turns = parse_turns(ctx.args, lang)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    transport = "tcp" if ";transport=tcp" in uri.lower() else "udp"
    phone = TestPhone(number=number, transport=transport, jitter_floor_ms=jitter_floor_ms)
    if calls > 1:
        if record or accept_transfer:
            raise click.UsageError("--record and --accept-transfer are for a single call, not with --calls")
        _call_many(uri, turns, calls, concurrent, stagger, timeout, as_json, phone)
        return
    timeline = phone.run(uri, turns, record, timeout, accept_transfer=accept_transfer)
    if as_json:
        click.echo(timeline_json(timeline))
    else:
        _print_timeline(timeline)
    if not timeline.get("connected"):
        raise click.ClickException(f"the call was not answered: {timeline.get('status')} {timeline.get('reason')}")


def _call_many(uri: str, turns: list, calls: int, concurrent: int, stagger: float, timeout: float,
               as_json: bool, phone) -> None:
    from voicebot.testing.phone import timeline_json

    with phone:
        try:
            timelines = phone.place_many(uri, turns, calls, concurrent, timeout, stagger)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
    if as_json:
        click.echo(timeline_json(timelines))
    else:
        for timeline in timelines:
            if timeline.get("connected"):
                _print_timeline(timeline)
            else:
                click.echo(f"not answered: {timeline.get('status')} {timeline.get('reason')} "
                           f"{timeline.get('error', '')}")
    failed = sum(not t.get("connected") for t in timelines)
    if failed:
        raise click.ClickException(f"{failed} of {calls} calls were not answered")


def _print_timeline(timeline: dict) -> None:
    click.echo(f"connected in {timeline['connect_ms']} ms, call id {timeline['call_id']}")
    for turn in timeline["turns"]:
        click.echo(f"  caller {turn['kind']} {turn['value']!r}{' (barge-in)' if turn['barge_in'] else ''}: "
                   f"bot answered after {turn['latency_ms']} ms and spoke {turn['bot_ms']} ms")
    for uri in timeline["transfers"]:
        click.echo(f"  bot transferred the call to {uri}")
    click.echo(f"heard {timeline['heard_ms']} ms of audio; hung up by the {timeline['hung_up_by']}")
