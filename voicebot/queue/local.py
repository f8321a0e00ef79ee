"""The agent queue in this process (the embedded default): state on the asyncio loop, and the
oldest waiting caller gets the longest idle free agent (or all free agents: ring_all)."""

from voicebot.queue.base import QueueBase


class LocalQueue(QueueBase):
    def dispatch(self) -> None:
        self._dispatch_here()
