"""A caller in the bot's own queue: hold music and announcements while waiting, a callback on
the keypad instead, ringing agents with the call's context, and the bridge once one answers.

Runs on the session's asyncio loop; the session forwards its events here while the caller is
queued. The queue (voicebot.queue) decides whom to ring; this module rings them through the
call's Phone and speaks through the session's Speaker.
"""

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Dict, List, Optional

from voicebot import clock
from voicebot.audio.format import RATE
from voicebot.audio.hold_music import hold_music
from voicebot.call.events import (AgentAlerting, AgentAnswered, AgentHungUp, AgentMedia, CallEvent, HungUp,
                                  KeyPressed)
from voicebot.call.phone import PhoneError, ShownAs
from voicebot.call.speaker import Speaker
from voicebot.call.state import CallState
from voicebot.clock import ms
from voicebot.queue.model import AgentStatus, RingResult, Waiter, minutes
from voicebot.timeline import Kind

if TYPE_CHECKING:
    from voicebot.call.session import CallSession

logger = logging.getLogger(__name__)

MUSIC_AHEAD_S = 1.0  # hold music queued ahead in the port: enough to ride out a busy loop
NUMBER = re.compile(r"^\d{6,15}$")
KEYPAD_TIMEOUT_S = 20


def rounded(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds, 1)


class QueuedCaller:
    def __init__(self, session: "CallSession", handoff: dict, headers: Dict[str, str]):
        self.session, self.handoff, self.headers = session, handoff, headers
        self.phone = session.phone
        self.queues = session.services.queues
        self.queue_id = handoff["queue"]
        self.settings = self.queues.queue(self.queue_id)
        municipality = session.tenant.municipalities.get(handoff.get("municipality") or "")
        self.shown_as = ShownAs(session.caller, municipality.name if municipality else session.tenant.name)
        self.waiter = Waiter(session.call_id, session.tenant.id, self.queue_id, self.ring,
                             on_answered=self._answered)
        self.music_at = 0
        self.music_started = False
        self.announcing = False
        self.keypad: Optional[asyncio.Queue] = None  # digits while the caller types a number
        self.legs: Dict[str, Leg] = {}  # ringing or answered agent legs by Call-ID
        self.agent: Optional[AgentStatus] = None
        self.agent_leg: Optional[str] = None
        self.bridged = False
        self.tasks: List[asyncio.Task] = []  # hold music, announcements, callback, connecting
        self.announcer: Optional[asyncio.Task] = None  # the one loop of position announcements
        self.done = asyncio.Event()
        self.failure: Optional[BaseException] = None

    # -- the session's side
    async def run(self) -> None:
        """Wait in the queue until bridged and finished, called back, or hung up."""
        record = self.session.record
        position = self.queues.join(self.waiter)
        record.add(Kind.QUEUE_ENTERED, queue=self.queue_id, position=position,
                   expected_wait_s=rounded(self.queues.expected_wait_s(self.waiter)))
        self.session.status.to(CallState.QUEUED)
        try:
            await self.session.played_out()  # the handoff sentence; agents already ring
            if self.agent is None and not self.music_started:
                self._wait_on_hold()
            await self.done.wait()
        finally:
            for task in self.tasks:
                task.cancel()
        if self.failure is not None:
            raise self.failure

    def event(self, event: CallEvent) -> None:
        match event:
            case AgentAlerting(leg=leg_id):  # the agent's phone rings
                self.session.record.add(Kind.AGENT_ALERTING, leg=leg_id,
                                        handoff_ms=ms(time.monotonic() - self.session.handoff_at))
            case AgentAnswered(leg=leg_id) | AgentMedia(leg=leg_id) | AgentHungUp(leg=leg_id):
                self._leg(leg_id).tell(event)
            case KeyPressed(digit=digit):
                self._on_digit(digit)
            case HungUp():
                self.caller_gone()

    async def utterance(self, text: str) -> None:
        """The caller said something while waiting: 'call me back' is the one thing we act on."""
        if not text or self.bridged or self.keypad is not None:
            return
        try:
            parsed = await self.session.dialogue.parse(self.session.tenant.language, text)
        except Exception:  # the NLU is away: the caller keeps waiting, which is what they were doing
            logger.exception("could not parse what a waiting caller said")
            return
        if parsed.get("intent", {}).get("name") == "callback_request":
            self._start(self._callback())

    def caller_gone(self) -> None:
        if self.queues.is_waiting(self.waiter):
            waited = self.queues.leave(self.waiter, "abandoned")
            self.session.record.add(Kind.QUEUE_ABANDONED, queue=self.queue_id, waited_s=round(waited, 1))
        self._end_agent_call()
        self.done.set()

    # -- while waiting
    def _on_hold(self) -> bool:
        """Music only while the caller just waits: not spoken to, not typing a number, not
        handed to an agent, still in the queue. Derived each time, since announcements, the
        callback and the agent's answer each run in their own task."""
        return (not self.announcing and self.keypad is None and self.agent is None
                and self.queues.is_waiting(self.waiter))

    async def _hold_music(self) -> None:
        music = hold_music(self.settings.hold_music, RATE)
        ahead = int(MUSIC_AHEAD_S * RATE * 2)
        speaker = self.session.speaker
        while not self.bridged:
            if self._on_hold() and speaker.queued_bytes < ahead:
                chunk = music[self.music_at:self.music_at + ahead]
                self.music_at = (self.music_at + len(chunk)) % len(music)
                speaker.play(chunk)
            await asyncio.sleep(0.2)

    def _wait_on_hold(self, opening: Optional[str] = None) -> None:
        """Hold music (once) and the announcements, (re)started. One announcement loop at a time:
        a second would interrupt the first's sentence (a lost agent's apology cut off by the old
        loop's position)."""
        if not self.music_started:
            self.music_started = True
            self._start(self._hold_music())
        if self.announcer is not None:
            self.announcer.cancel()
        self.announcer = self._start(self._announcements(opening))

    async def _announcements(self, opening: Optional[str] = None) -> None:
        """Position, expected wait and the callback key, every announce_every_s; once, past
        max_wait_s, an apology and the callback offer."""
        long_wait_told = False
        while self.queues.is_waiting(self.waiter):
            phrases = self.session.phrases
            if opening:
                await self._announce([opening], "queue_agent_lost")
                opening = None
            elif not long_wait_told and self.queues.waited_s(self.waiter) >= self.settings.max_wait_s:
                long_wait_told = True
                await self._announce([phrases.say("queue_long_wait")], "queue_long_wait")
            else:
                position, wait = self.queues.position(self.waiter), self.queues.expected_wait_s(self.waiter)
                texts = [phrases.say("queue_position", position=position)]
                if wait is not None:
                    texts.append(phrases.say("queue_wait_one") if minutes(wait) == 1
                                 else phrases.say("queue_wait", minutes=minutes(wait)))
                texts.append(phrases.say("queue_callback_key"))
                self.session.record.add(Kind.QUEUE_POSITION, position=position, expected_wait_s=rounded(wait))
                await self._announce(texts, "queue_position")
            await asyncio.sleep(self.settings.announce_every_s)

    async def _announce(self, texts: List[str], purpose: str) -> None:
        """Music stops, the bot speaks, music goes on (unless an agent answered meanwhile)."""
        if self.agent is not None or self.keypad is not None:
            return
        self.announcing = True
        try:
            self.session.speaker.interrupt()
            self.session.say(texts, purpose)
            await self.session.played_out()
        finally:
            self.announcing = False

    def _start(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        task.add_done_callback(self._check)
        self.tasks.append(task)
        return task

    def _check(self, task: asyncio.Task) -> None:
        """A part of the queue that fails must not leave the caller in silence."""
        if task.cancelled() or task.exception() is None:
            return
        self.failure = task.exception()
        self.done.set()  # run() raises it: the session tells the caller and goes on

    # -- a callback instead
    def _on_digit(self, digit: str) -> None:
        if self.keypad is not None:
            self.keypad.put_nowait(digit)
        elif digit == "1" and not self.bridged and self.agent is None:
            self._start(self._callback())

    async def _callback(self) -> None:
        """Confirm caller ID with 1, or type another number ending with #; stored for agents."""
        if self.keypad is not None or not self.queues.is_waiting(self.waiter):
            return
        self.keypad = asyncio.Queue()
        self.waiter.hold = True  # keeps the place, but no agent rings while the caller types
        session, phrases = self.session, self.session.phrases
        session.record.add(Kind.CALLBACK_OFFERED, queue=self.queue_id)
        try:
            number = await self._ask_number()
        finally:
            self.keypad, self.waiter.hold = None, False
        if number is None:  # nothing usable typed: back to waiting
            self.queues.dispatch()
            return
        session.services.store.add_callback(session.tenant.id, session.call_id, number,
                                        (self.handoff.get("topics") or [""])[-1], clock.now())
        waited = self.queues.leave(self.waiter, "callback")
        session.record.add(Kind.CALLBACK_REQUESTED, queue=self.queue_id, number_ending=number[-4:],
                           waited_s=round(waited, 1))
        session.speaker.interrupt()
        session.say([phrases.say("callback_recorded", last_digits=" ".join(number[-4:]),
                                 promise=session.tenant.callback_promise)], "callback_recorded")
        await session.played_out()
        self.done.set()
        session.hang_up()

    async def _ask_number(self) -> Optional[str]:
        session, phrases = self.session, self.session.phrases
        caller_id = re.sub(r"\D", "", session.caller or "")
        for _attempt in range(2):
            session.speaker.interrupt()
            if NUMBER.match(caller_id):
                prompt = phrases.say("callback_confirm_number", digits=" ".join(caller_id))
            else:
                prompt = phrases.say("callback_enter_number")
            session.say([prompt], "callback_number")
            typed = ""
            try:
                while True:
                    digit = await asyncio.wait_for(self.keypad.get(), KEYPAD_TIMEOUT_S)
                    session.speaker.interrupt()
                    if digit == "1" and not typed and NUMBER.match(caller_id):
                        return caller_id
                    if digit == "#":
                        break
                    if digit.isdigit():
                        typed += digit
            except asyncio.TimeoutError:
                pass
            if NUMBER.match(typed):
                return typed
        return None

    # -- ringing agents (the queue calls this)
    async def ring(self, agents: List[AgentStatus], timeout: float) -> RingResult:
        result = RingResult(None)
        headers = {**self.headers, "X-Voicebot-Queue": self.queue_id,
                   "X-Voicebot-Waited": str(round(self.queues.waited_s(self.waiter)))}
        deadline = time.monotonic() + timeout
        ringing: Dict[str, AgentStatus] = {}
        try:
            for agent in agents:
                try:
                    leg_id = await self.phone.call_agent(agent.uri, headers, self.shown_as)
                except PhoneError as error:  # an address that cannot be called
                    self._missed(result, agent, f"unreachable: {error}")
                    continue
                ringing[leg_id] = agent
                self.session.record.add(Kind.AGENT_RINGING, agent=agent.id, leg=leg_id,
                                        handoff_ms=ms(time.monotonic() - self.session.handoff_at))
            answered = await self._first_answer(ringing, deadline, result)
            if answered:
                result.answered, self.agent_leg = ringing[answered], answered
            return result
        finally:
            for leg_id in ringing:
                if leg_id != self.agent_leg:
                    self._drop_leg(leg_id)

    async def _first_answer(self, ringing: Dict[str, AgentStatus], deadline: float,
                            result: RingResult) -> Optional[str]:
        """The Call-ID of the first leg answered; legs that end or time out go to result.missed."""
        pending = {asyncio.ensure_future(self._leg(leg_id).outcome()): leg_id for leg_id in ringing}
        try:
            while pending:
                done, _ = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()),
                                             return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    break
                for task in done:
                    leg_id = pending.pop(task)
                    if task.result() is None:
                        return leg_id
                    self._missed(result, ringing[leg_id], f"declined: {task.result()}")
            for leg_id in pending.values():
                self._missed(result, ringing[leg_id], "no answer")
            return None
        finally:
            for task in pending:
                task.cancel()

    def _missed(self, result: RingResult, agent: AgentStatus, why: str) -> None:
        result.missed.append((agent, why))
        self.session.record.add(Kind.AGENT_MISSED, agent=agent.id, why=why)

    def _leg(self, leg_id: str) -> "Leg":
        return self.legs.setdefault(leg_id, Leg())

    def _drop_leg(self, leg_id: str) -> None:
        self.legs.pop(leg_id, None)
        self.phone.drop_agent(leg_id)

    # -- the agent answered
    def _answered(self, agent: AgentStatus) -> None:
        self.agent = agent
        self.session.status.to(CallState.WITH_AGENT)
        waited = self.queues.waited_s(self.waiter)
        self.session.record.add(Kind.QUEUE_ANSWERED, queue=self.queue_id, agent=agent.id, waited_s=round(waited, 1))
        self._start(self._connect())

    async def _connect(self) -> None:
        """Whisper to the agent, then bridge; the agent hanging up first puts the caller back."""
        session, leg = self.session, self._leg(self.agent_leg)
        answered_at = time.monotonic()
        try:
            port = await leg.until(leg.media)
            if self.music_started:  # music or an announcement: cut short
                session.speaker.interrupt()
            else:  # the handoff sentence: the caller hears it out
                await leg.until(session.played_out())
            if self.settings.whisper:  # the caller hears "connecting you" while the agent hears who calls
                session.say([session.phrases.say("queue_connecting")], "queue_connecting")
                await leg.until(self._whisper(port))
                await leg.until(session.played_out())
            if not await self.phone.bridge(self.agent_leg):
                raise AgentLost()
        except AgentLost:
            self._agent_lost()
            return
        self.bridged = True
        session.record.add(Kind.BRIDGED, agent=self.agent.id, two_way_ms=ms(time.monotonic() - answered_at))
        session.stop_listening()
        await leg.hangup
        session.record.add(Kind.AGENT_HUNG_UP, agent=self.agent.id)
        self._end_agent_call()
        self.done.set()
        session.hang_up()

    async def _whisper(self, port) -> None:
        """Who is calling and about what, in the agent's ear only."""
        session = self.session
        phrases = session.phrases
        topic = next((t for t in reversed(self.handoff.get("topics") or []) if t in phrases.data["topics"]), None)
        text = phrases.say("agent_whisper", tenant=session.tenant.name) + (
            " " + phrases.say("agent_whisper_topic", topic=phrases.data["topics"][topic]) if topic else "")
        to_agent = Speaker(port, session.voice)
        to_agent.say([text], "agent_whisper")
        session.record.add(Kind.AGENT_WHISPER, agent=self.agent.id, text=text)
        await to_agent.played_out()

    def _agent_lost(self) -> None:
        """The agent hung up before the bridge: the caller keeps their place and waits again."""
        session = self.session
        session.record.add(Kind.AGENT_LOST, agent=self.agent.id)
        self.queues.finished(self.agent)
        self.legs.pop(self.agent_leg, None)
        self.agent, self.agent_leg = None, None
        if session.ended:
            self.done.set()
            return
        session.status.to(CallState.QUEUED)
        self.queues.join(self.waiter, again=True)
        self._wait_on_hold(opening=session.phrases.say("queue_agent_lost"))

    def _end_agent_call(self) -> None:
        if self.agent is not None:
            self.queues.finished(self.agent)
        for leg_id in list(self.legs):
            self._drop_leg(leg_id)


class Leg:
    """What the SIP thread told about one agent leg, whenever it arrives (media may come before
    the answer, and both before ring() knows the leg's Call-ID)."""

    def __init__(self):
        loop = asyncio.get_running_loop()
        self.answered, self.media, self.hangup = loop.create_future(), loop.create_future(), loop.create_future()

    def tell(self, event: CallEvent) -> None:
        match event:
            case AgentAnswered():
                future, value = self.answered, None
            case AgentMedia(port=port):
                future, value = self.media, port
            case AgentHungUp(status=status):
                future, value = self.hangup, status
            case _:
                return
        if not future.done():
            future.set_result(value)

    async def outcome(self) -> Optional[int]:
        """None once answered; the SIP status code if the leg ends first."""
        await asyncio.wait([self.answered, self.hangup], return_when=asyncio.FIRST_COMPLETED)
        return None if self.answered.done() else (self.hangup.result() or 0)

    async def until(self, awaitable):
        """Await something unless the agent hangs up first (AgentLost)."""
        task = asyncio.ensure_future(awaitable)
        await asyncio.wait([task, self.hangup], return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            raise AgentLost()
        return task.result()


class AgentLost(Exception):
    """The agent's leg ended before the caller was connected."""
