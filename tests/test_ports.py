"""Ports chosen for servers that another process starts (voicebot/ports.py): never one that the
kernel may hand to someone else meanwhile, never the same to two processes asking at once."""

import os
import socket
import subprocess
import sys
import time

from conftest import REPO
from voicebot import ports
from voicebot.ports import free_port


def test_ports_lie_below_the_kernels_ephemeral_range_and_are_never_handed_out_twice():
    ephemeral_start = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    handed_out = [free_port() for _ in range(200)]
    assert len(set(handed_out)) == len(handed_out)
    assert all(ports.LOWEST <= port < ephemeral_start for port in handed_out), handed_out


def test_processes_asking_at_the_same_time_get_different_ports():
    ask = "from voicebot.ports import free_port; print(*[free_port() for _ in range(300)])"
    askers = [subprocess.Popen([sys.executable, "-c", ask], cwd=REPO, stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    handed_out = [int(port) for asker in askers for port in asker.communicate(timeout=120)[0].split()]
    assert len(handed_out) == 1200 and len(set(handed_out)) == 1200


def test_a_port_bound_for_tcp_or_udp_is_passed_over_and_an_old_claim_is_not(monkeypatch):
    tcp_port, udp_port, old_port = free_port(), free_port(), free_port()
    os.utime(ports.CLAIMS / str(old_port), (time.time() - ports.CLAIM_S - 1,) * 2)
    tries = iter([tcp_port, udp_port, old_port])
    monkeypatch.setattr(ports.random, "randint", lambda low, high: next(tries))
    with socket.create_server(("127.0.0.1", tcp_port)), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", udp_port))
        assert free_port() == old_port


def test_a_port_claimed_moments_ago_is_passed_over(monkeypatch):
    claimed, unclaimed = free_port(), free_port()
    (ports.CLAIMS / str(unclaimed)).unlink()
    tries = iter([claimed, unclaimed])
    monkeypatch.setattr(ports.random, "randint", lambda low, high: next(tries))
    assert free_port() == unclaimed
