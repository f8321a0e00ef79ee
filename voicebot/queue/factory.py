"""The queue backend the settings ask for: in this process (the embedded default), or shared
with other workers through Redis (`queue_redis_url`)."""

from typing import Callable, List

from voicebot.config.settings import Settings
from voicebot.queue.backend import QueueBackend
from voicebot.queue.local import LocalQueue


def queue_service(settings: Settings, live_calls: Callable[[], List[dict]] = list,
                  rung_calls: Callable[[], List[dict]] = list) -> QueueBackend:
    """`live_calls`: this worker's calls in progress, for operators (and other workers);
    `rung_calls`: those that rang an agent, whole, for agents' desks on other workers."""
    if settings.queue_redis_url:
        from voicebot.queue.redis_queue import RedisQueue  # only where Redis is used
        return RedisQueue(settings, settings.queue_redis_url, live_calls=live_calls, rung_calls=rung_calls)
    return LocalQueue(settings, live_calls=live_calls, rung_calls=rung_calls)
