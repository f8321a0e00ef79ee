"""A conversation with one line in the terminal."""

import asyncio
import sys
import uuid
from typing import Callable, Optional

import click

from voicebot.config import Tenant
from voicebot.dialogue.runtime import BotReply, Dialogue


def show(reply: BotReply, echo: Callable[[str], None]) -> None:
    for text in reply.texts:
        echo(f"bot> {text}")
    if reply.handoff:
        echo(f"[handed off to queue {reply.handoff['queue']}: {reply.handoff['reason']}; "
             f"{reply.handoff['summary']}]")
    if reply.hangup:
        echo("[the bot hung up]")


def read_line() -> str:
    return input("you> " if sys.stdin.isatty() else "")


async def chat(dialogue: Dialogue, tenant: Tenant, caller: Optional[str] = None,
               read: Callable[[], str] = read_line, echo=click.echo) -> None:
    conversation_id = f"chat-{uuid.uuid4().hex[:12]}"
    echo(f"bot> {tenant.greeting}")
    while True:
        try:
            text = await asyncio.to_thread(read)
        except (EOFError, KeyboardInterrupt):
            echo("")
            return
        reply = await dialogue.handle(tenant, conversation_id, text, caller=caller)
        show(reply, echo)
        if reply.ends_conversation:
            return
