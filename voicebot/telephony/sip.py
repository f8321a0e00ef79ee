"""The pjsua2 endpoint, owned by one thread.

pjsua2 rules (../shared/DESIGN.md): threadCnt=0 and libHandleEvents() polled on one thread;
every other call into pjsua2 is handed to that thread with `run`; media callbacks run on the
conference bridge clock and only copy bytes; shutdown in order, else pjsua asserts.
"""

import collections
import concurrent.futures
import ctypes
import gc
import logging
import os
import queue
import re
import sys
import threading
import time
from typing import Callable, Dict, Iterable, Optional

import pjsua2 as pj

from voicebot.telephony.media import RATE, PortPool

logger = logging.getLogger(__name__)

# PJSUA_MAX_CALLS as compiled into the pjsua2-python wheel: one endpoint holds at most this many
# calls, whatever uaConfig.maxCalls says; pjsua answers the next INVITE with 486 Busy Here.
MAX_CALLS = 4
TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}
# Every call's RTP and RTCP sockets take a slot in pjmedia's ioqueue, which has 64
# (PJ_IOQUEUE_MAX_HANDLES); a closed socket's slot comes back only 500 ms later
# (PJ_IOQUEUE_KEY_FREE_DELAY), and when none is free the wheel's pj_assert aborts the process.
# pjsua opens a call's sockets before the line sees the INVITE, so about 30 calls set up and
# ended within half a second (INVITEs cancelled at once, or to a number no line has) would do
# it. The SIP thread reads no message while this many calls were set up within the window.
MEDIA_SETUPS_PER_WINDOW, MEDIA_WINDOW_S = 16, 0.6
# How long a transaction waits for its end (64*T1 = 32 s by RFC 3261). It bounds how long an
# answered INVITE that is never ACKed holds a call slot: pjsip keeps retransmitting the 200 and
# delays our BYE until then, so four such packets shut a worker's line for over half a minute.
# A phone ACKs within a round trip; a BYE or INFO gets its answer as fast. (An INVITE we send
# waits longer: its timer stops at the first provisional response.)
TRANSACTION_TIMEOUT_MS = 5000
PJMEDIA_JB_DISCARD_NONE = 0  # pjmedia/jbuf.h: discard nothing but what overflows the buffer


class SipError(RuntimeError):
    pass


def _set_transaction_timeout(ms: int) -> None:
    """pjsua2 has no setting for it; pjsip's C function is exported by the same library."""
    library = ctypes.CDLL(pj._pjsua2.__file__)  # already loaded: the same handle, the same timers
    library.pjsip_tsx_set_timers.argtypes = [ctypes.c_uint] * 4
    library.pjsip_tsx_set_timers(0, 0, 0, ms)  # 0: leave T1, T2, T4 as they are


def _hold_jitter_floor(media: pj.MediaConfig, ms: int) -> None:
    """Jitter buffers that start with `ms` and keep it. jbMinPre alone bounds only the prefetch
    after a buffer ran dry: pjsua's progressive discard shrinks a buffer to one frame on a quiet
    network. The wheel gives the discard algorithm only as a SWIG copy of an opaque enum: set
    the copy in place and assign it back."""
    media.jbInit = media.jbMinPre = ms
    algorithm = media.jbDiscardAlgo
    ctypes.c_int.from_address(int(algorithm)).value = PJMEDIA_JB_DISCARD_NONE
    media.jbDiscardAlgo = algorithm


def pj_error_text(error: Exception) -> str:
    return getattr(error, "info", lambda: str(error))() if isinstance(error, pj.Error) else str(error)


class SipStack:
    """Creates the endpoint on its own thread, runs events there, and runs `run(fn)` there.

    `make_account(endpoint)` is called on that thread once the transports are up and returns
    the pjsua2 Account that receives or places calls. `on_stop()` runs there before shutdown
    (hang up calls, stop media); afterwards the account is deleted and the library destroyed.
    `jitter_floor_ms`: what the calls' jitter buffers hold at least, as a real phone's (pjsua's
    own adaptive buffers shrink to one frame, 20 ms, on a quiet network).
    """

    def __init__(self, host: str, port: int, transports: Iterable[str], codecs: Iterable[str],
                 make_account: Callable[[pj.Endpoint], pj.Account],
                 on_stop: Callable[[], None] = lambda: None, user_agent: str = "voicebot",
                 jitter_floor_ms: Optional[int] = None):
        self.host, self.requested_port = host, port
        self.transports, self.codecs = list(transports), list(codecs)
        self.make_account, self.on_stop, self.user_agent = make_account, on_stop, user_agent
        self.jitter_floor_ms = jitter_floor_ms
        self.port: Optional[int] = None
        self.ports = PortPool(user_agent)  # media ports for calls, SIP thread only
        self.endpoint: Optional[pj.Endpoint] = None
        self.account: Optional[pj.Account] = None
        self._jobs: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._media_setups: "collections.deque[float]" = collections.deque()  # SIP thread only
        self._startup_error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._main, name="sip", daemon=True)

    # -- from any thread
    def start(self, timeout: float = 20) -> "SipStack":
        # Every 20 ms the bridge's clock thread needs the GIL for each call's media port; with
        # the default 5 ms switch interval, busy Python threads (dialogue, listeners) delay it
        # enough that the far end's jitter buffer runs dry.
        sys.setswitchinterval(0.001)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise SipError("the SIP endpoint did not start")
        if self._startup_error:
            raise SipError(f"could not start SIP on {self.host}:{self.requested_port}: "
                           f"{pj_error_text(self._startup_error)}")
        return self

    def run(self, fn: Callable, *args) -> concurrent.futures.Future:
        """Run fn(*args) on the SIP thread; the future holds its result or exception."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        if threading.current_thread() is self._thread:
            self._run_job(fn, args, future)
        else:
            self._jobs.put((fn, args, future))
        return future

    def soon(self, fn: Callable, *args) -> None:
        """Run fn(*args) on the SIP thread once the current callback has returned: pjsua2 must
        not hang up a call inside onIncomingCall (for an INVITE without SDP it frees the cloned
        rdata twice and aborts the process)."""
        self._jobs.put((fn, args, concurrent.futures.Future()))

    def register_this_thread(self, name: str) -> None:
        """Let this thread drop pjsua2 objects (a call's last reference may end here)."""
        if not self.endpoint.libIsThreadRegistered():
            self.endpoint.libRegisterThread(name)

    def stop(self, timeout: float = 20) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- on the SIP thread
    def _main(self) -> None:
        try:
            self._create()
        except BaseException as error:  # reported by start()
            self._startup_error = error
            self._destroy()
            self._ready.set()
            return
        self._ready.set()
        while not self._stopping.is_set():
            pause = self._media_pause()
            if pause:  # messages wait in the sockets' buffers meanwhile
                time.sleep(min(pause, 0.01))
            else:
                self.endpoint.libHandleEvents(10)
            self._run_jobs()
        self._shutdown()

    def media_setup(self) -> None:
        """A call's media sockets were opened (an incoming call, or one the bot places)."""
        self._media_setups.append(time.monotonic())

    def _media_pause(self) -> float:
        """How long to wait before reading the next message, for pjmedia's socket slots."""
        now = time.monotonic()
        while self._media_setups and now - self._media_setups[0] > MEDIA_WINDOW_S:
            self._media_setups.popleft()
        if len(self._media_setups) < MEDIA_SETUPS_PER_WINDOW:
            return 0.0
        return MEDIA_WINDOW_S - (now - self._media_setups[0])

    def _run_jobs(self) -> None:
        while True:
            try:
                fn, args, future = self._jobs.get_nowait()
            except queue.Empty:
                return
            self._run_job(fn, args, future)

    @staticmethod
    def _run_job(fn, args, future) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as error:
            future.set_exception(error)

    def _create(self) -> None:
        ep = self.endpoint = pj.Endpoint()
        ep.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = False
        config.uaConfig.userAgent = self.user_agent
        config.uaConfig.maxCalls = MAX_CALLS
        # SIP message logs hold caller numbers: off unless asked for (VOICEBOT_SIP_LOG=1..6).
        config.logConfig.level = config.logConfig.consoleLevel = int(os.environ.get("VOICEBOT_SIP_LOG", "1"))
        config.medConfig.clockRate = RATE
        config.medConfig.sndClockRate = RATE
        config.medConfig.ecTailLen = 0  # no loudspeaker, no echo to cancel
        config.medConfig.noVad = True
        # The null sound device is the conference bridge's clock; pjsua closes it after 1 s
        # without calls, and a call's port removed from the bridge meanwhile is never freed: one
        # slot lost per call, and after about 250 calls every call failed with 488.
        config.medConfig.sndAutoCloseTime = -1
        if self.jitter_floor_ms is not None:
            _hold_jitter_floor(config.medConfig, self.jitter_floor_ms)
        ep.libInit(config)
        _set_transaction_timeout(TRANSACTION_TIMEOUT_MS)
        ep.audDevManager().setNullDev()
        port = self.requested_port
        for name in self.transports:
            transport = pj.TransportConfig()
            transport.boundAddress = self.host
            transport.port = port
            transport_id = ep.transportCreate(TRANSPORTS[name], transport)
            # Port 0 means any: the first transport picks one, the others share it.
            port = int(ep.transportGetInfo(transport_id).localName.rsplit(":", 1)[1])
        self.port = port
        self._set_codecs(ep)
        ep.libStart()
        self.account = self.make_account(ep)

    def _set_codecs(self, ep: pj.Endpoint) -> None:
        available = [c.codecId for c in ep.codecEnum2()]
        for codec in available:
            ep.codecSetPriority(codec, 0)
        chosen = [c for wanted in self.codecs for c in available if c.lower().startswith(wanted.lower())]
        if not chosen:
            raise SipError(f"none of the codecs {self.codecs} exists; pjsua has {available}")
        for rank, codec in enumerate(chosen):
            ep.codecSetPriority(codec, 255 - rank)

    def _shutdown(self) -> None:
        try:
            self.on_stop()
            # Let BYEs and their answers go out before the library goes away.
            for _ in range(30):
                self.endpoint.libHandleEvents(10)
            self._run_jobs()
        except Exception:
            logger.exception("error while hanging up calls at shutdown")
        self._destroy()

    def _destroy(self) -> None:
        if self.account is not None:
            self.account.shutdown()
            self.account = None
        gc.collect()
        if self.endpoint is not None:
            try:
                self.endpoint.libDestroy()
            except pj.Error:
                pass
            self.endpoint = None


def local_account(ep: pj.Endpoint, account_class, host: str, port: int, user: str, *args) -> pj.Account:
    """An account that registers nowhere: it answers and places calls directly."""
    config = pj.AccountConfig()
    config.idUri = f"sip:{user}@{host}:{port}"
    config.sipConfig.authCreds.clear()
    # RTP on the same address, on any free port: several endpoints may share one machine.
    config.mediaConfig.transportConfig.boundAddress = host
    config.mediaConfig.transportConfig.port = 0
    account = account_class(*args)
    account.create(config, True)
    return account


def with_headers(headers: Dict[str, str]) -> pj.CallOpParam:
    """Call options whose request (INVITE, REFER) carries these extra SIP headers."""
    op = pj.CallOpParam(True)
    for name, value in headers.items():
        header = pj.SipHeader()
        header.hName, header.hValue = name, value
        op.txOption.headers.append(header)
    return op


def header_value(message: str, name: str) -> Optional[str]:
    """A header's value from a whole SIP message, matching its compact form too."""
    compact = {"to": "t", "from": "f", "call-id": "i", "contact": "m"}.get(name.lower())
    for line in message.split("\r\n")[1:]:
        if not line:
            break
        key, _, value = line.partition(":")
        if key.strip().lower() in (name.lower(), compact):
            return value.strip()
    return None


def dialled_user(message: str) -> str:
    """The user part of the request URI: the number the caller dialled."""
    parts = message.split("\r\n", 1)[0].split()
    return uri_user(parts[1]) if len(parts) > 1 else ""


def uri_user(value: str) -> str:
    """The user part of the first sip:, sips: or tel: URI in a header value, without user
    parameters (the caller's number in From: '"Name" <sip:4512345678;npdi@host>;tag=x' gives
    '4512345678'). The Kamailio front reads a dialled number the same way
    (voicebot.cluster.kamailio.numbers_regex)."""
    match = re.search(r"\bsips?:([^@>\s]+)@|\btel:([^>\s]+)", value or "")
    user = next((group for group in match.groups() if group), "") if match else ""
    return user.split(";", 1)[0]


def audio_active(call: pj.Call) -> bool:
    info = call.getInfo()  # keep it alive: its media list points into it
    return any(m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE for m in info.media)


def audio_received(call: pj.Call, index: int) -> dict:
    """What the call's audio stream `index` has received (SIP thread): RTP packets lost or
    discarded, the interarrival jitter, and jitter buffer frames lost, discarded (late or
    overflowing) or missing when due (empty), with the buffer's average delay."""
    stat = call.getStreamStat(index)
    rtp, jbuf = stat.rtcp.rxStat, stat.jbuf
    return {"rtp_packets": rtp.pkt, "rtp_lost": rtp.loss, "rtp_discarded": rtp.discard,
            "jitter_ms": round(rtp.jitterUsec.mean / 1000, 1),
            "jbuf_lost": jbuf.lost, "jbuf_discarded": jbuf.discard, "jbuf_empty": jbuf.empty,
            "jbuf_delay_ms": jbuf.avgDelayMsec}
