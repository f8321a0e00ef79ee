"""Phone turns before text turns. A caller hears the delay of every turn, a chat barely notices
a second more; in one process both share the cores (and Rasa's thread), so while a call's turn
is being heard and answered, text turns wait to enter the dialogue, up to a bound so that calls
talking all the time cannot starve the chats."""

import asyncio
from typing import Set


class CallsFirst:
    """`max_wait_s` (settings text.wait_for_calls_s): about one caller's sentence and its answer."""

    def __init__(self, max_wait_s: float):
        self.max_wait_s = max_wait_s
        self.answering: Set[str] = set()  # calls between the caller's first word and the answer's
        self._none_answering = asyncio.Event()
        self._none_answering.set()

    def hold(self, call_id: str) -> None:
        """The call's caller has begun to speak (or pressed a key): text turns wait."""
        self.answering.add(call_id)
        self._none_answering.clear()

    def release(self, call_id: str) -> None:
        """The call's answer has begun, or there is none to give."""
        self.answering.discard(call_id)
        if not self.answering:
            self._none_answering.set()

    async def text_turn_may_start(self) -> None:
        if not self.max_wait_s:
            return
        try:
            await asyncio.wait_for(self._none_answering.wait(), self.max_wait_s)
        except asyncio.TimeoutError:
            pass
