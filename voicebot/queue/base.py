"""What both queue backends hold in this process and the rules they share: every agent's state,
this worker's waiting callers, the figures, ringing agents for a caller, and who rings next
among what this worker knows (`_dispatch_here`).

A backend that keeps the queue somewhere else too (RedisQueue) learns of each change through the
`_on_...` hooks below, which do nothing here; it says how many wait (`_waiting_count`) and how it
dispatches. The queue knows nothing of SIP: a waiting caller brings a `ring` coroutine that rings
the agents it is given and says who answered; the telephony side does the ringing and bridging.
"""

import asyncio
import collections
import logging
import time
from typing import Callable, Dict, List, Optional, Tuple

from voicebot.config.settings import Queue, Settings
from voicebot.queue.backend import QueueBackend
from voicebot.queue.model import (HOLD_TIME_WEIGHT, PAUSED_BY_REQUEST, SIGNED_OFF, AgentState, AgentStatus,
                                  QueueStats, RingResult, Waiter)

logger = logging.getLogger(__name__)


class QueueBase(QueueBackend):
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 live_calls: Callable[[], List[dict]] = list, rung_calls: Callable[[], List[dict]] = list):
        self.settings, self.clock, self.live_calls, self.rung_calls = settings, clock, live_calls, rung_calls
        now = clock()
        self.agents: Dict[str, AgentStatus] = {
            agent_id: AgentStatus(agent_id, agent, AgentState.AVAILABLE if agent.uri else AgentState.LOGGED_OUT, now)
            for agent_id, agent in settings.agents.items()}
        self.waiting: Dict[str, List[Waiter]] = {queue_id: [] for queue_id in settings.queues}  # this worker's
        self.hold_time_s: Dict[str, Optional[float]] = {queue_id: None for queue_id in settings.queues}
        self.stats: Dict[Tuple[str, str], QueueStats] = collections.defaultdict(QueueStats)
        self.calls_elsewhere: List[dict] = []
        self.rung_elsewhere: List[dict] = []

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def queue(self, queue_id: str) -> Queue:
        return self.settings.queues[queue_id]

    # -- what a backend that keeps the queue elsewhere too is told (after the change here)
    def _on_registered(self, username: str, agent: Optional[AgentStatus], contact: Optional[str]) -> None:
        """A softphone logged in or out through this worker's registrar (agent None: not an agent's)."""

    def _on_presence(self, agent: AgentStatus, presence: str, reason: str) -> None:
        """A resume, pause or sign-off was asked for (whether or not the state changed)."""

    def _on_wrap_up(self, agent: AgentStatus) -> None:
        """The agent, busy with a caller here, begins the wrap-up."""

    def _on_wrapped_up(self, agent: AgentStatus, was_wrapping_up: bool) -> None:
        """The wrap-up time is over; `was_wrapping_up`: the agent was still in it (now available)."""

    def _on_joined(self, waiter: Waiter) -> None:
        """A caller joined, or joined again."""

    def _on_left(self, waiter: Waiter) -> None:
        """A caller left the queue (before its figures are counted)."""

    def _on_ring_over(self, waiter: Waiter, agents: List[AgentStatus]) -> None:
        """Ringing these agents for the caller is over and their states here are final."""

    def _waiting_count(self, queue_id: str) -> int:
        """Callers waiting in the queue, as far as the backend knows: here, this worker's."""
        return len(self.waiting[queue_id])

    # -- agents
    def agent_by_username(self, username: str) -> Optional[AgentStatus]:
        return next((a for a in self.agents.values() if a.config.username == username), None)

    def registered(self, username: str, contact: Optional[str]) -> None:
        agent = self.agent_by_username(username)
        if agent is not None:
            agent.contact = contact
            if contact is None:
                self._set(agent, AgentState.LOGGED_OUT)
            elif agent.state == AgentState.LOGGED_OUT:
                self._rest(agent)
            self.dispatch()
        self._on_registered(username, agent, contact)

    def set_presence(self, agent_id: str, presence: str, reason: str = PAUSED_BY_REQUEST) -> AgentStatus:
        agent = self.agents[agent_id]
        agent.signed_off = presence == "logged_out"
        resting = agent.state in (AgentState.AVAILABLE, AgentState.PAUSED, AgentState.WRAP_UP, AgentState.LOGGED_OUT)
        if presence == "paused" and resting and agent.uri:
            self._set(agent, AgentState.PAUSED, reason)
        elif presence != "paused" and resting:
            self._rest(agent)
        self.dispatch()
        self._on_presence(agent, presence, reason)
        return agent

    def _rest(self, agent: AgentStatus) -> None:
        """Where an agent goes when no call or pause holds them: logged out without a phone or when
        signed off."""
        if agent.uri and not agent.signed_off:
            self._set(agent, AgentState.AVAILABLE, "")
        else:
            self._set(agent, AgentState.LOGGED_OUT, SIGNED_OFF if agent.signed_off else "")

    def finished(self, agent: AgentStatus) -> None:
        if agent.state != AgentState.BUSY:
            return
        self._on_wrap_up(agent)
        wrap_up = min(self.queue(q).wrap_up_s for q in agent.config.queues)
        self._set(agent, AgentState.WRAP_UP)
        asyncio.get_running_loop().call_later(wrap_up, self._wrapped_up, agent)

    def _wrapped_up(self, agent: AgentStatus) -> None:
        was_wrapping_up = agent.state == AgentState.WRAP_UP
        if was_wrapping_up:
            self._rest(agent)
            self.dispatch()
        self._on_wrapped_up(agent, was_wrapping_up)

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
        if not self.logged_in(queue_id):
            return "no_agents"
        if self._waiting_count(queue_id) >= self.queue(queue_id).max_waiting:
            return "full"
        return None

    def join(self, waiter: Waiter, again: bool = False) -> int:
        if again:
            self.waiting[waiter.queue].append(waiter)
            self.waiting[waiter.queue].sort(key=lambda w: w.entered_at)
        else:
            waiter.entered_at, waiter.entered_wall = self.clock(), time.time()
            self.waiting[waiter.queue].append(waiter)
            self.stats[waiter.queue, waiter.tenant].entered += 1
        self._on_joined(waiter)
        self.dispatch()
        return self.position(waiter)

    def is_waiting(self, waiter: Waiter) -> bool:
        return waiter in self.waiting[waiter.queue]

    def position(self, waiter: Waiter) -> int:
        """Among this worker's callers."""
        return self.waiting[waiter.queue].index(waiter) + 1 if self.is_waiting(waiter) else 0

    def expected_wait_s(self, waiter: Waiter) -> Optional[float]:
        """As Asterisk's app_queue: the queue's average hold time less the time waited."""
        hold = self.hold_time_s[waiter.queue]
        return None if hold is None else max(0.0, hold - (self.clock() - waiter.entered_at))

    def waited_s(self, waiter: Waiter) -> float:
        return self.clock() - waiter.entered_at

    def leave(self, waiter: Waiter, outcome: str) -> float:
        if not self.is_waiting(waiter):
            return 0.0
        self.waiting[waiter.queue].remove(waiter)
        self._on_left(waiter)
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
    def _dispatch_here(self) -> None:
        """Give available agents to waiting callers, oldest caller first across all queues, with
        what this worker knows."""
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
                elif agent.state == AgentState.RINGING and agent.signed_off:
                    self._rest(agent)
                elif agent.state == AgentState.RINGING:
                    agent.state = AgentState.AVAILABLE  # keeps `since`: still the longest idle
            if result.answered is not None:
                agent = result.answered
                agent.answered += 1
                self._set(agent, AgentState.BUSY)
                waiter.answered_by = agent
                self.leave(waiter, "answered")
                waiter.on_answered(agent)
            self.dispatch()
        self._on_ring_over(waiter, agents)

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
