"""`voicebot rasa serve`: one language's Rasa as its own server, which several bot workers
share. With Redis, conversations (tracker store) and their locks live there, so any number of
these servers for one language can answer any conversation."""

import logging
from typing import Optional
from urllib.parse import urlparse

from voicebot.config import ConfigError, Installation
from voicebot.dialogue.training import model_path

logger = logging.getLogger(__name__)

# Conversations stay in Redis this long after their last turn: enough for any call, short
# because trackers hold what callers said, unredacted.
TRACKER_EXPIRY_S = 3600


class RedisWatch:
    """Says once when Redis goes away and once when it is back."""

    def __init__(self, what: str):
        self.what, self.away = what, False

    def failed(self, error: Exception) -> None:
        if not self.away:
            logger.warning("Redis unavailable (%s): %s are kept on this Rasa server until it is back", error, self.what)
        self.away = True

    def ok(self) -> None:
        if self.away:
            logger.warning("Redis is back: %s are shared again", self.what)
        self.away = False


def _shared_or_local_stores():
    """Rasa's Redis stores, falling back to this server's memory while Redis is away: a
    conversation that stays on this server goes on rather than every turn failing."""
    from rasa.core.lock_store import InMemoryLockStore, RedisLockStore
    from rasa.core.tracker_store import InMemoryTrackerStore, RedisTrackerStore
    from redis.exceptions import RedisError

    class SharedOrLocalTrackerStore(RedisTrackerStore):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.local = InMemoryTrackerStore(self.domain)
            self.watch = RedisWatch("conversations")

        async def retrieve(self, sender_id):
            return await self._either_retrieve(super().retrieve, sender_id)

        async def retrieve_full_tracker(self, sender_id):
            return await self._either_retrieve(super().retrieve_full_tracker, sender_id)

        async def _either_retrieve(self, from_redis, sender_id):
            self.local.domain = self.domain
            kept_here = await self.local.retrieve(sender_id)
            try:
                if kept_here is not None:  # newer than Redis's copy: Redis gets it back
                    await super().save(kept_here)
                    self.local.store.pop(sender_id, None)
                    return kept_here
                tracker = await from_redis(sender_id)
            except RedisError as error:
                self.watch.failed(error)
                return kept_here
            self.watch.ok()
            return tracker

        async def save(self, tracker) -> None:
            try:
                await super().save(tracker)
            except RedisError as error:
                self.watch.failed(error)
                self.local.domain = self.domain
                await self.local.save(tracker)
                return
            self.watch.ok()
            self.local.store.pop(tracker.sender_id, None)

    class SharedOrLocalLockStore(RedisLockStore):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.local = InMemoryLockStore()
            self.watch = RedisWatch("conversation locks")

        def _either(self, method: str, *args):
            try:
                result = getattr(super(), method)(*args)
            except RedisError as error:
                self.watch.failed(error)
                return getattr(self.local, method)(*args)
            self.watch.ok()
            return result

        def get_lock(self, conversation_id):
            return self._either("get_lock", conversation_id)

        def delete_lock(self, conversation_id) -> None:
            self.local.delete_lock(conversation_id)
            self._either("delete_lock", conversation_id)

        def save_lock(self, lock) -> None:
            self._either("save_lock", lock)

    return SharedOrLocalTrackerStore, SharedOrLocalLockStore


def endpoints(action_url: str, redis_url: Optional[str]):
    """The Rasa endpoints: our action server, and Redis for trackers (db 0) and locks (db 1)."""
    from rasa.core.utils import AvailableEndpoints
    from rasa.shared.core.domain import Domain

    from voicebot.dialogue.action_server import endpoint

    action = endpoint(action_url)
    if not redis_url:
        return AvailableEndpoints(action=action)
    redis = urlparse(redis_url)
    if redis.scheme != "redis" or not redis.hostname:
        raise ConfigError(f"--redis: {redis_url!r} is not redis://HOST:PORT")
    common = dict(host=redis.hostname, port=redis.port or 6379, password=redis.password, key_prefix="voicebot")
    tracker_store, lock_store = _shared_or_local_stores()
    return AvailableEndpoints(action=action,
                              tracker_store=tracker_store(Domain.empty(), db=0, record_exp=TRACKER_EXPIRY_S, **common),
                              lock_store=lock_store(db=1, **common))


def serve(inst: Installation, lang: str, host: str, port: int, action_url: str, redis_url: Optional[str],
          token: Optional[str]) -> None:
    """Blocks, serving the REST channel and Rasa's HTTP API (needed for the tracker and /model)."""
    from rasa.core.run import serve_application

    from voicebot.dialogue.quick_load import use_quick_load
    from voicebot.dialogue.reply_check import use_compiled_reply_check

    use_quick_load()
    use_compiled_reply_check()
    path = model_path(inst, lang)
    if not path.exists():
        raise ConfigError(f"no trained model for {lang!r} at {path}: run 'voicebot train'")
    serve_application(str(path), channel="rest", interface=host, port=port, enable_api=True, auth_token=token,
                      endpoints=endpoints(action_url, redis_url))
