"""What a call's session may ask of the telephone network, whatever carries the call.

The SIP adapter (voicebot.telephony.line.SipPhone) does it with pjsua2; tests use a fake."""

from typing import Dict, Protocol


class PhoneError(Exception):
    """The network could not do it (an agent's address that cannot be called, a REFER refused)."""


class Phone(Protocol):
    def hang_up(self) -> None:
        """Hang up the caller (HungUp follows once the call is gone)."""

    async def refer(self, uri: str, headers: Dict[str, str]) -> None:
        """Blind transfer to uri, the context in headers; TransferStatus events follow. PhoneError."""

    async def call_agent(self, uri: str, headers: Dict[str, str]) -> str:
        """Ring an agent for this caller; the leg's id (its events follow). PhoneError."""

    def drop_agent(self, leg: str) -> None:
        """Hang up an agent leg unless it is gone already."""

    async def bridge(self, leg: str) -> bool:
        """Join the caller and an answered agent leg; False if either has gone."""

    async def release(self) -> None:
        """The session is over: the phone may take back what the call used."""
