"""The agents' SIP registrar against a real softphone (baresip) and a raw UDP client that says
exactly what RFC 3261 and the digest RFCs allow, and what they do not."""

import asyncio
import hashlib
import logging
import re
import socket
import subprocess
import threading
import time
import uuid
from typing import Optional

import pytest

from voicebot.ports import free_port
from voicebot.queue.registrar import Registrar, ha1
from voicebot.testing.agents import BaresipAgent

REALM = "voicebot"
CREDENTIALS = {"agent1": ha1("agent1", REALM, "secret"), "agent2": ha1("agent2", REALM, "other")}


class Running:
    """A Registrar on an asyncio loop in a background thread, and the on_change calls it made."""

    def __init__(self, **options):
        self.changes = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        registrar = Registrar("127.0.0.1", 0, REALM, CREDENTIALS,
                              on_change=lambda user, contact: self.changes.append((user, contact)), **options)
        self.registrar = asyncio.run_coroutine_threadsafe(registrar.start(), self.loop).result(5)
        self.port = self.registrar.port

    def close(self) -> None:
        async def stop():
            self.registrar.stop()
            await asyncio.sleep(0)  # let the expiry task see its cancellation

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def registrar():
    started = []

    def start(**options) -> Running:
        started.append(Running(**options))
        return started[-1]

    yield start
    for running in started:
        running.close()


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Phone:
    """A SIP client on a plain UDP socket, one Call-ID for all its REGISTERs as RFC 3261 asks."""

    def __init__(self, server_port: int, ip: str = "127.0.0.1", user: str = "agent1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.ip, self.port = self.sock.getsockname()
        self.server_uri = f"sip:127.0.0.1:{server_port}"
        self.server = ("127.0.0.1", server_port)
        self.user, self.call_id, self.cseq = user, f"{uuid.uuid4()}@test", 0
        self.contact = f"sip:{user}@{self.ip}:{self.port}"

    def close(self) -> None:
        self.sock.close()

    def message(self, method: str = "REGISTER", *extra: str, contact: Optional[str] = "") -> str:
        self.cseq += 1
        lines = [f"{method} {self.server_uri} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK{uuid.uuid4().hex};rport",
                 f"From: <sip:{self.user}@127.0.0.1>;tag=f{self.cseq}", f"To: <sip:{self.user}@127.0.0.1>",
                 f"Call-ID: {self.call_id}", f"CSeq: {self.cseq} {method}", "Max-Forwards: 70", *extra]
        if method == "REGISTER" and contact is not None:
            lines.append(f"Contact: {contact or '<' + self.contact + '>'}")
        return "\r\n".join(lines + ["Content-Length: 0", "", ""])

    def ask(self, text, timeout: float = 2.0) -> Optional[str]:
        self.sock.sendto(text if isinstance(text, bytes) else text.encode(), self.server)
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535).decode()
        except socket.timeout:
            return None

    def digest(self, challenge: str, password: str, username: str = "", qop: bool = True, nc: str = "00000001") -> str:
        """The Authorization header answering a 401, computed here from the RFCs, not by the registrar."""
        nonce = re.search(r'nonce="([^"]+)"', challenge)[1]
        username = username or self.user
        a1, a2 = md5(f"{username}:{REALM}:{password}"), md5(f"REGISTER:{self.server_uri}")
        header = f'Authorization: Digest username="{username}", realm="{REALM}", nonce="{nonce}", uri="{self.server_uri}"'
        if not qop:
            return header + f', response="{md5(f"{a1}:{nonce}:{a2}")}", algorithm=MD5'
        cnonce = uuid.uuid4().hex[:16]
        response = md5(f"{a1}:{nonce}:{nc}:{cnonce}:auth:{a2}")
        return header + f', response="{response}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}'

    def login(self, password: str, *extra: str, username: str = "", qop: bool = True, contact: Optional[str] = "") -> str:
        challenge = self.ask(self.message("REGISTER", *extra, contact=contact))
        assert status(challenge) == "SIP/2.0 401 Unauthorized", challenge
        return self.ask(self.message("REGISTER", self.digest(challenge, password, username, qop), *extra, contact=contact))


def status(response: Optional[str]) -> Optional[str]:
    return response and response.split("\r\n", 1)[0]


def header(response: str, name: str) -> Optional[str]:
    found = re.search(rf"^{name}:\s*(.*?)\r$", response, re.M | re.I)
    return found and found[1]


@pytest.fixture
def phones():
    made = []

    def phone(*args, **kwargs) -> Phone:
        made.append(Phone(*args, **kwargs))
        return made[-1]

    yield phone
    for each in made:
        each.close()


def test_baresip_agent_registers_answers_at_its_contact_and_unregisters_on_exit(registrar, tmp_path):
    running = registrar()
    with BaresipAgent(running.port, "agent1", "secret", tmp_path / "agent") as agent:
        assert wait_for(lambda: running.registrar.contact("agent1"), 10), agent.log.read_text()
        contact = running.registrar.contact("agent1")
        # baresip registers a contact user of its own (agent1-0x<address>), at its listen port.
        assert re.fullmatch(rf"sip:agent1\S*@127\.0\.0\.1:{agent.port}", contact), contact
        assert running.changes == [("agent1", contact)]
        # The bot can ring the agent there: answermode=auto picks up at once.
        user, hostport = contact[len("sip:"):].split("@")
        sipp = subprocess.run(["sipp", hostport, "-sn", "uac", "-s", user, "-i", "127.0.0.1", "-p", str(free_port()),
                               "-m", "1", "-d", "200", "-nostdin", "-timeout", "10s", "-timeout_error"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert sipp.returncode == 0, sipp.stdout[-2000:] + sipp.stderr[-1000:]
        agent.stop()
        assert wait_for(lambda: running.registrar.contact("agent1") is None, 5), agent.log.read_text()
    assert running.changes == [("agent1", contact), ("agent1", None)]


def test_baresip_with_a_wrong_password_is_never_registered(registrar, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="voicebot.queue.registrar")
    running = registrar()
    with BaresipAgent(running.port, "agent1", "not-the-secret", tmp_path / "agent") as agent:
        assert wait_for(lambda: "authentication failed" in caplog.text, 10), agent.log.read_text()
        time.sleep(1)
        assert running.registrar.contact("agent1") is None
    assert running.changes == []
    assert "403 Forbidden" in agent.log.read_text()
    assert "not-the-secret" not in caplog.text


def test_a_challenge_answered_with_the_right_digest_registers(registrar, phones):
    running = registrar()
    phone = phones(running.port)
    challenge = phone.ask(phone.message())
    assert status(challenge) == "SIP/2.0 401 Unauthorized"
    offer = header(challenge, "WWW-Authenticate")
    assert re.fullmatch(r'Digest realm="voicebot", nonce="[0-9a-f]{32}", algorithm=MD5, qop="auth"', offer), offer
    request = phone.message("REGISTER", phone.digest(challenge, "secret"), contact=f"<{phone.contact}>;expires=120")
    ok = phone.ask(request)
    assert status(ok) == "SIP/2.0 200 OK", ok
    sent = dict(line.split(": ", 1) for line in request.split("\r\n")[1:] if ": " in line)
    assert header(ok, "Via") == sent["Via"].replace(";rport", f";rport={phone.port}") + ";received=127.0.0.1"
    assert header(ok, "From") == sent["From"] and header(ok, "Call-ID") == sent["Call-ID"]
    assert header(ok, "CSeq") == sent["CSeq"]
    assert re.fullmatch(re.escape(sent["To"]) + r";tag=\w+", header(ok, "To"))
    assert header(ok, "Contact") == f"<{phone.contact}>;expires=120" and header(ok, "Expires") == "120"
    assert running.registrar.contact("agent1") == phone.contact
    binding = running.registrar.bindings["agent1"]
    assert binding.source == (phone.ip, phone.port) and binding.username == "agent1"
    assert wait_for(lambda: running.changes == [("agent1", phone.contact)], 1)


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(registrar, phones):
    running = registrar()
    wrong = phones(running.port).login("guess")
    unknown = phones(running.port, user="nobody").login("guess")
    # The Authorization username must be the To user: agent2's right password does not let it register agent1.
    borrowed = phones(running.port).login("other", username="agent2")
    assert status(wrong) == status(unknown) == status(borrowed) == "SIP/2.0 403 Forbidden"
    assert [line.split(":")[0] for line in wrong.split("\r\n")] == [line.split(":")[0] for line in unknown.split("\r\n")]
    assert running.registrar.bindings == {} and running.changes == []


def test_repeated_failures_silence_that_ip_only(registrar, phones, caplog):
    running = registrar(max_failures=3)
    attacker = phones(running.port)
    for _ in range(3):
        assert status(attacker.login("guess")) == "SIP/2.0 403 Forbidden"
    # Blocked: no answer at all, even to the right password from the same IP.
    assert attacker.ask(attacker.message(), timeout=1.5) is None
    same_ip = phones(running.port)
    assert same_ip.ask(same_ip.message(), timeout=1.5) is None
    other_ip = phones(running.port, ip="127.0.0.2")
    assert status(other_ip.login("secret")) == "SIP/2.0 200 OK"
    assert running.registrar.contact("agent1") == other_ip.contact
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("127.0.0.1" in w and "block" in w for w in warnings), warnings
    assert "guess" not in caplog.text and "secret" not in caplog.text


def test_a_block_ends_and_the_next_one_lasts_twice_as_long(registrar, phones):
    running = registrar(max_failures=2, block_s=0.5)
    phone = phones(running.port)
    for block in (0.5, 1.0):
        for _ in range(2):
            assert status(phone.login("guess")) == "SIP/2.0 403 Forbidden"
        started = time.monotonic()
        assert phone.ask(phone.message(), timeout=0.3) is None
        time.sleep(max(0.0, started + 0.7 - time.monotonic()))  # past the first block's length
        answer = phone.ask(phone.message(), timeout=0.3)
        assert (answer is None) == (block == 1.0), answer
    time.sleep(0.6)
    assert status(phone.login("secret")) == "SIP/2.0 200 OK"


def test_expires_zero_and_contact_star_unregister(registrar, phones):
    running = registrar()
    phone = phones(running.port)
    assert status(phone.login("secret")) == "SIP/2.0 200 OK"
    bye = phone.login("secret", contact=f"<{phone.contact}>;expires=0")
    assert status(bye) == "SIP/2.0 200 OK" and header(bye, "Contact") is None
    assert running.registrar.contact("agent1") is None
    assert status(phone.login("secret", "Expires: 60")) == "SIP/2.0 200 OK"
    assert status(phone.login("secret", "Expires: 0", contact="*")) == "SIP/2.0 200 OK"
    assert status(phone.login("secret", contact="*")) == "SIP/2.0 400 Bad Request"  # * needs Expires: 0
    assert wait_for(lambda: running.changes == [("agent1", phone.contact), ("agent1", None)] * 2, 1), running.changes


def test_a_registration_left_to_expire_is_removed(registrar, phones):
    running = registrar(min_expires=1)
    phone = phones(running.port)
    assert header(phone.login("secret", "Expires: 1"), "Expires") == "1"
    assert running.registrar.contact("agent1") == phone.contact
    assert wait_for(lambda: running.changes == [("agent1", phone.contact), ("agent1", None)], 3), running.changes
    assert running.registrar.contact("agent1") is None and "agent1" not in running.registrar.bindings


def test_expiry_limits(registrar, phones):
    running = registrar(min_expires=30, max_expires=600)
    phone = phones(running.port)
    brief = phone.login("secret", "Expires: 10")
    assert status(brief) == "SIP/2.0 423 Interval Too Brief" and header(brief, "Min-Expires") == "30"
    assert running.registrar.contact("agent1") is None
    assert header(phone.login("secret", "Expires: 86400"), "Expires") == "600"
    assert status(phone.login("secret", "Expires: soon")) == "SIP/2.0 400 Bad Request"


def test_stale_and_replayed_nonces_get_a_fresh_challenge_not_a_strike(registrar, phones):
    running = registrar(max_failures=1)
    assert running.registrar.nonce_ttl == 30  # short-lived
    running.registrar.nonce_ttl = 0.5
    phone = phones(running.port)
    challenge = phone.ask(phone.message())
    time.sleep(0.7)  # past the nonce's life (it is remembered as stale for one more)
    stale = phone.ask(phone.message("REGISTER", phone.digest(challenge, "secret")))
    assert status(stale) == "SIP/2.0 401 Unauthorized" and "stale=true" in header(stale, "WWW-Authenticate")
    running.registrar.nonce_ttl = 30
    challenge = phone.ask(phone.message())
    authorization = phone.digest(challenge, "secret")
    assert status(phone.ask(phone.message("REGISTER", authorization))) == "SIP/2.0 200 OK"
    replay = phone.ask(phone.message("REGISTER", authorization))  # same nonce count again
    assert status(replay) == "SIP/2.0 401 Unauthorized" and "stale=true" in header(replay, "WWW-Authenticate")
    assert status(phone.ask(phone.message("REGISTER", phone.digest(challenge, "secret", nc="00000002")))) == "SIP/2.0 200 OK"


def test_a_digest_without_qop_is_refused_whatever_its_password(registrar, phones):
    """Without qop and a nonce count, a captured REGISTER could be sent again with another Contact."""
    running = registrar()
    phone = phones(running.port)
    refused = phone.login("secret", qop=False)
    assert status(refused) == "SIP/2.0 400 Bad Request" and "qop=auth" in header(refused, "Warning"), refused
    assert running.registrar.bindings == {}


def test_a_captured_register_replayed_with_another_contact_moves_nothing(registrar, phones):
    running = registrar()
    agent = phones(running.port)
    challenge = agent.ask(agent.message())
    authorization = agent.digest(challenge, "secret")
    assert status(agent.ask(agent.message("REGISTER", authorization))) == "SIP/2.0 200 OK"
    # The attacker sends the captured Authorization with its own Contact: from its own address
    # (the nonce was sent to the agent's), and from the agent's address as a forger would.
    for attacker in (phones(running.port, ip="127.0.0.7"), phones(running.port)):
        attacker.call_id = agent.call_id
        attacker.cseq = agent.cseq
        replay = attacker.ask(attacker.message("REGISTER", authorization))
        assert status(replay) == "SIP/2.0 401 Unauthorized", replay
        assert running.registrar.contact("agent1") == agent.contact
    assert running.changes == [("agent1", agent.contact)]


def test_failures_with_a_nonce_sent_elsewhere_block_no_one(registrar, phones):
    """UDP sources can be forged: a wrong digest from the agent's address, answering a challenge
    that went to the attacker, must not count against the agent's address or name."""
    running = registrar(max_failures=2, max_agent_failures=2)
    attacker = phones(running.port, ip="127.0.0.7")
    forged = phones(running.port)  # the agent's address
    for _ in range(6):
        challenge = attacker.ask(attacker.message())
        answer = forged.ask(forged.message("REGISTER", forged.digest(challenge, "guess")))
        assert status(answer) == "SIP/2.0 401 Unauthorized", answer
    assert status(phones(running.port).login("secret")) == "SIP/2.0 200 OK"


def test_guesses_spread_over_addresses_lock_the_name_but_not_the_agent(registrar, phones, caplog):
    running = registrar(max_failures=3, max_agent_failures=4)
    agent = phones(running.port)
    assert status(agent.login("secret")) == "SIP/2.0 200 OK"
    # Two guesses from each of two addresses: no address reaches its limit, the name does.
    for ip in ("127.0.0.7", "127.0.0.8"):
        guesser = phones(running.port, ip=ip)
        assert [status(guesser.login(word)) for word in ("123456", "password")] == ["SIP/2.0 403 Forbidden"] * 2
    # Now even the right password from a new address is refused, and answered like a wrong one.
    lucky = phones(running.port, ip="127.0.0.9")
    assert status(lucky.login("secret")) == "SIP/2.0 403 Forbidden"
    assert running.registrar.contact("agent1") == agent.contact
    # The agent, from the address it logged in from, goes on; so does another agent.
    assert status(agent.login("secret", "Expires: 120")) == "SIP/2.0 200 OK"
    other = phones(running.port, ip="127.0.0.9", user="agent2")
    assert status(other.login("other")) == "SIP/2.0 200 OK"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("agent agent1" in w and "refused for 60 s" in w for w in warnings), warnings


def test_compact_headers_any_case_and_a_via_chain(registrar, phones):
    running = registrar()
    phone = phones(running.port)
    proxy_via = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKproxy"

    def compact(authorization: str = "") -> str:
        phone.cseq += 1
        lines = [f"REGISTER {phone.server_uri} SIP/2.0",
                 f"v: SIP/2.0/UDP 192.0.2.99:5099;rport;branch=z9hG4bK{uuid.uuid4().hex}", f"VIA: {proxy_via}",
                 "f: <sip:agent1@127.0.0.1>;tag=c1", "t: <sip:agent1@127.0.0.1>", f"i: {phone.call_id}",
                 f"cseq: {phone.cseq} REGISTER", f"m: <{phone.contact}>;expires=90",
                 *([authorization.replace("Authorization:", "AUTHORIZATION:")] if authorization else []), "l: 0", "", ""]
        return "\r\n".join(lines)

    challenge = phone.ask(compact())
    assert status(challenge) == "SIP/2.0 401 Unauthorized", challenge
    ok = phone.ask(compact(phone.digest(challenge, "secret")))
    assert status(ok) == "SIP/2.0 200 OK", ok
    vias = re.findall(r"^Via: (.*)\r$", ok, re.M)
    assert vias[0].startswith("SIP/2.0/UDP 192.0.2.99:5099;rport=") and vias[0].endswith(";received=127.0.0.1")
    assert f"rport={phone.port}" in vias[0] and vias[1:] == [proxy_via]
    assert running.registrar.contact("agent1") == phone.contact


def test_options_and_other_methods(registrar, phones):
    running = registrar()
    phone = phones(running.port)
    assert status(phone.ask(phone.message("OPTIONS"))) == "SIP/2.0 200 OK"
    refused = phone.ask(phone.message("INVITE"))
    assert status(refused) == "SIP/2.0 405 Method Not Allowed"
    assert header(refused, "Allow") == "REGISTER, OPTIONS"


def test_garbage_never_stops_the_server(registrar, phones, caplog):
    running = registrar()
    phone = phones(running.port)
    well_formed = phone.message()
    non_ascii = re.sub(r'response="\w+"', 'response="\u00e4"', phone.digest(phone.ask(phone.message()), "secret"))
    garbage = [b"\x00\xff\xfe" * 300, b"hello", b"\r\n\r\n", b"A" * 60000, "\u00e9\u00e9".encode("latin-1"),
               b"REGISTER sip:x SIP/2.0\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n",
               well_formed.replace("Call-ID", "X-Call").encode(), well_formed.replace("CSeq: 1", "CSeq: x").encode(),
               well_formed.replace("To:", "To").encode(), well_formed.replace("Via: ", "Via: ,").encode(),
               well_formed.replace("<sip:agent1@127.0.0.1>", "<mailto:x>").encode(),
               phone.message("REGISTER", non_ascii).encode(), phone.message("REGISTER", "Expires: soon").encode()]
    answers = [status(phone.ask(datagram, timeout=0.2)) for datagram in garbage]
    assert set(answers) <= {None, "SIP/2.0 400 Bad Request", "SIP/2.0 401 Unauthorized", "SIP/2.0 403 Forbidden"}, answers
    assert answers[7] == "SIP/2.0 400 Bad Request"  # well-formed enough to answer, but no Call-ID
    assert answers[12] == "SIP/2.0 403 Forbidden"
    assert status(phone.login("secret")) == "SIP/2.0 200 OK"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
