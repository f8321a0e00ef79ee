"""A call's state, its allowed transitions, and one owner that changes it and tells who listens."""

import enum
import logging
from dataclasses import dataclass
from typing import Callable, List

logger = logging.getLogger(__name__)


class CallState(str, enum.Enum):
    RINGING = "ringing"  # offered, no audio yet
    TALKING = "talking"  # with the bot
    QUEUED = "queued"  # waiting in the bot's queue for an agent
    WITH_AGENT = "with agent"  # an agent answered: being connected, or bridged
    TRANSFERRING = "transferring"  # REFERred elsewhere, outcome not known yet
    TRANSFERRED = "transferred"  # the caller went on to the transfer target: final
    ENDING = "ending"  # the bot is hanging up
    ENDED = "ended"


_ANY_LIVE = {CallState.ENDING, CallState.ENDED}
NEXT = {
    CallState.RINGING: {CallState.TALKING} | _ANY_LIVE,
    CallState.TALKING: {CallState.QUEUED, CallState.TRANSFERRING} | _ANY_LIVE,
    CallState.QUEUED: {CallState.WITH_AGENT, CallState.TALKING} | _ANY_LIVE,
    CallState.WITH_AGENT: {CallState.QUEUED, CallState.TALKING} | _ANY_LIVE,
    CallState.TRANSFERRING: {CallState.TRANSFERRED, CallState.TALKING} | _ANY_LIVE,
    CallState.TRANSFERRED: set(),
    CallState.ENDING: {CallState.ENDED},
    CallState.ENDED: set(),
}


@dataclass(frozen=True)
class StateChanged:
    call_id: str
    before: CallState
    after: CallState


class CallStatus:
    """The one place a call's state changes. A transition the table does not allow is refused
    and logged, never raised: a bookkeeping slip must not drop a caller."""

    def __init__(self, call_id: str, *listeners: Callable[[StateChanged], None]):
        self.call_id = call_id
        self.state = CallState.RINGING
        self.listeners: List[Callable[[StateChanged], None]] = list(listeners)

    def to(self, after: CallState) -> bool:
        before = self.state
        if after == before:
            return False
        if after not in NEXT[before]:
            logger.warning("call %s: no way from %s to %s", self.call_id, before.value, after.value)
            return False
        self.state = after
        change = StateChanged(self.call_id, before, after)
        for listener in self.listeners:
            listener(change)
        return True

    @property
    def over(self) -> bool:
        """The bot has nothing more to do with the caller (hanging up, transferred or ended)."""
        return self.state in (CallState.ENDING, CallState.TRANSFERRED, CallState.ENDED)
