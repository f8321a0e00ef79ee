"""Audio in and out of a call through a pjsua2 AudioMediaPort.

The port's callbacks run on the conference bridge's clock thread, every 20 ms: they only copy
bytes into a queue (in) and take prepared frames from a deque (out), never anything slower, and
read and write the frames' vectors in place rather than through SWIG's byte-by-byte conversion.
"""

import collections
import ctypes
import queue
import sys
import time
from array import array
from typing import Deque, List, Optional, Tuple

import pjsua2 as pj

from voicebot.audio.format import FRAME_BYTES, FRAME_MS, RATE  # the conference bridge runs at RATE

SILENT_FRAME = bytes(FRAME_BYTES)
FRAME_S = FRAME_MS / 1000
# How late a clock tick may be: 10 ms is half a frame, 20 ms a whole one (a receiver whose jitter
# buffer holds one frame goes without), 40 ms two (the clock thread stalled).
LATE_MS = (10, 20, 40)
_POINTERS = ctypes.POINTER(ctypes.c_void_p * 2)


def _bytes_in_place(vector: pj.ByteVector) -> bytes:
    """A frame's bytes read straight from its std::vector, whose first two members are, in
    libstdc++ (the wheel's), its begin and end pointers: about 2 µs, where bytes(vector) walks
    SWIG's Python iterator a byte at a time (about 280 µs a frame, with the GIL held on the clock
    thread: four calls' frames took a core's 5%, and the waits for the GIL made the bridge late)."""
    begin, end = ctypes.cast(int(vector.this), _POINTERS).contents
    return ctypes.string_at(begin, end - begin) if end else b""


def _reads_in_place() -> bool:
    """Whether this pjsua2 lays its vectors out as _bytes_in_place expects (checked once)."""
    if sys.platform != "linux":
        return False
    try:
        return _bytes_in_place(pj.ByteVector(b"\x01\x02\x03")) == b"\x01\x02\x03" \
            and _bytes_in_place(pj.ByteVector()) == b""
    except (TypeError, ValueError, AttributeError, ctypes.ArgumentError):
        return False


def _write_in_place(frame: pj.MediaFrame, chunk: bytes) -> None:
    """Fill a frame's buffer (the vector it holds, not a copy) with `chunk` by one memmove: about
    4 µs, where pj.ByteVector(chunk) converts it a byte at a time (about 40 µs a frame, both
    measured with a fresh MediaFrame per call, as the bridge hands them out)."""
    vector = frame.buf
    vector.resize(len(chunk))
    begin, _ = ctypes.cast(int(vector.this), _POINTERS).contents
    if chunk:
        ctypes.memmove(begin, chunk, len(chunk))


def _write_by_copy(frame: pj.MediaFrame, chunk: bytes) -> None:
    frame.buf = pj.ByteVector(chunk)


def _writes_in_place() -> bool:
    """Whether a frame written in place reads back the same through SWIG (checked once)."""
    if frame_bytes is bytes:
        return False
    frame = pj.MediaFrame()
    _write_in_place(frame, b"\x01\x02\x03")
    return bytes(frame.buf) == b"\x01\x02\x03"


frame_bytes = _bytes_in_place if _reads_in_place() else bytes
write_frame = _write_in_place if _writes_in_place() else _write_by_copy


def frames_of(pcm: bytes) -> list:
    """Split 16 kHz PCM into whole 20 ms frames (the last one padded with silence)."""
    pcm = pcm + bytes(-len(pcm) % FRAME_BYTES)
    return [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def audio_format() -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.id = pj.PJMEDIA_FORMAT_PCM
    fmt.clockRate = RATE
    fmt.channelCount = 1
    fmt.bitsPerSample = 16
    fmt.frameTimeUsec = FRAME_MS * 1000
    fmt.avgBps = fmt.maxBps = RATE * 16
    return fmt


def clock_lateness(ticks: List[float]) -> dict:
    """Of a clock's ticks (each one's time less its place on a 20 ms grid): how many, how many came
    LATE_MS or more after their place on the grid the earliest sets, and the latest. A tick that
    comes late is a frame the far end gets late."""
    grid = min(ticks, default=0.0)
    late_ms = [(at - grid) * 1000 for at in ticks]
    return {"ticks": len(ticks), **{f"late_{ms}ms": sum(late >= ms for late in late_ms) for ms in LATE_MS},
            "max_late_ms": round(max(late_ms, default=0.0), 1)}


class SendQueue:
    """The sending side of a call's audio: `play` queues frames, `stop_playback` drops what has
    not been sent yet; whoever clocks the port takes them one by one (`_next_frame`)."""

    def _clear_sent(self) -> None:
        self._outgoing: Deque[bytes] = collections.deque()
        self.frames_sent = 0

    def _next_frame(self) -> Optional[bytes]:
        try:
            chunk = self._outgoing.popleft()
        except IndexError:
            return None
        self.frames_sent += 1
        return chunk

    def play(self, pcm: bytes) -> None:
        self._outgoing.extend(frames_of(pcm))

    def stop_playback(self) -> int:
        """Drop unsent audio; returns how many frames were dropped."""
        dropped = len(self._outgoing)
        self._outgoing.clear()
        return dropped

    @property
    def playing(self) -> bool:
        return bool(self._outgoing)

    @property
    def sent_when_drained(self) -> int:
        """What frames_sent will be once everything queued now has been sent."""
        return self.frames_sent + len(self._outgoing)

    @property
    def queued_bytes(self) -> int:
        return len(self._outgoing) * FRAME_BYTES


class FramePort(SendQueue, pj.AudioMediaPort):
    """One call's audio: `heard` gets (monotonic time, frame) for every frame received; what
    is played goes out one frame per clock tick of the conference bridge."""

    def __init__(self, name: str):
        super().__init__()
        self.reset()
        self.createPort(name, audio_format())

    def reset(self) -> None:
        """Fresh queues for the port's next call: whoever held the old ones keeps them."""
        self.heard: "queue.SimpleQueue[Tuple[float, bytes]]" = queue.SimpleQueue()
        self._clear_sent()
        self.last_sent_at: Optional[float] = None
        self._ticks = array("d")  # each clock tick's time less its place on the 20 ms grid

    def clock_lateness(self) -> dict:
        """How punctually the bridge's clock asked for this call's frames, each sent on at once."""
        return clock_lateness(self._ticks.tolist())

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
            self.heard.put((time.monotonic(), frame_bytes(frame.buf)))

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        now = time.monotonic()
        self._ticks.append(now - len(self._ticks) * FRAME_S)
        chunk = self._next_frame()
        if chunk is None:
            chunk = SILENT_FRAME
        else:
            self.last_sent_at = now
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        write_frame(frame, chunk)
        frame.size = len(chunk)


class PortPool:
    """FramePorts lent to calls and taken back when a call is over, never destroyed.

    The wheel's pjsua2 2.15.1 frees an AudioMediaPort in its destructor while the conference
    bridge, asynchronous since 2.15.1, removes it only on its next clock tick (fixed upstream
    after this release, pjproject#4200): destroying a port while the bridge runs can crash the
    process. So ports are reused, and C++ owns them (__disown__) so that Python never destroys
    one; the bridge lets go of them at libDestroy. There are never more ports than calls were
    up at once. SIP thread only.
    """

    def __init__(self, name: str):
        self.name = name
        self.idle: List[FramePort] = []
        self.created = 0

    def lend(self) -> FramePort:
        if self.idle:
            return self.idle.pop()
        self.created += 1
        port = FramePort(f"{self.name}-{self.created}")
        port.__disown__()
        return port

    def take_back(self, port: FramePort) -> None:
        """The port's call is disconnected (so is its audio) and nothing uses the port."""
        port.reset()
        self.idle.append(port)
