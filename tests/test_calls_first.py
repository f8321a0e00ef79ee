"""Phone turns before text turns (voicebot/dialogue/priority.py): while a call's turn is being
heard and answered, text turns wait to enter the dialogue, at most a bounded time."""

import asyncio
import time

import pytest

from voicebot.channels.http import Busy, TextTurns
from voicebot.dialogue.priority import CallsFirst


async def entered(text_turns: TextTurns, log: list, name: str) -> None:
    async with text_turns.turn():
        log.append(name)


def test_a_text_turn_waits_while_a_call_is_answered_and_goes_on_when_the_answer_begins():
    async def scenario():
        calls_first, log = CallsFirst(max_wait_s=30), []
        text_turns = TextTurns(1, 10, calls_first)
        calls_first.hold("call-1")
        calls_first.hold("call-2")
        chat = asyncio.ensure_future(entered(text_turns, log, "chat"))
        await asyncio.sleep(0.05)
        assert log == []
        calls_first.release("call-1")
        await asyncio.sleep(0.05)
        assert log == []  # call-2 is still being answered
        calls_first.release("call-2")
        calls_first.release("call-2")  # twice (the answer began, then the call ended): harmless
        await asyncio.wait_for(chat, 1)
        assert log == ["chat"]
    asyncio.run(scenario())


def test_calls_that_talk_all_the_time_cannot_starve_the_chats():
    async def scenario():
        calls_first = CallsFirst(max_wait_s=0.2)
        text_turns, log = TextTurns(1, 10, calls_first), []
        calls_first.hold("call-1")  # and never released
        started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(entered(text_turns, log, n) for n in "ab")), 5)
        assert log == ["a", "b"]
        assert 0.2 <= time.monotonic() - started < 2
    asyncio.run(scenario())


def test_with_no_wait_configured_text_turns_do_not_wait_for_calls():
    async def scenario():
        calls_first = CallsFirst(max_wait_s=0)
        calls_first.hold("call-1")
        await asyncio.wait_for(entered(TextTurns(1, 10, calls_first), [], "chat"), 0.1)
    asyncio.run(scenario())


def test_without_calls_a_text_turn_enters_at_once_and_the_line_still_overflows():
    async def scenario():
        text_turns = TextTurns(1, 1, CallsFirst(max_wait_s=3))
        async with text_turns.turn():
            waiting = asyncio.ensure_future(entered(text_turns, [], "second"))
            await asyncio.sleep(0.01)
            with pytest.raises(Busy):
                async with text_turns.turn():
                    pass
        await asyncio.wait_for(waiting, 1)
    asyncio.run(scenario())
