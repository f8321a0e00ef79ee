"""The bot's SIP line: answers calls, routes each to its tenant by the dialled number, and runs
a CallSession per call on the asyncio loop that drives the dialogue.

Everything here marked "SIP thread" runs on the pjsua2 thread (callbacks and `stack.run`).
A call's pjsua2 object is dropped in its DISCONNECTED callback, on the SIP thread: pjsua reuses
call slots, and a Call object destroyed after its slot went to a new call hangs up that new call
(pjsua2 2.15 ~Call). So only the line holds BotCalls; a session reaches its call through
`session.call`, which the line clears at that moment.
"""

import asyncio
import collections
import concurrent.futures
import itertools
import logging
import time
from typing import Deque, Dict, List, Optional

import pjsua2 as pj

from voicebot.audio.asr import Recognizers
from voicebot.audio.tts import PromptCache
from voicebot.audio.vad import detector_factory
from voicebot.config import Installation
from voicebot.dialogue.runtime import Dialogue
from voicebot.queue.registrar import Registrar
from voicebot.queue.service import queue_service
from voicebot.store import CallRecord, RecordStore
from voicebot.telephony.media import FramePort
from voicebot.telephony.session import CallSession
from voicebot.telephony.sip import SipError, SipStack, audio_active, dialled_user, header_value, local_account, uri_user, with_headers

logger = logging.getLogger(__name__)

class BotAccount(pj.Account):
    def __init__(self, line: "PhoneLine"):
        super().__init__()
        self.line = line

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # SIP thread
        self.line.incoming(prm)


class BotCall(pj.Call):
    def __init__(self, line: "PhoneLine", account: pj.Account, call_id: int):
        super().__init__(account, call_id)
        self.line = line
        self.port: Optional[FramePort] = None
        self.session: Optional[CallSession] = None
        self.sip_call_id = ""
        self.refused_as: Optional[int] = None  # its key in PhoneLine.refusing, if refused

    # SIP thread callbacks
    def onCallState(self, prm) -> None:
        if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.line.disconnected(self)

    def onCallMediaState(self, prm) -> None:
        if self.port is None and self.session is not None and audio_active(self):
            self.port = self.line.lend_port(self.sip_call_id)
            audio = self.getAudioMedia(-1)
            audio.startTransmit(self.port)
            self.port.startTransmit(audio)
            self.line.post(self, "media", self.port)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # RFC 4733 and SIP INFO alike
        self.line.post(self, "dtmf", prm.digit)

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        self.line.post(self, "transfer_status", (prm.statusCode, prm.finalNotify))
        prm.cont = not prm.finalNotify


class AgentLeg(BotCall):
    """The bot's call to an agent for a queued caller (whose session gets its events as
    agent_alerting, agent_answered, agent_media, agent_hangup with the leg's Call-ID). Its port only speaks to
    the agent (the whisper): what the agent says reaches the caller through the bridge."""

    def onCallState(self, prm) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_EARLY and info.lastStatusCode == 180:
            self.line.post(self, "alerting", None)
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.line.post(self, "answered", None)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.line.disconnected(self, info.lastStatusCode)

    def onCallMediaState(self, prm) -> None:
        if self.port is None and self.session is not None and audio_active(self):
            self.port = self.line.lend_port(self.sip_call_id)
            self.port.startTransmit(self.getAudioMedia(-1))
            self.line.post(self, "media", self.port)


class PhoneLine:
    def __init__(self, inst: Installation, dialogue: Dialogue, asr: Recognizers,
                 prompts: PromptCache, store: RecordStore, host: Optional[str] = None, port: Optional[int] = None):
        self.inst, self.dialogue, self.asr, self.prompts, self.store = inst, dialogue, asr, prompts, store
        sip = inst.settings.sip
        self.stack = SipStack(host or sip.host, sip.port if port is None else port, sip.transports,
                              sip.codecs, self._make_account, self._hang_up_all, user_agent="voicebot")
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.calls: Dict[str, BotCall] = {}  # by SIP Call-ID, until disconnected; SIP thread only
        self.sessions: Dict[str, CallSession] = {}  # by SIP Call-ID, until the session is over
        self.ports: Dict[str, FramePort] = {}  # lent to calls, by SIP Call-ID; SIP thread only
        self.agent_legs: Dict[str, str] = {}  # an agent leg's Call-ID -> its caller's; SIP thread only
        self.refusing: Dict[int, BotCall] = {}  # incoming calls being refused; SIP thread only
        self._refusals = itertools.count()
        self.finished: Deque[CallRecord] = collections.deque(maxlen=200)
        self.queues = queue_service(inst.settings)
        self.queues.live_calls = lambda: self.live_calls(self.queues.snapshot())
        self.registrar: Optional[Registrar] = None
        self.make_detector = detector_factory(inst.settings.audio)  # each call's voice activity detector
        # Segmented recognisers (Whisper) decode turns here, off every call's listener thread.
        self.decoder = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
        self.closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> "PhoneLine":
        self.loop = loop
        self.queues.start()
        self.stack.start()
        self.stack.register_this_thread("asyncio")  # sessions use media ports here
        return self

    async def start_registrar(self, port: Optional[int] = None) -> Optional[Registrar]:
        """Where agents' softphones log in, if any agent registers (rather than a fixed URI)."""
        settings = self.inst.settings.agent_registrar
        credentials = {a.username: a.ha1 for a in self.inst.settings.agents.values() if a.username}
        if credentials:
            self.registrar = await Registrar(settings.host, settings.port if port is None else port, settings.realm,
                                             credentials, self.queues.registered,
                                             max_failures=settings.max_failures,
                                             max_agent_failures=settings.max_agent_failures).start()
        return self.registrar

    def stop(self) -> None:
        self.closing = True
        self.queues.stop()
        if self.registrar:
            self.registrar.stop()
        self.stack.stop()
        self.decoder.shutdown(wait=False, cancel_futures=True)

    @property
    def address(self) -> str:
        return f"{self.stack.host}:{self.stack.port}"

    def live_calls(self, queues: dict) -> List[dict]:
        """The calls in progress here, for operators: state, intent so far, seconds in the call and
        in the queue (`queues`: the queue snapshot they are read against)."""
        now = time.time()
        waiting = {w["call_id"]: w["waited_s"] for q in queues["queues"] for w in q["waiting"]}
        calls = []
        for session in list(self.sessions.values()):
            record = session.record
            intents = [e.get("intent") for e in record.events if e["event"] == "bot" and e.get("intent")]
            calls.append({"id": record.call_id, "tenant": record.tenant, "state": "queued" if record.call_id in waiting
                          else "with agent" if session.queued is not None else record.state,
                          "intent": intents[-1] if intents else None, "seconds": round(now - record.started),
                          "waited_s": waiting.get(record.call_id)})
        return calls

    def records(self) -> list:
        return [s.record for s in list(self.sessions.values())] + list(self.finished)

    def sip(self, fn, *args) -> "asyncio.Future":
        """Run fn on the SIP thread; await the result from the asyncio loop."""
        return asyncio.wrap_future(self.stack.run(fn, *args), loop=self.loop)

    # -- SIP thread
    def _make_account(self, ep: pj.Endpoint) -> pj.Account:
        return local_account(ep, BotAccount, self.stack.host, self.stack.port, "voicebot", self)

    def incoming(self, prm: pj.OnIncomingCallParam) -> None:
        self.stack.media_setup()
        call = BotCall(self, self.stack.account, prm.callId)
        message = prm.rdata.wholeMsg
        call.sip_call_id = header_value(message, "Call-ID") or str(prm.callId)
        number = dialled_user(message)
        tenant = self.inst.tenant_for_dialled(number)
        if tenant is None:
            logger.info("refused a call to %r: no line has that number", number)
            return self._refuse(call, 404, "No such line")
        if self.closing:
            return self._refuse(call, 503, "Shutting down, please call again")
        if call.sip_call_id in self.calls or call.sip_call_id in self.sessions:
            # A second dialog under a live call's Call-ID (forged): it must not take its place.
            return self._refuse(call, 482, "Loop Detected")
        caller = uri_user(header_value(message, "From") or "")
        self.calls[call.sip_call_id] = call
        call.session = self.sessions[call.sip_call_id] = CallSession(self, tenant, call, call.sip_call_id,
                                                                     caller or None)
        answer = pj.CallOpParam()
        answer.statusCode = 200
        try:
            call.answer(answer)
        except pj.Error as error:
            logger.warning("could not answer %s: %s", call.sip_call_id, error.info())
            call.session.record.add("error", where="answer")
            call.session.record.end()
            self.sessions.pop(call.sip_call_id)
            self.calls.pop(call.sip_call_id)
            call.session = None
            self._refuse(call, 488, "Not acceptable here")
            return
        self.loop.call_soon_threadsafe(call.session.start)

    def _refuse(self, call: BotCall, code: int, reason: str) -> None:
        """Refuse an incoming call once onIncomingCall has returned (hanging up inside it aborts
        the process: voicebot.telephony.sip.SipStack.soon). The call is kept under a number of
        its own until its DISCONNECTED callback; the job holds only that number, as a pjsua2
        Call object outliving its call would hang up the next call in its slot."""
        number = call.refused_as = next(self._refusals)
        self.refusing[number] = call

        def refuse() -> None:
            refused = self.refusing.get(number)
            if refused is not None and refused.isActive():
                op = pj.CallOpParam()
                op.statusCode, op.reason = code, reason
                try:
                    refused.hangup(op)
                except pj.Error:
                    self.refusing.pop(number, None)
        self.stack.soon(refuse)

    def post(self, call: BotCall, kind: str, value) -> None:
        if call.session is not None:
            if isinstance(call, AgentLeg):
                kind, value = f"agent_{kind}", (call.sip_call_id, value)
            self.loop.call_soon_threadsafe(call.session.event, kind, value)

    def lend_port(self, call_id: str) -> FramePort:
        self.ports[call_id] = self.stack.ports.lend()
        return self.ports[call_id]

    def disconnected(self, call: BotCall, status_code: Optional[int] = None) -> None:
        """Drop every reference to the call now: the object goes when this callback returns."""
        if call.refused_as is not None:
            self.refusing.pop(call.refused_as, None)
            return
        self.post(call, "hangup", status_code)
        self.calls.pop(call.sip_call_id, None)
        if call.session is not None and not isinstance(call, AgentLeg):
            call.session.call = None
        call.session = None
        self._take_back_port(call.sip_call_id)

    def release(self, session: CallSession) -> None:
        """The session is over: keep its record."""
        session.port = None
        self.sessions.pop(session.call_id, None)
        self.finished.append(session.record)
        session.record.end()
        for call_id in [session.call_id] + [leg for leg, owner in self.agent_legs.items() if owner == session.call_id]:
            self._take_back_port(call_id)

    def _take_back_port(self, call_id: str) -> None:
        """Once the call is disconnected and its session over, nothing uses its port."""
        session_id = self.agent_legs.get(call_id, call_id)
        if call_id not in self.calls and session_id not in self.sessions:
            self.agent_legs.pop(call_id, None)
            if call_id in self.ports:
                self.stack.ports.take_back(self.ports.pop(call_id))

    # -- agent legs, SIP thread
    def call_agent(self, session: CallSession, uri: str, headers: Dict[str, str]) -> str:
        """Ring an agent for a queued caller; returns the leg's Call-ID (pj.Error if it cannot)."""
        leg = AgentLeg(self, self.stack.account, pj.PJSUA_INVALID_ID)
        leg.session = session
        self.stack.media_setup()
        leg.makeCall(uri, with_headers(headers))
        info = leg.getInfo()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:  # failed at once: already forgotten
            raise SipError(f"{uri}: {info.lastStatusCode} {info.lastReason}")
        leg.sip_call_id = info.callIdString
        self.calls[leg.sip_call_id] = leg
        self.agent_legs[leg.sip_call_id] = session.call_id
        return leg.sip_call_id

    def hang_up_call(self, call_id: str) -> None:
        """Hang up a call (a caller's or an agent leg) unless it is already gone."""
        call = self.calls.get(call_id)
        if call is not None and call.isActive():
            try:
                call.hangup(pj.CallOpParam())
            except pj.Error:
                pass

    def bridge(self, caller_id: str, leg_id: str) -> bool:
        """Join a caller and an agent through the conference bridge; the caller's own port
        stops listening (the bot has nothing more to hear) but can still speak to the caller."""
        caller, leg = self.calls.get(caller_id), self.calls.get(leg_id)
        if caller is None or leg is None or not (audio_active(caller) and audio_active(leg)):
            return False
        caller_audio, agent_audio = caller.getAudioMedia(-1), leg.getAudioMedia(-1)
        caller_audio.startTransmit(agent_audio)
        agent_audio.startTransmit(caller_audio)
        if caller.port is not None:
            caller_audio.stopTransmit(caller.port)
        return True

    def _hang_up_all(self) -> None:
        for call_id in list(self.calls):
            self.hang_up_call(call_id)

    # -- for sessions, any thread
    def hang_up(self, session: CallSession) -> None:
        self.stack.run(self.hang_up_call, session.call_id)
