"""The bot's own agent queue: agents and their states, callers waiting, and who rings next.

State lives in this process, on the asyncio loop (the embedded default; with `queue_redis_url`,
voicebot.queue.shared keeps it in Redis for several workers). The queue knows nothing
of SIP: a waiting caller brings a `ring` coroutine that rings the agents it is given and says who
answered; the telephony side does the ringing and bridging.
"""

import asyncio
import collections
import enum
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Dict, List, Optional, Tuple

from voicebot.config.settings import Agent, Queue, Settings

logger = logging.getLogger(__name__)

# Weight of the newest hold time in the average, as Asterisk's app_queue (3/4 old, 1/4 new).
HOLD_TIME_WEIGHT = 0.25


class AgentState(str, enum.Enum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


@dataclass
class AgentStatus:
    id: str
    config: Agent
    state: AgentState
    since: float  # when the state began; for AVAILABLE, how long the agent has been idle
    contact: Optional[str] = None  # where a registered softphone is now
    reason: str = ""  # why paused
    answered: int = 0

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


class QueueService:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.settings, self.clock = settings, clock
        now = clock()
        self.agents: Dict[str, AgentStatus] = {
            agent_id: AgentStatus(agent_id, agent, AgentState.AVAILABLE if agent.uri else AgentState.LOGGED_OUT, now)
            for agent_id, agent in settings.agents.items()}
        self.waiting: Dict[str, List[Waiter]] = {queue_id: [] for queue_id in settings.queues}
        self.hold_time_s: Dict[str, Optional[float]] = {queue_id: None for queue_id in settings.queues}
        self.stats: Dict[Tuple[str, str], QueueStats] = collections.defaultdict(QueueStats)
        # For operators: this worker's calls in progress (the phone line sets it), and, where
        # workers share the queue, the other workers' (a shared queue keeps them up to date).
        self.live_calls: Callable[[], List[dict]] = list
        self.calls_elsewhere: List[dict] = []

    def start(self) -> None:
        """On the running loop, before the first call (nothing to do in one process)."""

    def stop(self) -> None:
        pass

    def queue(self, queue_id: str) -> Queue:
        return self.settings.queues[queue_id]

    # -- agents
    def agent_by_username(self, username: str) -> Optional[AgentStatus]:
        return next((a for a in self.agents.values() if a.config.username == username), None)

    def registered(self, username: str, contact: Optional[str]) -> None:
        """From the registrar: a softphone logged in (contact) or out (None)."""
        agent = self.agent_by_username(username)
        if agent is None:
            return
        agent.contact = contact
        if contact is None:
            self._set(agent, AgentState.LOGGED_OUT)
        elif agent.state == AgentState.LOGGED_OUT:
            self._set(agent, AgentState.AVAILABLE)
        self.dispatch()

    def set_available(self, agent_id: str, available: bool) -> AgentStatus:
        """An agent (or supervisor) pauses or resumes; a paused agent is not rung."""
        agent = self.agents[agent_id]
        if available and agent.state == AgentState.PAUSED:
            self._set(agent, AgentState.AVAILABLE if agent.uri else AgentState.LOGGED_OUT)
        elif not available and agent.state in (AgentState.AVAILABLE, AgentState.WRAP_UP):
            self._set(agent, AgentState.PAUSED, "by request")
        self.dispatch()
        return agent

    def finished(self, agent: AgentStatus) -> None:
        """The agent's call with a caller is over: wrap-up, then available again."""
        if agent.state != AgentState.BUSY:
            return
        wrap_up = min(self.queue(q).wrap_up_s for q in agent.config.queues)
        self._set(agent, AgentState.WRAP_UP)
        asyncio.get_running_loop().call_later(wrap_up, self._wrapped_up, agent)

    def _wrapped_up(self, agent: AgentStatus) -> None:
        if agent.state == AgentState.WRAP_UP:
            self._set(agent, AgentState.AVAILABLE if agent.uri else AgentState.LOGGED_OUT)
            self.dispatch()

    def _set(self, agent: AgentStatus, state: AgentState, reason: str = "") -> None:
        if agent.state != state:
            logger.info("agent %s: %s -> %s %s", agent.id, agent.state.value, state.value, reason)
            agent.state, agent.since = state, self.clock()
        agent.reason = reason

    def logged_in(self, queue_id: str) -> List[AgentStatus]:
        """Agents who serve the queue and are at work (not logged out, not paused)."""
        return [a for a in self.agents.values() if queue_id in a.config.queues
                and a.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED)]

    # -- callers
    def refusal(self, queue_id: str) -> Optional[str]:
        """Why a caller cannot wait in the queue now ('no_agents', 'full'), or None."""
        if not self.logged_in(queue_id):
            return "no_agents"
        if len(self.waiting[queue_id]) >= self.queue(queue_id).max_waiting:
            return "full"
        return None

    def join(self, waiter: Waiter, again: bool = False) -> int:
        """A caller starts waiting; `again`: back at their old place (their agent was lost)."""
        if again:
            self.waiting[waiter.queue].append(waiter)
            self.waiting[waiter.queue].sort(key=lambda w: w.entered_at)
        else:
            waiter.entered_at = self.clock()
            self.waiting[waiter.queue].append(waiter)
            self.stats[waiter.queue, waiter.tenant].entered += 1
        self.dispatch()
        return self.position(waiter)

    def position(self, waiter: Waiter) -> int:
        return self.waiting[waiter.queue].index(waiter) + 1 if waiter in self.waiting[waiter.queue] else 0

    def expected_wait_s(self, waiter: Waiter) -> Optional[float]:
        """What is left of the queue's average hold time (app_queue's estimate); None before
        anyone has been answered."""
        hold = self.hold_time_s[waiter.queue]
        return None if hold is None else max(0.0, hold - (self.clock() - waiter.entered_at))

    def waited_s(self, waiter: Waiter) -> float:
        return self.clock() - waiter.entered_at

    def leave(self, waiter: Waiter, outcome: str) -> float:
        """The caller stops waiting: 'abandoned' (hung up), 'callback' or 'answered'.
        Returns how long they waited."""
        if waiter not in self.waiting[waiter.queue]:
            return 0.0
        self.waiting[waiter.queue].remove(waiter)
        if waiter.ringing and not waiter.ringing.done():
            waiter.ringing.cancel()
        waited = self.waited_s(waiter)
        stats = self.stats[waiter.queue, waiter.tenant]
        stats.wait_total_s += waited
        if outcome == "answered":
            stats.answered += 1
            stats.answered_in_time += waited <= self.queue(waiter.queue).service_level_s
            old = self.hold_time_s[waiter.queue]
            self.hold_time_s[waiter.queue] = waited if old is None else old + HOLD_TIME_WEIGHT * (waited - old)
        elif outcome == "abandoned":
            stats.abandoned += 1
        else:
            stats.callbacks += 1
        self.dispatch()
        return waited

    # -- who rings next
    def dispatch(self) -> None:
        """Give available agents to waiting callers, oldest caller first across all queues."""
        waiters = sorted((w for ws in self.waiting.values() for w in ws if w.ringing is None and not w.hold),
                         key=lambda w: w.entered_at)
        for waiter in waiters:
            free = sorted((a for a in self.agents.values()
                           if a.state == AgentState.AVAILABLE and waiter.queue in a.config.queues and a.uri),
                          key=lambda a: a.since)
            if not free:
                continue
            queue = self.queue(waiter.queue)
            chosen = free if queue.strategy == "ring_all" else free[:1]
            for agent in chosen:
                agent.state = AgentState.RINGING  # keeps `since`: still the longest idle if missed
            waiter.ringing = asyncio.ensure_future(self._ring(waiter, chosen, queue.ring_timeout_s))

    async def _ring(self, waiter: Waiter, agents: List[AgentStatus], timeout: float) -> None:
        result = RingResult(None)
        try:
            result = await waiter.ring(agents, timeout)
        except asyncio.CancelledError:
            pass  # the caller left: the agents were not at fault
        except Exception:
            logger.exception("ringing agents for %s failed", waiter.call_id)
        finally:
            waiter.ringing = None
            for agent in agents:
                if agent is result.answered:
                    continue
                missed = next((why for a, why in result.missed if a is agent), None)
                if missed is not None and agent.state == AgentState.RINGING:
                    self._set(agent, AgentState.PAUSED, missed)
                elif agent.state == AgentState.RINGING:
                    agent.state = AgentState.AVAILABLE
            if result.answered is not None:
                agent = result.answered
                agent.answered += 1
                self._set(agent, AgentState.BUSY)
                waiter.answered_by = agent
                self.leave(waiter, "answered")
                waiter.on_answered(agent)
            self.dispatch()

    # -- for operators
    def snapshot(self) -> dict:
        now = self.clock()
        return {
            "agents": [a.as_dict(now) for a in self.agents.values()],
            "queues": [{"id": queue_id, "name": self.queue(queue_id).name,
                        "waiting": [{"call_id": w.call_id, "tenant": w.tenant, "waited_s": round(now - w.entered_at, 1),
                                     "ringing": w.ringing is not None} for w in waiters],
                        "hold_time_s": None if self.hold_time_s[queue_id] is None
                        else round(self.hold_time_s[queue_id], 1),
                        "stats": {tenant: s.as_dict() for (q, tenant), s in self.stats.items() if q == queue_id}}
                       for queue_id, waiters in self.waiting.items()]}


def queue_service(settings: Settings) -> QueueService:
    """In this process (the embedded default), or shared with other workers through Redis."""
    if settings.queue_redis_url:
        from voicebot.queue.shared import SharedQueueService
        return SharedQueueService(settings, settings.queue_redis_url)
    return QueueService(settings)


def minutes(seconds: float) -> int:
    """Whole minutes to announce, rounded up: 'about 1 minute' rather than 'about 0'."""
    return max(1, math.ceil(seconds / 60))
