"""The current time. VOICEBOT_CLOCK (ISO 8601 with offset) freezes it for demos and tests."""

import datetime as dt
import os


def now() -> dt.datetime:
    frozen = os.environ.get("VOICEBOT_CLOCK")
    if frozen:
        moment = dt.datetime.fromisoformat(frozen)
        if moment.tzinfo is None:
            raise ValueError(f"VOICEBOT_CLOCK={frozen!r} needs a UTC offset, e.g. 2026-11-24T10:00+01:00")
        return moment
    return dt.datetime.now(dt.timezone.utc)


def ms(seconds: float) -> int:
    """A duration in whole milliseconds, as call records give them."""
    return int(round(seconds * 1000))
