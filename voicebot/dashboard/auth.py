"""Logins: scrypt password hashes, roles, sessions that expire, a CSRF token per session, and
failed logins slowed down (per user name, and per address with a higher limit, since an office
shares one). Machines (a PBX, a wallboard, a web chat front end) get API tokens instead: a login
without a password whose one session is the token, sent as "Authorization: Bearer TOKEN" to the
JSON API."""

import datetime as dt
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from voicebot.store.models import User, WebSession
from voicebot.store.record import utcnow

ROLES = ("operator", "trainer", "agent", "admin")
# "channel": a front end that carries citizens' text conversations, and nothing else.
TOKEN_ROLES = ROLES + ("channel",)
NO_PASSWORD = "token"  # a token's login: no password can match it
MIN_PASSWORD = 10
FREE_FAILURES = 3  # per name: then each further failure locks the name for longer
ADDRESS_FREE_FAILURES = 20  # per address: one colleague's typos must not lock the whole office out
MAX_LOCK_S = 3600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    if stored == NO_PASSWORD:
        stored = hash_password("-")  # the same work: the answer's timing says nothing
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate.hex(), digest)


def lock_seconds(failures: int, free: int = FREE_FAILURES) -> float:
    """No lock for the first few mistakes, then 4 s doubling up to an hour."""
    return 0 if failures < free else min(MAX_LOCK_S, 2 ** (failures - free + 2))


class LockedOut(Exception):
    """Too many failed logins for this name or from this address: try again after `seconds`."""

    def __init__(self, seconds: float):
        super().__init__(f"locked for {seconds:.0f} s")
        self.seconds = seconds


class Failures:
    """Failed logins per key, in memory: (failures, locked until) by `clock`."""

    def __init__(self, free: int, clock: Callable[[], float]):
        self.free, self.clock = free, clock
        self._by_key: Dict[str, Tuple[int, float]] = {}

    def locked_for(self, key: str) -> float:
        return max(0.0, self._by_key.get(key, (0, 0.0))[1] - self.clock())

    def fail(self, key: str) -> None:
        now = self.clock()
        if len(self._by_key) > 10_000:  # many keys: forget those no longer locked
            self._by_key = {k: f for k, f in self._by_key.items() if f[1] > now}
        count = self._by_key.get(key, (0, 0.0))[0] + 1
        self._by_key[key] = (count, now + lock_seconds(count, self.free))

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


@dataclass
class SignedIn:
    user_id: int
    name: str
    role: str
    csrf_token: str
    lines: Optional[Tuple[str, ...]] = None  # the lines this login may change; None: every line

    def may_change(self, line_id: str) -> bool:
        return self.lines is None or line_id in self.lines


class Logins:
    def __init__(self, session_factory: Callable[[], Session], session_minutes: int = 480,
                 clock: Callable[[], float] = time.monotonic):
        self.session = session_factory
        self.lifetime = dt.timedelta(minutes=session_minutes)
        self.clock = clock
        self._addresses = Failures(ADDRESS_FREE_FAILURES, clock)
        self._unknown_names = Failures(FREE_FAILURES, clock)  # lock like real ones: the lock says nothing

    def add_user(self, name: str, role: str, password: str, lines: Optional[List[str]] = None) -> None:
        """`lines`: the only lines the login may change what the bot knows for (None: every line)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
        with self.session.begin() as session:
            user = session.scalar(sa.select(User).where(User.name == name))
            if user is None:
                session.add(User(name=name, role=role, password_hash=hash_password(password), failed_logins=0,
                                 lines=",".join(lines) if lines else None))
            else:  # a new password, role or lines: the old sessions end
                user.role, user.password_hash, user.failed_logins, user.locked_until = role, hash_password(password), 0, None
                user.lines = ",".join(lines) if lines else None
                session.execute(sa.delete(WebSession).where(WebSession.user_id == user.id))

    def issue_token(self, name: str, role: str, days: int = 365) -> str:
        """A new API token for `name` (a machine); an older token of that name stops working."""
        if role not in TOKEN_ROLES:
            raise ValueError(f"role must be one of {', '.join(TOKEN_ROLES)}")
        token = secrets.token_urlsafe(32)
        with self.session.begin() as session:
            user = session.scalar(sa.select(User).where(User.name == name))
            if user is not None and user.password_hash != NO_PASSWORD:
                raise ValueError(f"{name} is a person's login; give the token another name")
            if user is None:
                user = User(name=name, role=role, password_hash=NO_PASSWORD, failed_logins=0)
                session.add(user)
                session.flush()
            user.role = role
            session.execute(sa.delete(WebSession).where(WebSession.user_id == user.id))
            session.add(WebSession(token_hash=_digest(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                                   expires_at=utcnow() + dt.timedelta(days=days)))
        return token

    def remove(self, name: str) -> bool:
        """Remove a login or a token, and end its sessions."""
        with self.session.begin() as session:
            user = session.scalar(sa.select(User).where(User.name == name))
            if user is None:
                return False
            session.execute(sa.delete(WebSession).where(WebSession.user_id == user.id))
            session.delete(user)
        return True

    def users(self) -> List[User]:
        with self.session() as session:
            return list(session.scalars(sa.select(User).order_by(User.name)))

    def sign_in(self, name: str, password: str, address: str) -> Optional[str]:
        """A session token, or None for a wrong name or password (one answer for both, so names
        cannot be guessed from it). Raises LockedOut while the name or the address is locked."""
        now = utcnow()
        with self.session.begin() as session:
            user = session.scalar(sa.select(User).where(User.name == name))
            # Unknown and locked names cost a hash too: the answer's timing says nothing.
            matches = password_matches(password, user.password_hash if user else hash_password("-"))
            if user is None:
                wait = self._unknown_names.locked_for(name)
            else:
                wait = (user.locked_until - now).total_seconds() if user.locked_until else 0.0
            wait = max(wait, self._addresses.locked_for(address))
            if wait > 0:
                raise LockedOut(wait)
            if user is None or not matches:
                if user is None:
                    self._unknown_names.fail(name)
                else:
                    user.failed_logins += 1
                    if lock_seconds(user.failed_logins):
                        user.locked_until = now + dt.timedelta(seconds=lock_seconds(user.failed_logins))
                self._addresses.fail(address)
                return None
            user.failed_logins, user.locked_until = 0, None
            self._addresses.forget(address)
            token = secrets.token_urlsafe(32)
            session.execute(sa.delete(WebSession).where(WebSession.expires_at < now))
            session.add(WebSession(token_hash=_digest(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                                   expires_at=now + self.lifetime))
            return token

    def signed_in(self, token: Optional[str]) -> Optional[SignedIn]:
        if not token:
            return None
        with self.session() as session:
            row = session.execute(sa.select(WebSession, User).join(User, User.id == WebSession.user_id)
                                  .where(WebSession.token_hash == _digest(token))).first()
        if row is None or row[0].expires_at < utcnow():
            return None
        web, user = row
        return SignedIn(user.id, user.name, user.role, web.csrf_token,
                        tuple(user.lines.split(",")) if user.lines else None)

    def sign_out(self, token: str) -> None:
        with self.session.begin() as session:
            session.execute(sa.delete(WebSession).where(WebSession.token_hash == _digest(token)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def harness_token(store_url: str, role: str = "admin") -> str:
    """A token written straight into a store, for a harness (tests, benchmarks) that starts its
    own bot on that store; the store is migrated first."""
    from sqlalchemy.orm import sessionmaker

    from voicebot.store.database import open_store

    engine = open_store(store_url)
    try:
        return Logins(sessionmaker(engine, future=True)).issue_token(f"harness-{secrets.token_hex(4)}", role)
    finally:
        engine.dispose()
