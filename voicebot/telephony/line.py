"""The bot's SIP line, the pjsua2 adapter: answers calls, routes each to its tenant by the
dialled number, turns pjsua callbacks into typed events for the call's session
(voicebot.call.session), and does what a session asks of its Phone (hang up, call an agent,
bridge, refer).

Everything here marked "SIP thread" runs on the pjsua2 thread (callbacks and `stack.run`).
A call's pjsua2 object is dropped in its DISCONNECTED callback, on the SIP thread: pjsua reuses
call slots, and a Call object destroyed after its slot went to a new call hangs up that new call
(pjsua2 2.15 ~Call). So only the line holds BotCalls, by SIP Call-ID; a session's SipPhone asks
for its call by that id, and finds nothing once it is gone.
"""

import asyncio
import concurrent.futures
import itertools
import logging
import urllib.parse
from typing import Dict, Optional

import pjsua2 as pj

from voicebot.audio.asr import Recognizers
from voicebot.audio.tts import PromptCache, Synthesizer, voice_for
from voicebot.audio.vad import detector_factory
from voicebot.call.ear import RecognizingEar
from voicebot.call.live import LiveCalls
from voicebot.call.events import (AgentAlerting, AgentAnswered, AgentHungUp, AgentMedia, HungUp, KeyPressed,
                                  MediaReady, TransferStatus)
from voicebot.call.phone import PhoneError, ShownAs
from voicebot.call.services import CallServices
from voicebot.call.session import CallSession
from voicebot.call.speaker import CachedVoice
from voicebot.config import Installation, Tenant
from voicebot.dialogue.runtime import Dialogue
from voicebot.queue.backend import QueueBackend
from voicebot.queue.registrar import Registrar
from voicebot.store import RecordStore
from voicebot.telephony.media import FramePort
from voicebot.telephony.sip import (SipError, SipStack, audio_active, audio_received, dialled_user, header_value,
                                    local_account, pj_error_text, uri_user, with_headers)
from voicebot.timeline import Kind

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
        self.received: Optional[dict] = None  # what its audio stream received, once that ended
        self.sent: Optional[dict] = None  # how punctually its frames were sent (FramePort.clock_lateness)

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
            self.line.post(self, MediaReady(self.port))

    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:  # its last moment: before DISCONNECTED
        try:
            self.received = audio_received(self, prm.streamIdx)
        except pj.Error as error:
            logger.warning("call %s: no audio statistics (%s)", self.sip_call_id, pj_error_text(error))
        if self.port is not None:
            self.sent = self.port.clock_lateness()

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # RFC 4733 and SIP INFO alike
        self.line.post(self, KeyPressed(prm.digit))

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        self.line.post(self, TransferStatus(prm.statusCode, prm.finalNotify))
        prm.cont = not prm.finalNotify

    def hung_up(self, status_code: Optional[int]):
        return HungUp(status_code, self.received, self.sent)


class AgentLeg(BotCall):
    """The bot's call to an agent for a queued caller (whose session gets its events as
    AgentAlerting, AgentAnswered, AgentMedia, AgentHungUp with the leg's Call-ID). Its port only speaks to
    the agent (the whisper): what the agent says reaches the caller through the bridge."""

    def onCallState(self, prm) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_EARLY and info.lastStatusCode == 180:
            self.line.post(self, AgentAlerting(self.sip_call_id))
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.line.post(self, AgentAnswered(self.sip_call_id))
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.line.disconnected(self, info.lastStatusCode)

    def onCallMediaState(self, prm) -> None:
        if self.port is None and self.session is not None and audio_active(self):
            self.port = self.line.lend_port(self.sip_call_id)
            self.port.startTransmit(self.getAudioMedia(-1))
            self.line.post(self, AgentMedia(self.sip_call_id, self.port))

    def hung_up(self, status_code: Optional[int]):
        return AgentHungUp(self.sip_call_id, status_code)


class SipPhone:
    """What a call's session may ask of SIP (voicebot.call.phone.Phone), by the call's Call-ID."""

    def __init__(self, line: "PhoneLine", call_id: str):
        self.line, self.call_id = line, call_id

    def hang_up(self) -> None:
        self.line.stack.run(self.line.hang_up_call, self.call_id)

    async def refer(self, uri: str, headers: Dict[str, str]) -> None:
        try:
            await self.line.sip(self.line.refer, self.call_id, uri, headers)
        except pj.Error as error:
            raise PhoneError(error.info()) from error

    async def call_agent(self, uri: str, headers: Dict[str, str], shown_as: ShownAs) -> str:
        try:
            return await self.line.sip(self.line.call_agent, self.call_id, uri, headers, shown_as)
        except (pj.Error, SipError) as error:
            raise PhoneError(pj_error_text(error)) from error

    def drop_agent(self, leg: str) -> None:
        self.line.stack.run(self.line.hang_up_call, leg)

    async def bridge(self, leg: str) -> bool:
        return await self.line.sip(self.line.bridge, self.call_id, leg)

    async def release(self) -> None:
        await self.line.sip(self.line.release, self.call_id)


def refer_target(uri: str, headers: dict) -> str:
    """Refer-To with the context as embedded headers (RFC 3261 19.1.1), so that the INVITE the
    caller's phone sends to the queue carries them too."""
    query = "&".join(f"{name}={urllib.parse.quote(value, safe='')}" for name, value in headers.items())
    return f"<{uri}?{query}>"


class PhoneLine:
    def __init__(self, inst: Installation, dialogue: Dialogue, asr: Recognizers, prompts: PromptCache,
                 store: RecordStore, queues: QueueBackend, calls: LiveCalls, host: Optional[str] = None,
                 port: Optional[int] = None):
        self.inst, self.prompts, self.queues, self.live = inst, prompts, queues, calls
        sip = inst.settings.sip
        self.stack = SipStack(host or sip.host, sip.port if port is None else port, sip.transports,
                              sip.codecs, self._make_account, self._hang_up_all, user_agent="voicebot")
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.calls: Dict[str, BotCall] = {}  # by SIP Call-ID, until disconnected; SIP thread only
        self.ports: Dict[str, FramePort] = {}  # lent to calls, by SIP Call-ID; SIP thread only
        self.agent_legs: Dict[str, str] = {}  # an agent leg's Call-ID -> its caller's; SIP thread only
        self.refusing: Dict[int, BotCall] = {}  # incoming calls being refused; SIP thread only
        self._refusals = itertools.count()
        self.registrar: Optional[Registrar] = None
        # Segmented recognisers (Whisper) decode turns here, off every call's listener thread.
        self.decoder = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
        ear = RecognizingEar(inst.settings, asr, self.decoder, detector_factory(inst.settings.audio))
        self.services = CallServices(inst.settings, dialogue, self.queues, store, ear, self._voice)
        self.closing = False

    def _voice(self, tenant: Tenant) -> CachedVoice:
        return CachedVoice(self.prompts, Synthesizer(voice_for(tenant), self.inst.settings.audio.words_per_minute))

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
        if call.sip_call_id in self.calls or call.sip_call_id in self.live:
            # A second dialog under a live call's Call-ID (forged): it must not take its place.
            return self._refuse(call, 482, "Loop Detected")
        caller = uri_user(header_value(message, "From") or "")
        self.calls[call.sip_call_id] = call
        call.session = CallSession(self.services, SipPhone(self, call.sip_call_id), tenant, call.sip_call_id,
                                   caller or None)
        self.live.add(call.session)
        answer = pj.CallOpParam()
        answer.statusCode = 200
        try:
            call.answer(answer)
        except pj.Error as error:
            logger.warning("could not answer %s: %s", call.sip_call_id, error.info())
            call.session.record.add(Kind.ERROR, where="answer")
            self.live.end(call.sip_call_id)
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

    def post(self, call: BotCall, event) -> None:
        if call.session is not None:
            self.loop.call_soon_threadsafe(call.session.event, event)

    def lend_port(self, call_id: str) -> FramePort:
        self.ports[call_id] = self.stack.ports.lend()
        return self.ports[call_id]

    def disconnected(self, call: BotCall, status_code: Optional[int] = None) -> None:
        """Drop every reference to the call now: the object goes when this callback returns."""
        if call.refused_as is not None:
            self.refusing.pop(call.refused_as, None)
            return
        self.post(call, call.hung_up(status_code))
        self.calls.pop(call.sip_call_id, None)
        call.session = None
        self._take_back_port(call.sip_call_id)

    def release(self, caller_id: str) -> None:
        """The session is over: its record is kept a while."""
        self.live.end(caller_id)
        for call_id in [caller_id] + [leg for leg, owner in self.agent_legs.items() if owner == caller_id]:
            self._take_back_port(call_id)

    def _take_back_port(self, call_id: str) -> None:
        """Once the call is disconnected and its session over, nothing uses its port."""
        session_id = self.agent_legs.get(call_id, call_id)
        if call_id not in self.calls and session_id not in self.live:
            self.agent_legs.pop(call_id, None)
            if call_id in self.ports:
                self.stack.ports.take_back(self.ports.pop(call_id))

    # -- agent legs, SIP thread
    def refer(self, caller_id: str, uri: str, headers: Dict[str, str]) -> None:
        """Transfer the caller, if still there (pj.Error if it cannot)."""
        call = self.calls.get(caller_id)
        if call is not None:
            call.xfer(refer_target(uri, headers), with_headers(headers))

    def call_agent(self, caller_id: str, uri: str, headers: Dict[str, str], shown_as: ShownAs) -> str:
        """Ring an agent for a queued caller; returns the leg's Call-ID (pj.Error if it cannot). The
        INVITE's From shows the citizen's number and line, as any softphone displays them."""
        session = self.live.get(caller_id)
        if session is None:
            raise SipError("the caller has gone")
        leg = AgentLeg(self, self.stack.account, pj.PJSUA_INVALID_ID)
        leg.session = session
        self.stack.media_setup()
        call = with_headers(headers)
        call.txOption.localUri = f'"{shown_as.display}" <sip:{shown_as.user}@{self.stack.host}:{self.stack.port}>'
        leg.makeCall(uri, call)
        info = leg.getInfo()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:  # failed at once: already forgotten
            raise SipError(f"{uri}: {info.lastStatusCode} {info.lastReason}")
        leg.sip_call_id = info.callIdString
        self.calls[leg.sip_call_id] = leg
        self.agent_legs[leg.sip_call_id] = caller_id
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
