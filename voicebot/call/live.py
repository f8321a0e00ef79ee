"""The calls in progress on this worker, and the last ones finished: the phone line adds and
ends them; operators (HTTP API, dashboard) and a shared queue's other workers read them."""

import collections
import time
from typing import TYPE_CHECKING, Deque, Dict, List

from voicebot.store import CallRecord
from voicebot.timeline import Kind

if TYPE_CHECKING:
    from voicebot.call.session import CallSession

KEEP_FINISHED = 200


class LiveCalls:
    def __init__(self):
        self.sessions: Dict[str, "CallSession"] = {}  # by call id, until the session is over
        self.finished: Deque[CallRecord] = collections.deque(maxlen=KEEP_FINISHED)

    def __contains__(self, call_id: str) -> bool:
        return call_id in self.sessions

    def get(self, call_id: str):
        return self.sessions.get(call_id)

    def add(self, session: "CallSession") -> None:
        self.sessions[session.call_id] = session

    def end(self, call_id: str) -> None:
        """The session is over: its record is finished and kept a while."""
        session = self.sessions.pop(call_id)
        self.finished.append(session.record)
        session.record.end()

    def listed(self) -> List[dict]:
        """For operators: each call's state, intent so far, seconds in the call and in the queue."""
        now = time.time()
        calls = []
        for session in list(self.sessions.values()):
            record = session.record
            intents = [e.get("intent") for e in record.events if e["event"] == Kind.BOT and e.get("intent")]
            calls.append({"id": record.call_id, "tenant": record.tenant, "state": session.state.value,
                          "intent": intents[-1] if intents else None, "seconds": round(now - record.started),
                          "waited_s": session.waited_s})
        return calls

    def rung(self) -> List[dict]:
        """The calls in progress that rang an agent, whole (the caller's number, every event): what
        an agent's desk on another worker shows of them."""
        return [session.record.as_dict() for session in list(self.sessions.values())
                if any("agent" in event for event in session.record.events)]

    def records(self) -> List[CallRecord]:
        return [s.record for s in list(self.sessions.values())] + list(self.finished)
