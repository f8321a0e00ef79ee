"""No SIP message kills or hangs a worker: every shape of INVITE (no SDP, broken SDP, a number no
line has, a number with parameters, re-INVITEs, CANCEL races, ACKs and BYEs out of the blue,
a second dialog under a live call's Call-ID), over UDP and TCP, straight to the worker and
through the Kamailio front; then 20,000 mutated messages. After each, the worker still answers
and a normal call goes through.

Answered INVITEs are ACKed and hung up by the test, so none holds one of the worker's four
call slots for the next shape."""

import collections
import random
import re
import socket
import time

import pytest

from conftest import DEMO_CITY, place_call
from front import Front
from test_sip_security import TORTURE_MESSAGES, torture
from raw_sip import SDP, RawSip
from voicebot.cluster.kamailio import numbers_regex
from voicebot.telephony import sip as sip_stack
from voicebot.telephony.sip import uri_user

NO_LINE = "+4570109999"
BROKEN_SDP = "v=0\r\nthis is not SDP\r\nm=audio notaport RTP/AVP x\r\n"
# Where each shape is sent: the worker itself over UDP and TCP, and the front (a trunk's UDP).
TARGETS = ["worker-udp", "worker-tcp", "front-udp"]


@pytest.fixture(scope="module")
def front(bot, tmp_path_factory):
    """A front of its own, whose flood limit (pike, per source address) this module's many
    requests from the one trunk address stay under."""
    running = Front(tmp_path_factory.mktemp("front"), [bot.sip_port], "--flood-requests", "2000")
    yield running
    running.stop()


@pytest.fixture
def target(request, bot, front):
    """A RawSip to the target named by the test's parameter; afterwards, both processes live."""
    name = request.param
    port = front.port if name.startswith("front") else bot.sip_port
    with RawSip(port, name.split("-")[1]) as sip:
        sip.via_front = name.startswith("front")
        yield sip
    assert bot.process.poll() is None, "the worker died"
    assert front.alive(), front.log.read_text()[-3000:]
    assert bot.request("GET", "/health")[0] == 200
    with RawSip(bot.sip_port) as probe:  # the SIP thread still runs
        dialog = probe.invite(DEMO_CITY)
        assert dialog.code == 200, dialog.responses
        assert probe.hang_up(dialog).code == 200


def refused(sip) -> int:
    """What a call to no line gets: the worker's 404, or the front's one refusal."""
    return 403 if sip.via_front else 404


def targets(*names):
    return pytest.mark.parametrize("target", names or TARGETS, indirect=True)


@targets()
def test_an_invite_without_sdp_to_a_number_no_line_has_is_refused(target):
    assert target.invite(NO_LINE, body="").code == refused(target)


@targets()
def test_an_invite_without_sdp_to_a_line_is_answered_with_an_offer(target):
    dialog = target.invite(DEMO_CITY, body="")
    assert dialog.code == 200 and "m=audio" in dialog.responses[-1], dialog.responses
    assert target.hang_up(dialog).code == 200


@targets()
@pytest.mark.parametrize("number", [DEMO_CITY, NO_LINE])
def test_an_invite_with_broken_sdp_is_refused(target, number):
    dialog = target.invite(number, body=BROKEN_SDP)
    # pjsua checks the SDP before it asks the line (400 Bad SDP); the front refuses first.
    allowed = {400, 488} | ({refused(target)} if number == NO_LINE else set())
    assert dialog.code in allowed, dialog.responses


@targets()
def test_an_invite_with_a_body_that_is_not_sdp_is_refused(target):
    dialog = target.invite(DEMO_CITY, body="<xml>hello</xml>", content_type="application/xml")
    assert dialog.code and dialog.code >= 400, dialog.responses


@targets()
@pytest.mark.parametrize("user", [f"{DEMO_CITY};x=1", f"{DEMO_CITY};phone-context=+44;npdi", DEMO_CITY.lstrip("+")])
def test_a_line_number_with_user_parameters_or_without_plus_is_that_line(target, user):
    dialog = target.invite(user)
    assert dialog.code == 200, dialog.responses
    assert target.hang_up(dialog).code == 200


@targets()
@pytest.mark.parametrize("user", [f"{NO_LINE};x=1", f"{NO_LINE};x=1", "", "%2B441632960100", f"{DEMO_CITY}0"])
def test_a_number_no_line_has_is_refused_in_any_form(target, user):
    uri = f"sip:{user}@127.0.0.1:{target.port}" if user else f"sip:127.0.0.1:{target.port}"
    assert target.invite(user, body="", uri=uri).code == refused(target)


@targets()
def test_re_invites_in_a_call(target):
    dialog = target.invite(DEMO_CITY)
    assert dialog.code == 200, dialog.responses
    target.ack(dialog)
    moved = target.in_dialog("INVITE", dialog, SDP.format(port=40002))  # hold, or a new address
    assert moved.code == 200, moved.responses
    target.ack(moved)
    # A re-INVITE without an offer gets one; the ACK answers it.
    offerless = target.in_dialog("INVITE", dialog, "")
    assert offerless.code == 200 and "m=audio" in offerless.responses[-1], offerless.responses
    target.ack(offerless, SDP.format(port=40002))
    broken = target.in_dialog("INVITE", dialog, BROKEN_SDP)
    assert broken.code in (400, 415, 488), broken.responses
    target.ack(broken)
    assert target.hang_up(dialog).code == 200


@targets("worker-udp", "worker-tcp")
def test_requests_for_a_dialog_that_does_not_exist(target):
    # (Through the front, requests with a To tag but no route never reach a worker: see
    # test_sip_security.)
    ghost = target.dialog(DEMO_CITY)
    ghost.to_tag = "nosuchtag"
    assert target.in_dialog("INVITE", ghost, SDP.format(port=40004)).code == 481
    assert target.in_dialog("BYE", ghost).code == 481
    target.request("ACK", ghost, in_dialog=True)  # no answer to an ACK; it must just be dropped


@targets()
@pytest.mark.parametrize("number", [DEMO_CITY, NO_LINE])
def test_cancel_at_once_after_the_invite(target, number):
    dialog = target.invite(number, body="" if number == NO_LINE else None, wait=False)
    target.request("CANCEL", dialog, branch=dialog.branch, extra="")
    finished = target.collect(dialog, method="INVITE")
    # The call is refused, cancelled (487) or, if the 200 raced the CANCEL, answered and hung up.
    assert finished.code in (200, 487, refused(target)), finished.responses
    if finished.code == 200:
        assert target.hang_up(finished).code == 200
    else:
        target.ack(finished)


@targets()
def test_cancel_and_ack_without_an_invite(target):
    stray = target.dialog(DEMO_CITY)
    stray.branch = target.request("CANCEL", stray)
    # The worker: no such transaction (481); the front drops a CANCEL it has no transaction for.
    assert target.collect(stray, method="CANCEL").code == (None if target.via_front else 481), stray.responses
    target.request("ACK", stray)


@targets("worker-udp", "worker-tcp")
def test_a_second_dialog_under_a_live_calls_call_id_is_refused_and_the_call_goes_on(target, bot):
    first = target.invite(DEMO_CITY)
    assert first.code == 200, first.responses
    target.ack(first)
    twin = target.invite(DEMO_CITY, call_id=first.call_id)  # a new From tag, the same Call-ID
    assert twin.code and twin.code >= 400, twin.responses
    target.ack(twin)
    time.sleep(0.5)
    status, record = bot.request("GET", f"/calls/{first.call_id}")
    assert status == 200 and record["state"] == "talking", record
    assert target.hang_up(first).code == 200


@targets("worker-tcp")
def test_a_huge_invite_over_tcp_is_refused(target):
    dialog = target.invite(DEMO_CITY, body=SDP.format(port=40000) + "a=x-junk:" + "A" * 200_000 + "\r\n", timeout=5)
    assert dialog.code != 200, dialog.responses


def test_answers_never_acked_give_their_call_slots_back_within_seconds(bot):
    """Four INVITEs whose 200 is never ACKed held all four call slots of a worker for 32 s
    (pjsip retransmits the 200 that long) and more: now the bot gives up and says BYE in seconds."""
    with RawSip(bot.sip_port) as sip:
        unacked = [sip.invite(DEMO_CITY) for _ in range(4)]
        assert [dialog.code for dialog in unacked] == [200] * 4
        full = sip.invite(DEMO_CITY)  # every slot taken: a fifth caller is told the line is busy
        assert full.code == 486, full.responses
        sip.ack(full)
        started, byes = time.monotonic(), {}
        while len(byes) < 4 and time.monotonic() - started < 30:
            message = sip.receive(0.2)
            if message and message.startswith("BYE "):
                sip.answer(message)
                byes.setdefault(re.search(r"^Call-ID:\s*(\S+)", message, re.M | re.I)[1], time.monotonic() - started)
        assert sorted(byes) == sorted(dialog.call_id for dialog in unacked)
        assert max(byes.values()) < 2 * sip_stack.TRANSACTION_TIMEOUT_MS / 1000, byes
        time.sleep(0.5)  # the BYEs' answers reach the bot
        served = sip.invite(DEMO_CITY)
        assert served.code == 200, served.responses
        assert sip.hang_up(served).code == 200
        for dialog in unacked:
            sip.answered.pop(dialog.call_id)  # ended by the bot: nothing left for close()
            assert bot.call_record(dialog.call_id)["state"] == "ended"


def test_calls_set_up_and_ended_as_fast_as_a_peer_can_leave_the_worker_whole(bot):
    # pjmedia's 64 socket slots come back only 500 ms after a call, and its conference bridge
    # once kept a slot for every call made while the bridge's clock was stopped: both ended
    # the worker (an abort, or 488 for every call after about 250).
    codes = collections.Counter()
    with RawSip(bot.sip_port) as sip:
        for n in range(300):
            dialog = sip.invite(DEMO_CITY if n % 3 else NO_LINE, body="" if n % 2 else None, wait=n % 5 != 0)
            if dialog.code == 200:
                assert sip.hang_up(dialog).code == 200
            elif dialog.code is None:  # not waited for: cancelled at once
                sip.request("CANCEL", dialog, branch=dialog.branch)
                finished = sip.collect(dialog)
                sip.hang_up(finished) if finished.code == 200 else sip.ack(finished)
            codes[dialog.code] += 1
            assert bot.process.poll() is None, f"the worker died at call {n}"
    assert codes[200] > 150 and codes[404] > 50, codes  # calls were made, not refused wholesale
    assert place_call(bot.sip_uri(DEMO_CITY), "--wait", "1", timeout=30)["connected"]


def own_messages(port: int) -> list:
    """Well-formed requests of every method to lines and non-lines, the seeds besides RFC 4475's."""
    seeds = []
    for number in (DEMO_CITY, f"{DEMO_CITY};x=1", NO_LINE, "100"):
        for method, body in (("INVITE", SDP.format(port=40000)), ("INVITE", ""), ("INVITE", BROKEN_SDP),
                             ("ACK", ""), ("BYE", ""), ("CANCEL", ""), ("OPTIONS", ""), ("REGISTER", ""),
                             ("INFO", "Signal=1\r\nDuration=160\r\n"), ("REFER", ""), ("NOTIFY", ""), ("PRACK", "")):
            tag = f"{len(seeds):05d}"
            head = (f"{method} sip:{number}@127.0.0.1:{port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{tag}\r\nFrom: <sip:4512345678@127.0.0.1>;tag=f{tag}\r\n"
                    f"To: <sip:{number}@127.0.0.1>{';tag=t' + tag if method in ('BYE', 'INFO', 'REFER', 'NOTIFY') else ''}\r\n"
                    f"Call-ID: fuzz{tag}@127.0.0.1\r\nCSeq: 1 {method}\r\nContact: <sip:fuzz@127.0.0.1:9>\r\n"
                    f"Max-Forwards: 70\r\nRefer-To: <sip:admin@192.0.2.1>\r\nEvent: refer\r\n")
            if body:
                head += "Content-Type: application/sdp\r\n"
            seeds.append((head + f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    return seeds


def mutate(message: bytes, rng: random.Random) -> bytes:
    """One to four random edits of the kinds that break parsers: flipped, inserted and deleted
    bytes, lines dropped, doubled or swapped, numbers made huge or negative, a header value
    made very long, the message cut short or given a wrong Content-Length."""
    data = bytearray(message)
    for _ in range(rng.randint(1, 4)):
        lines = bytes(data).split(b"\r\n")
        kind = rng.randrange(9)
        if kind == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.choice([b"\x00", b"\r\n", b";", b":", b"<", b">", b"%", b"\\", b"\"", b" ", b"\xff\xfe"])
        elif kind == 2 and data:
            at = rng.randrange(len(data))
            del data[at:at + rng.randint(1, 40)]
        elif kind == 3 and len(lines) > 2:
            i = rng.randrange(1, len(lines))
            lines.insert(i, lines[rng.randrange(len(lines))]) if rng.random() < 0.5 else lines.pop(i)
            data = bytearray(b"\r\n".join(lines))
        elif kind == 4 and len(lines) > 3:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\r\n".join(lines))
        elif kind == 5:
            data = bytearray(re.sub(rb"\d+", lambda m: rng.choice([b"0", b"-1", b"4294967296", b"9" * 40, m[0]]),
                                    bytes(data), count=rng.randint(1, 3)))
        elif kind == 6 and len(lines) > 1:
            i = rng.randrange(1, len(lines))
            lines[i] = lines[i][:rng.randint(0, 30)] + bytes(rng.randrange(32, 127) for _ in range(rng.choice([10, 300, 3000])))
            data = bytearray(b"\r\n".join(lines))
        elif kind == 7:
            data = data[:rng.randrange(len(data) + 1)]
        else:
            data = bytearray(re.sub(rb"(?im)^(Content-Length|l)\s*:\s*\d+", rb"Content-Length: " +
                                    str(rng.choice([0, 1, 5000, 65536])).encode(), bytes(data)))
    return bytes(data)


def test_twenty_thousand_mutated_messages_over_udp_and_tcp_kill_nothing(bot):
    rng = random.Random(4475)
    seeds = [torture(name) for name in TORTURE_MESSAGES] + own_messages(bot.sip_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for n in range(10_000):
            udp.sendto(mutate(rng.choice(seeds), rng)[:65000], ("127.0.0.1", bot.sip_port))
            if n % 20 == 0:
                time.sleep(0.005)  # about 4,000 a second: the worker's socket buffer keeps up
    sent = 0
    while sent < 10_000:  # over TCP, 100 a connection (the worker may close one it cannot parse)
        with socket.create_connection(("127.0.0.1", bot.sip_port), timeout=5) as tcp:
            for _ in range(100):
                try:
                    tcp.sendall(mutate(rng.choice(seeds), rng))
                except OSError:
                    break
                finally:
                    sent += 1
        time.sleep(0.01)
    assert bot.process.poll() is None, "the worker died"
    assert bot.request("GET", "/health")[0] == 200
    # Answered INVITEs among the mutants are never ACKed and hold their slots for pjsip's 32 s.
    deadline = time.monotonic() + 60
    while not place_call(bot.sip_uri(DEMO_CITY), "--wait", "1", timeout=20)["connected"]:
        assert time.monotonic() < deadline and bot.process.poll() is None, "no call went through after the fuzzing"
        time.sleep(3)


@pytest.mark.parametrize("user", [DEMO_CITY, DEMO_CITY.lstrip("+"), f"{DEMO_CITY};x=1", f"{DEMO_CITY.lstrip('+')};npdi",
                                  f"{DEMO_CITY};phone-context=+44;rn=123", NO_LINE, f"{NO_LINE};x=1", "100", "",
                                  f"{DEMO_CITY}0", f"0{DEMO_CITY}", "%2B441632960100", f"{DEMO_CITY[:-1]}", "+" + DEMO_CITY,
                                  f"{DEMO_CITY} ", "+4570101011", "4570101011;isub=1", "admin"])
def test_the_front_and_the_worker_agree_on_which_numbers_are_lines(inst, user):
    # Kamailio matches the Request-URI's user part with a POSIX regex; Python's re agrees on it.
    front_accepts = re.fullmatch(numbers_regex(n for t in inst.tenants.values() for n in t.numbers), user) is not None
    worker_accepts = inst.tenant_for_dialled(uri_user(f"sip:{user}@127.0.0.1")) is not None
    assert front_accepts == worker_accepts
