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


def endpoints(action_url: str, redis_url: Optional[str]):
    """The Rasa endpoints: our action server, and Redis for trackers (db 0) and locks (db 1)."""
    from rasa.core.utils import AvailableEndpoints
    from rasa.utils.endpoints import EndpointConfig

    action = EndpointConfig(f"{action_url}/webhook")
    if not redis_url:
        return AvailableEndpoints(action=action)
    redis = urlparse(redis_url)
    if redis.scheme != "redis" or not redis.hostname:
        raise ConfigError(f"--redis: {redis_url!r} is not redis://HOST:PORT")
    common = dict(url=redis.hostname, port=redis.port or 6379, password=redis.password, key_prefix="voicebot")
    return AvailableEndpoints(action=action,
                              tracker_store=EndpointConfig(type="redis", db=0, record_exp=TRACKER_EXPIRY_S, **common),
                              lock_store=EndpointConfig(type="redis", db=1, **common))


def serve(inst: Installation, lang: str, host: str, port: int, action_url: str, redis_url: Optional[str],
          token: Optional[str]) -> None:
    """Blocks, serving the REST channel and Rasa's HTTP API (needed for the tracker and /model)."""
    from rasa.core.run import serve_application

    path = model_path(inst, lang)
    if not path.exists():
        raise ConfigError(f"no trained model for {lang!r} at {path}: run 'voicebot train'")
    serve_application(str(path), channel="rest", interface=host, port=port, enable_api=True, auth_token=token,
                      endpoints=endpoints(action_url, redis_url))
