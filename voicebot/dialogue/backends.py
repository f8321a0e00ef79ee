"""Where a language's Rasa runs: in the bot's own process (the embedded default), or as its own
server (`voicebot rasa serve`) that workers reach over HTTP, so that several workers share the
models, the conversations (a Redis tracker store) and the locks (a Redis lock store).
Both answer the same questions, so the dialogue does not care which it talks to."""

import asyncio
import logging
import threading
from pathlib import Path
from typing import List, Optional
from urllib.parse import quote

import aiohttp

logger = logging.getLogger(__name__)


class LocalRasa:
    """A Rasa agent loaded in this process. Its work runs on an event loop and thread of its own
    (one per process, for every language): the NLU's TensorFlow and the policies' Python would
    otherwise hold the loop that carries every call, its audio timing and key presses."""

    def __init__(self, agent):
        self.agent = agent

    async def send(self, conversation_id: str, text: str, metadata: dict) -> List[dict]:
        from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

        message = UserMessage(text, CollectingOutputChannel(), conversation_id, metadata=metadata)
        return await _on_rasa_loop(self.agent.handle_message(message)) or []

    async def latest_message(self, conversation_id: str) -> dict:
        latest = (await _on_rasa_loop(self.agent.processor.get_tracker(conversation_id))).latest_message
        return {"intent": latest.intent, "entities": latest.entities} if latest else {}

    async def parse(self, text: str) -> dict:
        return await _on_rasa_loop(self.agent.parse_message(text))

    async def take_back(self, conversation_id: str, sent: List[str]) -> None:
        await _on_rasa_loop(self._take_back(conversation_id, sent))

    async def _take_back(self, conversation_id: str, sent: List[str]) -> None:
        from rasa.shared.core.events import Event

        async with self.agent.lock_store.lock(conversation_id):
            tracker = await self.agent.processor.get_tracker(conversation_id)
            if rewinds(tracker.latest_message and tracker.latest_message.text, sent):
                for event in rewind_events(len(sent)):
                    tracker.update(Event.from_parameters(event))
                await self.agent.processor.save_tracker(tracker)

    def forget(self, conversation_id: str) -> None:
        """The in-memory tracker store keeps every conversation forever: drop a finished one."""
        tracker_store = getattr(self.agent.tracker_store, "_tracker_store", self.agent.tracker_store)
        store = getattr(tracker_store, "store", None)
        if isinstance(store, dict):
            _rasa_loop().call_soon_threadsafe(store.pop, conversation_id, None)


def rewinds(latest_text: Optional[str], sent: List[str]) -> bool:
    """Whether to rewind `sent`: only when its last message is the conversation's latest (a
    message that failed on its way never reached it, and the caller's previous turn must stay)."""
    return bool(sent) and latest_text == sent[-1]


def rewind_events(turns: int) -> List[dict]:
    """Rasa's events that undo the last `turns` user messages and what followed them, then
    listen: the next message must follow an action_listen, as every user message does, or the
    policies' rules (prev_action_listen) predict nothing for it."""
    return [{"event": "rewind"}] * turns + [{"event": "action", "name": "action_listen"}]


_loop: Optional[asyncio.AbstractEventLoop] = None
_loop_lock = threading.Lock()


def _rasa_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="rasa", daemon=True).start()
    return _loop


async def _on_rasa_loop(coroutine):
    """Await a coroutine run on the Rasa loop; cancelling the wait (a turn's timeout) cancels it there."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, _rasa_loop()))


class RemoteRasa:
    """A Rasa server (`voicebot rasa serve`): messages through its REST channel, the intent from
    the conversation's tracker. Its HTTP API wants the token in VOICEBOT_RASA_TOKEN, if it has one."""

    def __init__(self, url: str, token: Optional[str] = None):
        self.url = url.rstrip("/")
        self.params = {"token": token} if token else {}
        self._http: Optional[aiohttp.ClientSession] = None

    async def send(self, conversation_id: str, text: str, metadata: dict) -> List[dict]:
        body = {"sender": conversation_id, "message": text, "metadata": metadata}
        return await self._request("POST", "/webhooks/rest/webhook", body) or []

    async def latest_message(self, conversation_id: str) -> dict:
        tracker = await self._request("GET", f"/conversations/{quote(conversation_id, safe='')}/tracker"
                                             "?include_events=NONE")
        return tracker.get("latest_message") or {}

    async def parse(self, text: str) -> dict:
        return await self._request("POST", "/model/parse", {"text": text})

    async def take_back(self, conversation_id: str, sent: List[str]) -> None:
        path = f"/conversations/{quote(conversation_id, safe='')}/tracker"
        latest = (await self._request("GET", path + "?include_events=NONE")).get("latest_message") or {}
        if rewinds(latest.get("text"), sent):
            await self._request("POST", path + "/events?include_events=NONE", rewind_events(len(sent)))

    async def replace_model(self, path: Path) -> None:
        """The server loads a new model from its disk (the same machine's, or a shared folder)."""
        await self._request("PUT", "/model", {"model_file": str(path.resolve())}, expect=204)

    def forget(self, conversation_id: str) -> None:
        """Nothing to do: the shared tracker store expires conversations itself (record_exp)."""

    async def _request(self, method: str, path: str, body: Optional[dict] = None, expect: int = 200):
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.request(method, self.url + path, json=body, params=self.params) as response:
            if response.status != expect:
                raise RuntimeError(f"the Rasa server at {self.url} answered {response.status} to {method} {path}: "
                                   + (await response.text())[:200])
            return await response.json() if expect == 200 else None
