"""The agent queue as the rest of the bot sees it: what the phone line, a waiting caller, the
HTTP API, the dashboard and the metrics use, whichever backend keeps the state (LocalQueue in
this process, voicebot.queue.local; RedisQueue shared by several workers, voicebot.queue.redis_queue).
voicebot.queue.factory picks one from the settings.

Everything here runs on the asyncio loop and answers at once: a backend that talks to another
process does so in the background and answers from what it knows."""

import abc
from typing import Callable, Dict, List, Optional

from voicebot.config.settings import Queue
from voicebot.queue.model import PAUSED_BY_REQUEST, AgentStatus, Waiter


class QueueBackend(abc.ABC):
    # Every agent in the settings by id, with its state as this worker knows it (read-only for callers).
    agents: Dict[str, AgentStatus]
    # The clock agents' `since` and callers' waits are measured with (AgentStatus.as_dict(clock())).
    clock: Callable[[], float]
    # This worker's calls in progress, for operators (given at construction).
    live_calls: Callable[[], List[dict]]
    # Other workers' calls in progress, where workers share the queue (else empty).
    calls_elsewhere: List[dict]
    # This worker's calls in progress that rang an agent, whole (caller, events), for the agents'
    # desks (given at construction); and other workers' such calls, for the desks here.
    rung_calls: Callable[[], List[dict]]
    rung_elsewhere: List[dict]

    # -- life
    @abc.abstractmethod
    def start(self) -> None:
        """On the running loop, before the first call."""

    @abc.abstractmethod
    def stop(self) -> None:
        """At shutdown: background work ends."""

    @abc.abstractmethod
    def queue(self, queue_id: str) -> Queue:
        """The queue's settings."""

    # -- agents
    @abc.abstractmethod
    def registered(self, username: str, contact: Optional[str]) -> None:
        """From the registrar: a softphone logged in (contact) or out (None)."""

    @abc.abstractmethod
    def set_presence(self, agent_id: str, presence: str, reason: str = PAUSED_BY_REQUEST) -> AgentStatus:
        """An agent (or supervisor) asks to be available, paused with a reason, or logged out
        (PRESENCES); a paused or logged-out agent is not rung. A wrap-up ends early by resuming. Logging
        out during a call lets the call go on and logs the agent out after it."""

    @abc.abstractmethod
    def finished(self, agent: AgentStatus) -> None:
        """The agent's call with a caller is over: wrap-up, then available again."""

    # -- callers
    @abc.abstractmethod
    def refusal(self, queue_id: str) -> Optional[str]:
        """Why a caller cannot wait in the queue now ('no_agents', 'full'), or None."""

    @abc.abstractmethod
    def join(self, waiter: Waiter, again: bool = False) -> int:
        """A caller starts waiting (agents may ring at once); `again`: back at their old place
        (their agent was lost). Returns the caller's place, 1 first."""

    @abc.abstractmethod
    def is_waiting(self, waiter: Waiter) -> bool:
        """Is this caller still in its queue (joined, not answered, not left)?"""

    @abc.abstractmethod
    def position(self, waiter: Waiter) -> int:
        """The caller's place in its queue, 1 first; 0 if not waiting."""

    @abc.abstractmethod
    def waited_s(self, waiter: Waiter) -> float:
        """Seconds since the caller first joined."""

    @abc.abstractmethod
    def expected_wait_s(self, waiter: Waiter) -> Optional[float]:
        """What is left of the queue's average hold time; None before anyone has been answered."""

    @abc.abstractmethod
    def leave(self, waiter: Waiter, outcome: str) -> float:
        """The caller stops waiting: 'abandoned' (hung up), 'callback' or 'answered'.
        Returns how long they waited (0 if they were not waiting)."""

    @abc.abstractmethod
    def dispatch(self) -> None:
        """Look again for free agents for waiting callers (a caller stopped typing a number)."""

    # -- for operators
    @abc.abstractmethod
    def snapshot(self) -> dict:
        """Agents, callers waiting and per-queue figures: GET /queues, the dashboard, metrics."""
