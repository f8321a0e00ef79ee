"""The bot's SIP line: answers calls, routes each to its tenant by the dialled number, and runs
a CallSession per call on the asyncio loop that drives the dialogue.

Everything here marked "SIP thread" runs on the pjsua2 thread (callbacks and `stack.run`).
"""

import asyncio
import collections
import logging
from typing import Deque, Dict, Optional

import pjsua2 as pj

from voicebot.audio.asr import ModelRegistry
from voicebot.audio.tts import PromptCache
from voicebot.config import Installation
from voicebot.dialogue.runtime import Dialogue
from voicebot.telephony.media import FramePort
from voicebot.telephony.session import CallRecord, CallSession
from voicebot.telephony.sip import SipStack, audio_active, dialled_user, header_value, local_account

logger = logging.getLogger(__name__)

MAX_CALLS = 60


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

    # SIP thread callbacks
    def onCallState(self, prm) -> None:
        if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.line.disconnected(self)

    def onCallMediaState(self, prm) -> None:
        if self.port is None and self.session is not None and audio_active(self):
            self.port = FramePort(f"call-{self.getId()}")
            audio = self.getAudioMedia(-1)
            audio.startTransmit(self.port)
            self.port.startTransmit(audio)
            self.line.post(self, "media", self.port)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # RFC 4733 and SIP INFO alike
        self.line.post(self, "dtmf", prm.digit)

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        self.line.post(self, "transfer_status", (prm.statusCode, prm.finalNotify))
        prm.cont = not prm.finalNotify


class PhoneLine:
    def __init__(self, inst: Installation, dialogue: Dialogue, asr: ModelRegistry,
                 prompts: PromptCache, host: Optional[str] = None, port: Optional[int] = None):
        self.inst, self.dialogue, self.asr, self.prompts = inst, dialogue, asr, prompts
        sip = inst.settings.sip
        self.stack = SipStack(host or sip.host, sip.port if port is None else port, sip.transports,
                              sip.codecs, self._make_account, self._hang_up_all, user_agent="voicebot")
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.calls: Dict[int, BotCall] = {}
        self.finished: Deque[CallRecord] = collections.deque(maxlen=200)
        self.closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> "PhoneLine":
        self.loop = loop
        self.stack.start()
        self.stack.register_this_thread("asyncio")  # sessions end here, holding their call
        return self

    def stop(self) -> None:
        self.closing = True
        self.stack.stop()

    @property
    def address(self) -> str:
        return f"{self.stack.host}:{self.stack.port}"

    def records(self) -> list:
        live = [c.session.record for c in list(self.calls.values()) if c.session]
        return live + list(self.finished)

    def sip(self, fn, *args) -> "asyncio.Future":
        """Run fn on the SIP thread; await the result from the asyncio loop."""
        return asyncio.wrap_future(self.stack.run(fn, *args), loop=self.loop)

    # -- SIP thread
    def _make_account(self, ep: pj.Endpoint) -> pj.Account:
        return local_account(ep, BotAccount, self.stack.host, self.stack.port, "voicebot", self)

    def incoming(self, prm: pj.OnIncomingCallParam) -> None:
        call = BotCall(self, self.stack.account, prm.callId)
        message = prm.rdata.wholeMsg
        number = dialled_user(message)
        tenant = self.inst.tenant_for_number(number) or self.inst.tenant_for_number("+" + number)
        if tenant is None:
            logger.info("rejected a call to %r: no line has that number", number)
            return self._reject(call, 404, "No such line")
        if self.closing or len(self.calls) >= MAX_CALLS:
            return self._reject(call, 503, "Busy, please call again")
        call.sip_call_id = header_value(message, "Call-ID") or str(prm.callId)
        caller = dialled_user("X " + (header_value(message, "From") or "").strip("<>").split(">")[0])
        self.calls[call.getId()] = call
        call.session = CallSession(self, tenant, call, call.sip_call_id, caller or None)
        answer = pj.CallOpParam()
        answer.statusCode = 200
        try:
            call.answer(answer)
        except pj.Error as error:
            logger.warning("could not answer %s: %s", call.sip_call_id, error.info())
            self._reject(call, 488, "Not acceptable here")
            return
        self.loop.call_soon_threadsafe(call.session.start)

    @staticmethod
    def _reject(call: BotCall, code: int, reason: str) -> None:
        op = pj.CallOpParam()
        op.statusCode = code
        op.reason = reason
        try:
            call.hangup(op)
        except pj.Error:
            pass

    def post(self, call: BotCall, kind: str, value) -> None:
        if call.session is not None:
            self.loop.call_soon_threadsafe(call.session.event, kind, value)

    def disconnected(self, call: BotCall) -> None:
        self.post(call, "hangup", None)
        if call.session is None:  # rejected before a session began
            self.calls.pop(call.getId(), None)

    def release(self, call: BotCall) -> None:
        """The session is over: drop the call and its media port here, on the SIP thread."""
        call.port = None
        self.calls.pop(call.getId(), None)
        if call.session is not None:
            self.finished.append(call.session.record)
            call.session = None

    def _hang_up_all(self) -> None:
        for call in list(self.calls.values()):
            try:
                call.hangup(pj.CallOpParam())
            except pj.Error:
                pass
            call.port = None
        self.calls.clear()

    # -- for sessions, any thread
    def hang_up(self, call: BotCall) -> None:
        def hang_up():
            if call.isActive():
                call.hangup(pj.CallOpParam())
        self.stack.run(hang_up)
