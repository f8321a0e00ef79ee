"""A small SIP registrar for agent softphones (RFC 3261 §10, digest auth RFC 2617/7616 MD5).

Live agents' softphones REGISTER here so the bot knows where to INVITE them. The bot's SIP
stack (pjsua2) is a user agent and cannot act as a registrar, so this is a separate asyncio
UDP server on its own loopback port. It keeps one binding per agent (the newest Contact),
challenges every REGISTER with a digest nonce, answers unknown users and wrong passwords
alike (403). It does not do TCP or TLS (TLS belongs at the edge, Kamailio, later), forking to
several contacts, or outbound (RFC 5626).

Against guessing and replay (RFC 7616 behaviour): a digest must use qop=auth with a rising nonce
count; nonces live 30 s and answer only the address they were sent to, so a captured REGISTER
cannot be replayed and a failure cannot be forged from someone else's address (UDP sources can
be). Failures are counted twice, with separate limits: per address (that address goes silent)
and per agent (guesses spread over many addresses; the agent's name is then refused everywhere
but the addresses it logged in from lately, so an attacker cannot lock the real agent out).
"""

import asyncio
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

log = logging.getLogger(__name__)

MAX_DATAGRAM = 16384  # far above any real REGISTER; bigger ones are floods, not requests
MAX_NONCES = 10000    # outstanding challenges; a spray of REGISTERs must not grow memory forever
MAX_BLOCK_S = 3600.0
KNOWN_ADDRESS_S = 86400.0  # how long an address an agent logged in from stays trusted for that agent
MAX_KNOWN_ADDRESSES = 4   # per agent: home, office, a phone on two networks
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}
REQUEST_LINE = re.compile(r"([A-Z]+) (\S+) SIP/2\.0$")
TOKEN = re.compile(r"[\w.!%*+`'~-]+")
PARAM = re.compile(r'([\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')


def ha1(username: str, realm: str, password: str) -> str:
    """MD5(username:realm:password) hex: what configuration stores instead of the password (as Kamailio's calculate_ha1)."""
    return _md5(f"{username}:{realm}:{password}")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass
class Nonce:
    deadline: float  # time.monotonic()
    address: str     # the IP the challenge was sent to: only it may answer
    count: int = 0   # the highest nonce count used so far


@dataclass
class Binding:
    username: str
    contact: str        # the Contact URI, without <> and header params
    source: Tuple[str, int]  # address the REGISTER came from
    expires_at: float   # time.monotonic() deadline


class Strikes:
    """Failures per key (an address or an agent) within a window; `limit` of them block the key,
    each block twice as long as the one before, up to an hour."""

    def __init__(self, limit: int, window_s: float, block_s: float):
        self.limit, self.window_s, self.block_s = limit, window_s, block_s
        self._failures: Dict[str, deque] = {}            # key -> monotonic times of failures
        self._blocks: Dict[str, Tuple[float, int]] = {}  # key -> (blocked until, blocks so far)

    def blocked(self, key: str) -> bool:
        return self._blocks.get(key, (0.0, 0))[0] > time.monotonic()

    def fail(self, key: str) -> Optional[float]:
        """Counts a failure; the seconds of the block it starts, if it starts one."""
        now = time.monotonic()
        times = self._failures.setdefault(key, deque())
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) < self.limit:
            return None
        del self._failures[key]
        strikes = self._blocks.get(key, (0.0, 0))[1] + 1
        seconds = min(self.block_s * 2 ** (strikes - 1), MAX_BLOCK_S)
        self._blocks[key] = (now + seconds, strikes)
        return seconds

    def sweep(self, now: float) -> None:
        self._failures = {key: t for key, t in self._failures.items() if t[-1] > now - self.window_s}
        # Strikes are forgotten an hour after a block ends, so doubling stays bounded in memory.
        self._blocks = {key: b for key, b in self._blocks.items() if b[0] + MAX_BLOCK_S > now}


class BadRequest(Exception):
    """A request too broken to act on; answered 400 when it can be answered at all."""


@dataclass
class Request:
    method: str
    uri: str
    headers: List[Tuple[str, str]]  # (lower-case full name, value) in order

    def get(self, name: str) -> Optional[str]:
        return next((value for key, value in self.headers if key == name), None)

    def all(self, name: str) -> List[str]:
        return [item for key, value in self.headers if key == name for item in _split(value)]


def _split(value: str) -> List[str]:
    """Comma-separated header values, not splitting inside quotes or <>."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "<>":
            depth += 1 if ch == "<" else -1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(value[start:i].strip())
            start = i + 1
    return [p for p in parts + [value[start:].strip()] if p]


def parse(data: bytes) -> Request:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")  # the body is never needed here
    lines = re.sub(r"\r\n[ \t]+", " ", head).split("\r\n")  # unfold continuation lines
    match = REQUEST_LINE.match(lines[0])
    if not match:
        raise BadRequest("not a SIP request line")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not TOKEN.fullmatch(name.strip()):
            raise BadRequest("header line without a name")
        name = name.strip().lower()
        headers.append((COMPACT.get(name, name), value.strip()))
    return Request(match[1], match[2], headers)


def _uri(value: str) -> str:
    """The URI of a From/To/Contact value: inside <> if present, else up to the header params."""
    inner = re.search(r"<([^>]*)>", value)
    return inner[1].strip() if inner else value.split(";", 1)[0].strip()


def _header_param(value: str, name: str) -> Optional[str]:
    rest = value.rsplit(">", 1)[-1] if "<" in value else value.partition(";")[2]
    found = re.search(rf"(?:^|;)\s*{name}\s*=\s*([^;\s]+)", rest, re.I)
    return found[1] if found else None


def _user(uri: str) -> Optional[str]:
    found = re.match(r"sips?:([^@;:]+)(?::[^@]*)?@", uri, re.I)
    return found[1] if found else None


class Registrar(asyncio.DatagramProtocol):
    def __init__(self, host: str, port: int, realm: str, credentials: Dict[str, str],
                 on_change: Callable[[str, Optional[str]], None] = lambda user, contact: None,
                 max_failures: int = 5, max_agent_failures: int = 10, failure_window_s: float = 60.0,
                 block_s: float = 60.0, max_expires: int = 3600, min_expires: int = 30):
        self.host, self.port, self.realm, self.credentials = host, port, realm, credentials
        self.on_change = on_change
        self.by_address = Strikes(max_failures, failure_window_s, block_s)
        self.by_agent = Strikes(max_agent_failures, failure_window_s, block_s)
        self.max_expires, self.min_expires = max_expires, min_expires
        self.nonce_ttl = 30.0  # a client answers a challenge within a round trip
        self.bindings: Dict[str, Binding] = {}
        self._nonces: Dict[str, Nonce] = {}
        self._known: Dict[str, Dict[str, float]] = {}  # agent -> {address: last login (monotonic)}
        self._transport: Optional[asyncio.DatagramTransport] = None
        self._sweeper: Optional[asyncio.Task] = None

    async def start(self) -> "Registrar":
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        self.port = self._transport.get_extra_info("sockname")[1]
        self._sweeper = loop.create_task(self._sweep())
        log.info("registrar for realm %s on udp %s:%d", self.realm, self.host, self.port)
        return self

    def stop(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        if self._transport:
            self._transport.close()

    def contact(self, username: str) -> Optional[str]:
        binding = self.bindings.get(username)
        return binding.contact if binding and binding.expires_at > time.monotonic() else None

    async def _sweep(self) -> None:
        """Expired bindings, nonces and block records go away; checked twice a second."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for user in [u for u, b in self.bindings.items() if b.expires_at <= now]:
                del self.bindings[user]
                log.info("agent %s: registration expired", user)
                self._notify(user, None)
            # An expired nonce is kept one more lifetime, to answer stale=true rather than "who are you?".
            self._nonces = {n: v for n, v in self._nonces.items() if v.deadline + self.nonce_ttl > now}
            self.by_address.sweep(now)
            self.by_agent.sweep(now)
            self._known = {user: {ip: t for ip, t in known.items() if t + KNOWN_ADDRESS_S > now}
                           for user, known in self._known.items()}

    def _notify(self, user: str, contact: Optional[str]) -> None:
        try:
            self.on_change(user, contact)
        except Exception:  # a listener's bug must not stop registrations
            log.exception("on_change(%s) failed", user)

    def datagram_received(self, data: bytes, addr) -> None:
        ip = addr[0]
        if self.by_address.blocked(ip) or len(data) > MAX_DATAGRAM:
            return  # silence: a blocked guesser learns nothing, not even that we are here
        if not data.strip() or data.startswith(b"SIP/2.0 "):
            return  # CRLF keepalives and stray responses need no answer
        try:
            request = parse(data)
        except (BadRequest, UnicodeDecodeError):
            return  # not something we can build a response to
        try:
            try:
                reply = self._handle(request, addr)
            except BadRequest as why:
                reply = (400, "Bad Request", [("Warning", f'399 registrar "{why}"')])
            if reply and request.all("via") and request.method != "ACK":
                self._transport.sendto(self._response(request, addr, *reply), addr)
        except Exception:  # never let one datagram end the server
            log.exception("%s from %s: unexpected failure", request.method, ip)

    def _handle(self, request: Request, addr):
        for name in ("via", "from", "to", "call-id", "cseq"):
            if not request.all(name):
                raise BadRequest(f"missing {name}")
        cseq = request.get("cseq").split()
        if len(cseq) != 2 or not cseq[0].isdigit() or cseq[1] != request.method:
            raise BadRequest("bad CSeq")
        if request.method == "ACK":
            return None
        if request.method == "OPTIONS":
            return 200, "OK", [("Allow", "REGISTER, OPTIONS")]
        if request.method != "REGISTER":
            return 405, "Method Not Allowed", [("Allow", "REGISTER, OPTIONS")]
        if request.get("require"):  # we support no extensions
            return 420, "Bad Extension", [("Unsupported", request.get("require"))]
        user = _user(_uri(request.get("to")))
        if user is None:
            raise BadRequest("To is not a sip URI with a user")
        denied = self._authenticate(request, user, addr[0])
        return denied or self._register(request, user, addr)

    def _challenge(self, ip: str, stale: bool = False):
        if len(self._nonces) >= MAX_NONCES:
            del self._nonces[next(iter(self._nonces))]
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = Nonce(time.monotonic() + self.nonce_ttl, ip)
        value = f'Digest realm="{self.realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'
        return 401, "Unauthorized", [("WWW-Authenticate", value + (", stale=true" if stale else ""))]

    def _authenticate(self, request: Request, user: str, ip: str):
        """None when the digest is right; else the response to send."""
        header = request.get("authorization") or ""
        if not header.lower().startswith("digest "):
            return self._challenge(ip)
        p = {k.lower(): v.strip('"') for k, v in PARAM.findall(header[7:])}
        if p.get("realm") != self.realm:
            return self._challenge(ip)  # credentials for some other server: ask for ours
        nonce = self._nonces.get(p.get("nonce", ""))
        if nonce is None or nonce.address != ip:
            # Unknown, or sent to someone else: perhaps a forged source. A fresh challenge, no strike.
            return self._challenge(ip)
        if nonce.deadline <= time.monotonic():
            return self._challenge(ip, stale=True)
        if p.get("uri") != request.uri or p.get("algorithm", "MD5").upper() != "MD5" or "response" not in p:
            raise BadRequest("digest uri, algorithm or response")
        nc = int(p["nc"], 16) if re.fullmatch(r"[0-9a-fA-F]{1,8}", p.get("nc", "")) else 0
        if p.get("qop") != "auth" or "cnonce" not in p or nc == 0:
            raise BadRequest("digest needs qop=auth, nc and cnonce")  # without them it could be replayed
        if nc <= nonce.count:
            return self._challenge(ip, stale=True)  # a replayed nonce count: fresh nonce, no strike
        stored = self.credentials.get(p.get("username", ""), secrets.token_hex(16))
        ha2 = _md5(f"{request.method}:{p['uri']}")
        expected = _md5(f"{stored}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        right = hmac.compare_digest(expected.encode(), p["response"].lower().encode())
        if right and p.get("username") == user and user in self.credentials:
            nonce.count = nc
            if self.by_agent.blocked(user) and ip not in self._known.get(user, {}):
                log.warning("agent %s: right password from %s, refused while the agent is blocked", user, ip)
                return 403, "Forbidden", []
            self._logged_in(user, ip)
            return None
        self._failed(ip, p.get("username", ""))
        return 403, "Forbidden", []  # same for unknown users and wrong passwords: no enumeration

    def _logged_in(self, user: str, ip: str) -> None:
        known = self._known.setdefault(user, {})
        known[ip] = time.monotonic()
        while len(known) > MAX_KNOWN_ADDRESSES:
            del known[min(known, key=known.get)]

    def _failed(self, ip: str, username: str) -> None:
        log.info("REGISTER from %s as %r: authentication failed", ip, username)
        seconds = self.by_address.fail(ip)
        if seconds:
            log.warning("blocking %s for %.0f s after %d failed authentications", ip, seconds, self.by_address.limit)
        # Only configured agents are counted by name: made-up names must not grow memory.
        seconds = self.by_agent.fail(username) if username in self.credentials else None
        if seconds:
            log.warning("agent %s: logins from new addresses refused for %.0f s after %d failed authentications",
                        username, seconds, self.by_agent.limit)

    def _register(self, request: Request, user: str, addr):
        contacts = request.all("contact")
        header = request.get("expires")
        if contacts == ["*"]:
            if header is None or header.strip() != "0":
                raise BadRequest("Contact * needs Expires: 0")
            self._unbind(user)
        elif contacts:
            value = contacts[0]
            uri = _uri(value)
            if not re.match(r"sips?:", uri, re.I):
                raise BadRequest("Contact is not a sip URI")
            expires = _header_param(value, "expires") or header or str(self.max_expires)
            if not expires.strip().isdigit():
                raise BadRequest("bad expires")
            expires = int(expires)
            if 0 < expires < self.min_expires:
                return 423, "Interval Too Brief", [("Min-Expires", str(self.min_expires))]
            if expires == 0:
                if self.contact(user) == uri:
                    self._unbind(user)
            else:
                self._bind(user, uri, addr, min(expires, self.max_expires))
        binding = self.bindings.get(user)
        if not binding:
            return 200, "OK", []
        left = max(math.ceil(binding.expires_at - time.monotonic()), 1)
        return 200, "OK", [("Contact", f"<{binding.contact}>;expires={left}"), ("Expires", str(left))]

    def _bind(self, user: str, uri: str, addr, expires: int) -> None:
        changed = self.contact(user) != uri
        self.bindings[user] = Binding(user, uri, tuple(addr[:2]), time.monotonic() + expires)
        if changed:  # refreshes are routine; only a new place to ring is news
            log.info("agent %s registered at %s for %d s", user, uri, expires)
            self._notify(user, uri)

    def _unbind(self, user: str) -> None:
        if self.bindings.pop(user, None):
            log.info("agent %s unregistered", user)
            self._notify(user, None)

    def _response(self, request: Request, addr, status: int, reason: str, extra) -> bytes:
        vias = request.all("via")
        vias[0] = self._received(vias[0], addr)
        to = request.get("to")
        if not re.search(r";\s*tag=", to.rsplit(">", 1)[-1]):
            to += f";tag={secrets.token_hex(6)}"
        lines = [f"SIP/2.0 {status} {reason}"] + [f"Via: {via}" for via in vias] + [
            f"From: {request.get('from')}", f"To: {to}", f"Call-ID: {request.get('call-id')}",
            f"CSeq: {request.get('cseq')}"] + [f"{k}: {v}" for k, v in extra] + ["Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    @staticmethod
    def _received(via: str, addr) -> str:
        """RFC 3581: tell a NATed client where its request really came from."""
        via = re.sub(r";\s*received=[^;]*", "", via)
        if re.search(r";\s*rport(?=;|$|\s|=)", via):
            via = re.sub(r";\s*rport(=\d*)?", f";rport={addr[1]}", via) + f";received={addr[0]}"
        elif not re.match(rf"SIP/2\.0/\S+\s+{re.escape(addr[0])}(:|;|$)", via):
            via += f";received={addr[0]}"
        return via
