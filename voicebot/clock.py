"""The current time. VOICEBOT_CLOCK (ISO 8601 with offset) freezes it for demos and tests; an
action server started with VOICEBOT_CLOCK_PER_TURN reads the instant from each turn's metadata
("clock"), so one benchmark run can play conversations on many days."""

import datetime as dt
import os
from typing import Optional

PER_TURN_ENV = "VOICEBOT_CLOCK_PER_TURN"


def now(metadata: Optional[dict] = None) -> dt.datetime:
    """The time now, or the turn's own instant where this process honours one."""
    turn_clock = (metadata or {}).get("clock") if os.environ.get(PER_TURN_ENV) else None
    frozen = turn_clock or os.environ.get("VOICEBOT_CLOCK")
    if frozen:
        moment = dt.datetime.fromisoformat(frozen)
        if moment.tzinfo is None:
            raise ValueError(f"clock {frozen!r} needs a UTC offset, e.g. 2026-11-24T10:00+01:00")
        return moment
    return dt.datetime.now(dt.timezone.utc)


def ms(seconds: float) -> int:
    """A duration in whole milliseconds, as call records give them."""
    return int(round(seconds * 1000))
