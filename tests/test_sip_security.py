"""SIP security at the Kamailio front (`voicebot cluster front`), with real processes on
loopback: SIPVicious (svmap, svwar, svcrack) finds no extension, password or worker; a source
that is no trunk gets one refusal and reaches no worker; the workers' addresses stay hidden
through a whole call with a re-INVITE; RFC 4475's torture messages and a SIPp flood crash
nothing and leave service for other callers.

Linux accepts any 127.x.y.z on loopback: 127.0.0.1 is the trunk (and the workers'
host), each attack comes from an address of its own, so pike's blocking of one attacker does not
bleed into the next test. (127.0.0.8 is topoh's mask address: not used.)"""

import csv
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import DEMO_CITY, DEMO_KOMMUNE, REPO, STADT_KREIS, place_call
from front import Front
from peers import run_sipp
from test_registrar import Phone, Running, status
from voicebot import procs
from voicebot.ports import free_port

TORTURE = Path(__file__).resolve().parent / "data" / "sip_torture"
# Real line numbers (demo) among numbers no line has, in the forms a scanner would try.
NUMBERS = [DEMO_CITY, DEMO_KOMMUNE, STADT_KREIS, DEMO_CITY.lstrip("+"), "+4570101011", "100", "101", "1000",
           "2000", "+4570101012", "+441632960101", "4929211031", "0", "admin"]
WRONG_PASSWORDS = ["123456", "password", "agent1", "1234", "admin", "letmein", "qwerty", "voicebot", "000000"]

# SIPVicious 0.3.3 parses -b (bind address) but never passes it on, so its scanners always send
# from the machine's primary address. This runs one of them with its sockets bound to `source`,
# and waits at most 3 s for late answers after giving up (svcrack waits 10 s; this is loopback).
SIPVICIOUS = """
import socket, sys
sys.path.insert(0, "/usr/share/sipvicious")
source, tool = sys.argv[1], sys.argv[2]
bind, settimeout = socket.socket.bind, socket.socket.settimeout
socket.socket.bind = lambda self, address: bind(self, (source, address[1]) if address[0] in ("", "0.0.0.0") else address)
socket.socket.settimeout = lambda self, seconds: settimeout(self, seconds and min(seconds, 3))
sys.argv = [tool] + sys.argv[3:]
module = __import__("sipvicious." + tool, fromlist=["main"])
module.main()
"""


def sipvicious(tool: str, source: str, *args: str, timeout: float = 90) -> str:
    done = subprocess.run(["/usr/bin/python3", "-c", SIPVICIOUS, source, tool, "-x", source,
                           "-P", str(free_port()), *args], capture_output=True, text=True, timeout=timeout)
    return done.stdout + done.stderr


def ask(method: str, user: str, port: int, source: str = "127.0.0.1", timeout: float = 2.0, uri: str = "",
        extra: str = "", to_tag: str = ""):
    """One request from `source` over UDP; the first final response's lines (None if silence)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        tag = uuid.uuid4().hex[:10]
        request = (f"{method} {uri or f'sip:{user}@127.0.0.1:{port}'} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {source}:{local};branch=z9hG4bK{tag};rport\r\n"
                   f"From: <sip:probe@{source}>;tag={tag}\r\n"
                   f"To: <sip:{user}@127.0.0.1:{port}>{f';tag={to_tag}' if to_tag else ''}\r\n"
                   f"Call-ID: {tag}@{source}\r\nCSeq: 1 {method}\r\nContact: <sip:probe@{source}:{local}>\r\n"
                   f"{extra}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        sock.sendto(request.encode(), ("127.0.0.1", port))
        try:
            while True:
                lines = sock.recv(65535).decode(errors="replace").split("\r\n")
                if not lines[0].startswith("SIP/2.0 1"):
                    return lines
        except socket.timeout:
            return None


def connects(uri: str) -> bool:
    return place_call(uri, "--wait", "1", timeout=30)["connected"]


def test_anyone_but_a_trunk_gets_one_refusal_for_every_user_and_method(front):
    answers = {(method, user): ask(method, user, front.port, source="127.0.0.2")
               for method in ("INVITE", "REGISTER", "OPTIONS") for user in (DEMO_CITY, DEMO_KOMMUNE, "100", "admin")}
    assert {answer[0] for answer in answers.values() if answer} == {"SIP/2.0 403 Forbidden"}, answers
    assert all(answers.values()), answers


def test_a_trunk_cannot_tell_lines_from_non_lines_except_by_calling(front):
    # REGISTER and OPTIONS: one answer for every user; an INVITE to a number no line has: the
    # same refusal anyone else gets (an INVITE to a real line is a call: tested below).
    for method, expected in (("REGISTER", "SIP/2.0 403 Forbidden"), ("OPTIONS", "SIP/2.0 200 OK")):
        assert {ask(method, user, front.port)[0] for user in (DEMO_CITY, STADT_KREIS, "100", "admin")} == {expected}
    assert {ask("INVITE", user, front.port)[0] for user in ("100", "+4570101012", "admin")} == {"SIP/2.0 403 Forbidden"}


def test_an_in_dialog_request_from_a_trunk_goes_to_a_worker_or_nowhere(front):
    # A forged Request-URI or Route header after the front's own must not make it a relay.
    ours = f"Route: <sip:127.0.0.1:{front.port};lr>\r\n"
    for uri, extra in (("sip:x@192.0.2.1", ours), (f"sip:x@127.0.0.1:{front.port}", ours + "Route: <sip:192.0.2.1;lr>\r\n"),
                       ("sip:x@192.0.2.1", "")):
        assert ask("BYE", "x", front.port, uri=uri, extra=extra, to_tag="t1")[0] == "SIP/2.0 403 Forbidden", (uri, extra)


def test_an_invite_from_a_stranger_gets_the_refusal_and_reaches_no_worker(front, bot, tmp_path):
    run = run_sipp(front.port, DEMO_CITY, "rejected.xml.in", tmp_path, timeout=20, local_ip="127.0.0.6",
                   sdp="", content_type="application/sdp", code=403)
    assert run.returncode == 0, run.output
    assert run.call_id not in {c["call_id"] for c in bot.request("GET", "/calls")[1]}


@pytest.mark.parametrize("method", ["REGISTER", "OPTIONS", "INVITE"])
def test_svwar_finds_no_extension(front, tmp_path, method):
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("\n".join(NUMBERS) + "\n")
    output = sipvicious("svwar", "127.0.0.3", "-m", method, "-d", str(numbers), "--force", "--maximumtime", "3",
                        f"udp://127.0.0.1:{front.port}")
    assert "found nothing" in output and "| Extension" not in output, output


def test_svwar_from_the_trunk_finds_no_extension_by_options(front, tmp_path):
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("\n".join(NUMBERS) + "\n")
    output = sipvicious("svwar", "127.0.0.1", "-m", "OPTIONS", "-d", str(numbers), "--force", "--maximumtime", "3",
                        f"udp://127.0.0.1:{front.port}")
    assert "found nothing" in output and "| Extension" not in output, output


def test_svcrack_against_the_front_finds_no_password(front, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WRONG_PASSWORDS) + "\n")
    output = sipvicious("svcrack", "127.0.0.4", "-u", DEMO_CITY, "-d", str(words), "--maximumtime", "3",
                        f"udp://127.0.0.1:{front.port}")
    assert "found nothing" in output and "The password for" not in output, output


def test_svcrack_against_the_agents_registrar_finds_no_password_and_is_locked_out(tmp_path):
    registrar = Running()  # test_registrar's: agent1's password is "secret", not in the list
    try:
        words = tmp_path / "words.txt"
        words.write_text("\n".join(WRONG_PASSWORDS) + "\n")
        output = sipvicious("svcrack", "127.0.0.9", "-u", "agent1", "-d", str(words), "--maximumtime", "3",
                            f"udp://127.0.0.1:{registrar.port}")
        assert "found nothing" in output and "The password for" not in output, output
        # Five wrong passwords and the guesser's address hears nothing more; others still do.
        assert ask("REGISTER", "agent1", registrar.port, source="127.0.0.9") is None
        assert ask("REGISTER", "agent1", registrar.port)[0] == "SIP/2.0 401 Unauthorized"
    finally:
        registrar.close()


def test_svcrack_spread_over_addresses_finds_no_password_and_the_agent_still_registers(tmp_path):
    """Each address stays under its own limit; the agent's limit stops the guessing, so even the
    right password, guessed from a new address, is refused."""
    registrar, agent = Running(max_agent_failures=8), None
    try:
        agent = Phone(registrar.port)
        assert status(agent.login("secret")) == "SIP/2.0 200 OK"
        words = tmp_path / "words.txt"
        for n, guesses in enumerate([WRONG_PASSWORDS[:3], WRONG_PASSWORDS[3:6], WRONG_PASSWORDS[6:9], ["secret"]]):
            words.write_text("\n".join(guesses) + "\n")
            output = sipvicious("svcrack", f"127.0.0.{11 + n}", "-u", "agent1", "-d", str(words),
                                "--maximumtime", "3", f"udp://127.0.0.1:{registrar.port}")
            assert "found nothing" in output and "The password for" not in output, output
        assert status(agent.login("secret", "Expires: 120")) == "SIP/2.0 200 OK"
    finally:
        if agent:
            agent.close()
        registrar.close()


def test_svmap_sees_the_front_and_learns_nothing_of_the_workers(front, bot):
    for source in ("127.0.0.5", "127.0.0.1"):  # a stranger (403) and the trunk (200)
        output = sipvicious("svmap", source, "-p", str(front.port), "127.0.0.1")
        assert f"127.0.0.1:{front.port}" in output, output
        row = next(line for line in output.splitlines() if f"127.0.0.1:{front.port}" in line)
        assert row.split("|")[2].strip() == "unknown", output  # no Server or User-Agent header
        assert str(bot.sip_port) not in output and "voicebot" not in output.lower(), output


def received_heads(trace: Path) -> list:
    """The header sections of the messages SIPp received (its -trace_msg file)."""
    parts = re.split(r"^-+ [^\n]*\n(UDP|TCP) message (received|sent) \[\d+\] bytes :\n", trace.read_text(), flags=re.M)
    return [parts[i + 2].split("\n\n", 1)[0] for i in range(1, len(parts) - 2, 3) if parts[i + 1] == "received"]


def test_a_call_with_reinvite_works_through_the_front_and_shows_no_worker(front, bot, tmp_path):
    trace = tmp_path / "messages.log"
    run = run_sipp(front.port, DEMO_CITY, "reinvite.xml", tmp_path, timeout=30,
                   extra=("-trace_msg", "-message_file", str(trace)))
    assert run.returncode == 0, run.output
    heads = received_heads(trace)
    assert len(heads) >= 3, trace.read_text()  # 200 to INVITE, 200 to re-INVITE, 200 to BYE
    for head in heads:
        assert not re.search(rf"\b{bot.sip_port}\b", head), head
        assert not re.search(r"^(Server|User-Agent):", head, re.M | re.I), head
        assert "important to us" not in head, head  # Kamailio's own 100 reason would name it
    contacts = [line for head in heads for line in head.splitlines() if re.match(r"(Contact|m):", line, re.I)]
    assert contacts and all("line=sr-" in c for c in contacts), contacts  # topoh's encoding
    # The bot saw the call and its end.
    record = bot.call_record(run.call_id)
    assert record["state"] == "ended", record


def torture(name: str) -> bytes:
    """An RFC 4475 message as it goes on the wire: CRLF lines, <hex> and <repeat> expanded."""
    text = (TORTURE / name).read_text(encoding="utf-8").replace("\n", "\r\n")
    text = re.sub(r"<repeat count=(\d+)>(.*?)</repeat>", lambda m: m[2] * int(m[1]), text)
    parts = re.split(r"<hex>([0-9A-Fa-f]*)</hex>", text)
    return b"".join(bytes.fromhex(p) if i % 2 else p.encode() for i, p in enumerate(parts))


TORTURE_MESSAGES = sorted(p.name for p in TORTURE.glob("*.sip"))


def test_the_torture_messages_are_all_there():
    assert len(TORTURE_MESSAGES) >= 40
    assert b"NUL:\\\x00 DEL" in torture("intmeth.sip") and torture("noreason.sip").startswith(b"SIP/2.0 100 \r\n")


def test_rfc_4475_torture_messages_crash_neither_front_nor_worker(front, bot):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        for name in TORTURE_MESSAGES:
            for port in (front.port, bot.sip_port):
                udp.sendto(torture(name), ("127.0.0.1", port))
            time.sleep(0.1)  # a trunk's pace, under pike's limit: every message is parsed and routed
    time.sleep(1)
    assert front.alive() and bot.process.poll() is None, front.log.read_text()[-3000:]
    assert connects(front.uri(DEMO_CITY)) and connects(bot.sip_uri(DEMO_CITY))


def sipp_counts(stat_file: Path) -> tuple:
    """(successful, failed) calls from the last line of a SIPp -trace_stat file."""
    with open(stat_file, newline="") as f:
        last = list(csv.DictReader(f, delimiter=";"))[-1]
    return int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])


def test_a_flood_is_dropped_and_other_callers_still_get_through(front, tmp_path):
    stats = tmp_path / "flood.csv"
    flood = procs.start(
        ["sipp", f"127.0.0.1:{front.port}", "-sf", str(REPO / "tests" / "sipp" / "flood.xml"), "-s", DEMO_CITY,
         "-i", "127.0.0.7", "-p", str(free_port()), "-r", "400", "-m", "3000", "-nr", "-nostdin",
         "-timeout", "40s", "-trace_stat", "-stf", str(stats), "-fd", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)  # well into the flood
        during = connects(front.uri(DEMO_CITY))
        assert flood.poll() is None, "the flood ended before the call: make it longer"
        flood.wait(60)
    finally:
        procs.stop(flood)
    answered, dropped = sipp_counts(stats)
    assert answered + dropped == 3000
    assert answered < 150, (answered, dropped)  # pike: a few seconds of 15 a second at most
    assert during and front.alive() and connects(front.uri(DEMO_CITY))


@pytest.fixture(scope="module")
def tcp_trunk_front(bot, tmp_path_factory):
    """A front whose one trunk, 127.0.0.1, sends over TCP only."""
    running = Front(tmp_path_factory.mktemp("tcp-front"), [bot.sip_port], "--trunk", "tcp:127.0.0.1")
    yield running
    running.stop()


def test_udp_forged_as_a_tcp_trunks_address_reaches_no_worker_and_the_trunks_calls_go_through(
        tcp_trunk_front, bot, tmp_path):
    # INVITEs to a real line from the trunk's address, slower than the flood limit and never
    # ACKed: from a UDP trunk each would hold one of the worker's call slots for 5 s and more.
    stats, invites = tmp_path / "forged.csv", 150
    forged = procs.start(
        ["sipp", f"127.0.0.1:{tcp_trunk_front.port}", "-sf", str(REPO / "tests" / "sipp" / "flood.xml"),
         "-s", DEMO_CITY, "-i", "127.0.0.1", "-p", str(free_port()), "-r", "10", "-m", str(invites), "-nr",
         "-nostdin", "-timeout", "30s", "-trace_stat", "-stf", str(stats), "-fd", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    over_tcp = tcp_trunk_front.uri(DEMO_CITY) + ";transport=tcp"
    try:
        time.sleep(2)
        during = [connects(over_tcp) for _ in range(2)]
        assert forged.poll() is None, "the forged INVITEs ended before the calls: send more"
        forged.wait(60)
    finally:
        procs.stop(forged)
    assert sipp_counts(stats) == (0, invites)  # no answer to any, not even the refusal
    assert not any(call["call_id"].endswith(f"-{forged.pid}@127.0.0.1") for call in bot.request("GET", "/calls")[1])
    assert during == [True, True] and tcp_trunk_front.alive()
