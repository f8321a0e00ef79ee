"""What a call's session may ask of the telephone network, whatever carries the call.

The SIP adapter (voicebot.telephony.line.SipPhone) does it with pjsua2; tests use a fake."""

import re
import urllib.parse
from dataclasses import dataclass
from typing import Dict, Optional, Protocol


class PhoneError(Exception):
    """The network could not do it (an agent's address that cannot be called, a REFER refused)."""


@dataclass(frozen=True)
class ShownAs:
    """Who the agent's phone shows as calling: the citizen's number and the line they rang."""

    number: Optional[str]  # as caller ID gave it; None when withheld
    line: str  # the line's name (and the municipality's, on a shared line)

    @property
    def user(self) -> str:
        """The number as a SIP URI's user part: digits and a leading +, or "anonymous" for what is
        not a phone number (a forged caller ID's escaped quotes are not digits to show)."""
        number = urllib.parse.unquote(self.number or "")
        if not re.fullmatch(r"\+?[\d\-.() ]{2,30}", number):  # RFC 3966's digits and visual separators
            return "anonymous"
        digits = re.sub(r"[^\d+]", "", number)
        return digits if re.fullmatch(r"\+?\d{2,20}", digits) else "anonymous"

    @property
    def display(self) -> str:
        """A quoted display name's text: no quotes, backslashes or control characters."""
        shown = f"{self.line}: {self.user}" if self.user != "anonymous" else f"{self.line}: number withheld"
        return re.sub(r'["\\\x00-\x1f\x7f]', "", shown)[:80]


class Phone(Protocol):
    def hang_up(self) -> None:
        """Hang up the caller (HungUp follows once the call is gone)."""

    async def refer(self, uri: str, headers: Dict[str, str]) -> None:
        """Blind transfer to uri, the context in headers; TransferStatus events follow. PhoneError."""

    async def call_agent(self, uri: str, headers: Dict[str, str], shown_as: ShownAs) -> str:
        """Ring an agent for this caller, shown as `shown_as`; the leg's id (its events follow). PhoneError."""

    def drop_agent(self, leg: str) -> None:
        """Hang up an agent leg unless it is gone already."""

    async def bridge(self, leg: str) -> bool:
        """Join the caller and an answered agent leg; False if either has gone."""

    async def release(self) -> None:
        """The session is over: the phone may take back what the call used."""
