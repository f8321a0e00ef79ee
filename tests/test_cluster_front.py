"""Kamailio in front of bot workers (`voicebot cluster front`): real calls over 127.0.0.1 through
the front reach every live worker, a new call goes to the worker with the fewest calls in
progress, and a worker that is down gets none and loses none."""

import subprocess
import sys
import threading
import time

import pytest

from conftest import AGENT_HOURS, DEMO_CITY, REPO, TextBot, place_call
from peers import run_sipp
from voicebot import procs
from voicebot.ports import free_port


@pytest.fixture(scope="module")
def second_bot(trained, store_url):
    server = TextBot(AGENT_HOURS, store_url, sip=True, lines=("demo-city",))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def front(bot, second_bot, tmp_path_factory):
    """The front on a free port before the two bots and an address where no worker runs."""
    port, down = free_port(), free_port()
    command = [sys.executable, "-m", "voicebot.cli", "cluster", "front", "--port", str(port),
               "--folder", str(tmp_path_factory.mktemp("front"))]
    for worker in (bot.sip_port, down, second_bot.sip_port):
        command += ["--worker", f"127.0.0.1:{worker}"]
    process = procs.start(command, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(5)  # two OPTIONS rounds: the worker that does not answer is marked down
    assert process.poll() is None, process.stdout.read().decode(errors="replace")[-3000:]
    yield f"sip:{DEMO_CITY}@127.0.0.1:{port}"
    procs.stop(process)


def answered_by(server, call_ids) -> set:
    return {c["call_id"] for c in server.request("GET", "/calls")[1]} & set(call_ids)


def sipp_calls_in_progress(server) -> set:
    return {c["call_id"] for c in server.request("GET", "/calls")[1]
            if c["call_id"].startswith("sipp-") and c["state"] not in ("ended", "transferred")}


def test_calls_through_the_front_spread_over_the_live_workers_and_skip_the_one_down(front, bot, second_bot):
    timelines = place_call(front, "--wait", "1", "--calls", "6", "--concurrent", "2", total_timeout=300)
    assert all(t["connected"] for t in timelines), [t for t in timelines if not t["connected"]]
    call_ids = [t["call_id"] for t in timelines]
    first, second = answered_by(bot, call_ids), answered_by(second_bot, call_ids)
    assert first and second and first | second == set(call_ids) and not first & second


def test_a_new_call_goes_to_the_worker_with_the_fewest_calls_in_progress(front, bot, second_bot, tmp_path):
    """Round robin would give the busier worker every other call. (Ties go to the worker listed
    first: `bot`; the one down between them gets nothing.)"""
    port = int(front.rsplit(":", 1)[1])
    held = []
    # SIPp holds one call for 18 s (the bot's silence prompts would hang up after about 24 s).
    holder = threading.Thread(target=lambda: held.append(run_sipp(port, DEMO_CITY, "held_call.xml.in", tmp_path,
                                                                  hold_ms=18000)))
    holder.start()
    try:
        deadline = time.monotonic() + 10
        while not sipp_calls_in_progress(bot) | sipp_calls_in_progress(second_bot) and time.monotonic() < deadline:
            time.sleep(0.2)
        # Both idle: the first listed took it.
        assert sipp_calls_in_progress(bot) and not sipp_calls_in_progress(second_bot)
        short = place_call(front, "--wait", "1", "--calls", "3", total_timeout=120)
        assert all(t["connected"] for t in short), [t for t in short if not t["connected"]]
        call_ids = [t["call_id"] for t in short]
        assert answered_by(second_bot, call_ids) == set(call_ids)
        assert sipp_calls_in_progress(bot), "the held call ended before the short ones: hold it longer"
    finally:
        holder.join()
    assert held[0].returncode == 0, held[0].output
    # The held call's BYE and the short calls' took them off the count: both are idle again, so
    # of two calls half a second apart the first goes to the first listed, the second to the other.
    pair = place_call(front, "--wait", "1", "--calls", "2", "--concurrent", "2", "--stagger", "0.5", total_timeout=120)
    assert all(t["connected"] for t in pair), [t for t in pair if not t["connected"]]
    assert answered_by(bot, [pair[0]["call_id"]]) and answered_by(second_bot, [pair[1]["call_id"]])


def test_the_generated_configuration_is_one_kamailio_accepts(tmp_path):
    done = subprocess.run([sys.executable, "-m", "voicebot.cli", "cluster", "front", "--worker", "127.0.0.1:5071",
                           "--port", str(free_port()), "--folder", str(tmp_path), "--check"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    config = (tmp_path / "kamailio.cfg").read_text()
    assert "ds_select_dst" in config and "pike_check_req" in config
    assert 'allow_source_address("1")' in config and 'loadmodule "topoh.so"' in config
    assert "[+]?441632960100" in config  # the lines' numbers, from voicebot.yml
    assert 'ds_select_dst("1", "10")' in config  # the fewest calls in progress first
    assert (tmp_path / "dispatcher.list").read_text() == "1 sip:127.0.0.1:5071 0 1 duid=worker1\n"
    # Trunks: 127.0.0.1 when none is given (group 1); the workers (group 2).
    assert (tmp_path / "addresses.list").read_text() == "1 127.0.0.1 32 0\n2 127.0.0.1 32 5071\n"


def test_the_front_takes_trunks_as_addresses_or_networks_and_refuses_nonsense(tmp_path):
    front = [sys.executable, "-m", "voicebot.cli", "cluster", "front", "--worker", "127.0.0.1:5071",
             "--folder", str(tmp_path), "--check"]
    done = subprocess.run(front + ["--trunk", "192.0.2.10", "--trunk", "198.51.100.7/28", "--trunk", "TCP:203.0.113.5"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "addresses.list").read_text().startswith(
        "1 192.0.2.10 32 0\n1 198.51.100.0 28 0\n3 203.0.113.5 32 0\n")
    assert "trunks 192.0.2.10/32, 198.51.100.0/28, tcp:203.0.113.5/32" in done.stdout
    for nonsense in ("carrier.example", "tcp:", "udp:192.0.2.10"):
        done = subprocess.run(front + ["--trunk", nonsense], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "--trunk" in done.stderr, nonsense
