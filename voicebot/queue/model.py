"""What every queue backend and its callers share: agents and their states, a waiting caller,
a ring's outcome, the per-queue figures. Data only: no queue logic, no imports from the backends."""

import asyncio
import enum
import math
from dataclasses import dataclass, field
from typing import Awaitable, Callable, List, Optional, Tuple

from voicebot.config.settings import Agent

# Weight of the newest hold time in the average, as Asterisk's app_queue (3/4 old, 1/4 new).
HOLD_TIME_WEIGHT = 0.25


class AgentState(str, enum.Enum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


PAUSED_BY_REQUEST = "by request"
# What an agent may give as the reason for a pause in the dashboard (operators see it).
PAUSE_REASONS = ("break", "meeting", "training", "other work", PAUSED_BY_REQUEST)
# What an agent (or an operator for them) may ask to be: at work, paused, or gone for the day. A
# softphone that stays registered does not bring a signed-off agent back; only "available" does.
PRESENCES = ("available", "paused", "logged_out")
SIGNED_OFF = "signed off"


def presence_refusal(presence: object, reason: object) -> Optional[str]:
    """Why an agent cannot ask for this (a message for a 400), or None."""
    if presence not in PRESENCES or (presence == "paused" and reason not in PAUSE_REASONS):
        return f"choose {', '.join(PRESENCES)}; a pause with a reason: {', '.join(PAUSE_REASONS)}"
    return None


@dataclass
class AgentStatus:
    id: str
    config: Agent
    state: AgentState
    since: float  # when the state began; for AVAILABLE, how long the agent has been idle
    contact: Optional[str] = None  # where a registered softphone is now
    reason: str = ""  # why paused
    answered: int = 0
    signed_off: bool = False  # logged out by request: stays so whatever the softphone does

    @property
    def uri(self) -> Optional[str]:
        return self.config.uri or self.contact

    def as_dict(self, now: float) -> dict:
        return {"id": self.id, "name": self.config.name, "state": self.state.value, "reason": self.reason,
                "for_s": round(now - self.since, 1), "queues": self.config.queues, "answered": self.answered}


@dataclass
class RingResult:
    answered: Optional[AgentStatus]
    missed: List[Tuple[AgentStatus, str]] = field(default_factory=list)  # (agent, why)


# What a waiting caller gives the queue: ring these agents for at most this long.
Ring = Callable[[List[AgentStatus], float], Awaitable[RingResult]]


@dataclass
class Waiter:
    """One caller in a queue."""

    call_id: str
    tenant: str
    queue: str
    ring: Ring
    entered_at: float = 0.0
    entered_wall: float = 0.0  # time.time() when first queued: the place among several workers' callers
    ringing: Optional[asyncio.Task] = None
    hold: bool = False  # keeps the place but is not rung (typing a callback number)
    answered_by: Optional[AgentStatus] = None
    on_answered: Callable[[AgentStatus], None] = lambda agent: None


@dataclass
class QueueStats:
    """Per queue and tenant, since start-up: what service level and abandonment are made of."""

    entered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0
    callbacks: int = 0
    wait_total_s: float = 0.0

    def as_dict(self) -> dict:
        done = self.answered + self.abandoned
        return {**self.__dict__, "wait_total_s": round(self.wait_total_s, 1),
                "service_level": round(self.answered_in_time / done, 3) if done else None,
                "abandon_rate": round(self.abandoned / done, 3) if done else None,
                "average_wait_s": round(self.wait_total_s / done, 1) if done else None}


def minutes(seconds: float) -> int:
    """Whole minutes to announce, rounded up: 'about 1 minute' rather than 'about 0'."""
    return max(1, math.ceil(seconds / 60))
