"""What happens to a call, as typed events: from the phone (the SIP adapter) and from the call's
listener (voicebot.audio.listener). The call's session handles them one by one on its loop."""

from dataclasses import dataclass
from typing import Any, Optional, Union

from voicebot.audio.listener import (Answerable, BargeIn, ListenerEvent, Partial, RecognizerFailed, SpeechStarted,
                                     Utterance, WentOn)


@dataclass(frozen=True)
class MediaReady:
    """Audio flows both ways: frames in at port.heard, out through port.play."""
    port: Any


@dataclass(frozen=True)
class KeyPressed:
    digit: str


@dataclass(frozen=True)
class TransferStatus:
    """How a blind transfer (REFER) goes: the status of the transferee's call to the target."""
    code: int
    final: bool
    detail: str = ""


@dataclass(frozen=True)
class HungUp:
    """The caller's call is over (either side hung up); `received`: what its audio stream
    received from the caller (voicebot.telephony.sip.audio_received), if it had one; `sent`: how
    punctually the bot's frames went out (voicebot.telephony.media.FramePort.clock_lateness)."""
    status: Optional[int] = None
    received: Optional[dict] = None
    sent: Optional[dict] = None


# The bot's calls to agents for a queued caller, by the leg's Call-ID.
@dataclass(frozen=True)
class AgentAlerting:
    leg: str


@dataclass(frozen=True)
class AgentAnswered:
    leg: str


@dataclass(frozen=True)
class AgentMedia:
    leg: str
    port: Any


@dataclass(frozen=True)
class AgentHungUp:
    leg: str
    status: Optional[int] = None


AgentLegEvent = Union[AgentAlerting, AgentAnswered, AgentMedia, AgentHungUp]
AGENT_LEG_EVENTS = (AgentAlerting, AgentAnswered, AgentMedia, AgentHungUp)
PhoneEvent = Union[MediaReady, KeyPressed, TransferStatus, HungUp, AgentLegEvent]
CallEvent = Union[PhoneEvent, ListenerEvent]

__all__ = ["AgentAlerting", "AgentAnswered", "AgentHungUp", "AgentLegEvent", "AgentMedia", "AGENT_LEG_EVENTS",
           "Answerable", "BargeIn", "CallEvent", "HungUp", "KeyPressed", "MediaReady", "Partial", "PhoneEvent",
           "RecognizerFailed", "SpeechStarted", "TransferStatus", "Utterance", "WentOn"]
