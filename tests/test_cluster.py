"""`voicebot cluster up`: two workers, a Rasa server per language, Redis, PostgreSQL and the
Kamailio front, all real processes on 127.0.0.1. Calls spread over both workers; a worker killed
costs no call and comes back; PostgreSQL away costs no record. (The tests run in this order.)"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import sqlalchemy as sa

from conftest import AGENT_HOURS, DEMO_CITY, REPO, place_call
from postgres import private_postgres
from voicebot import procs
from voicebot.dashboard.auth import harness_token
from voicebot.dialogue.action_server import is_healthy
from voicebot.ports import free_port
from voicebot.store.models import Call, CallEvent


class RunningCluster:
    def __init__(self, folder, postgres, redis_url):
        self.folder, self.postgres, self.port = folder, postgres, free_port()
        env = {**os.environ, "VOICEBOT_CLOCK": AGENT_HOURS, "VOICEBOT_STORE_URL": postgres.url}
        self.process = procs.start(
            [sys.executable, "-m", "voicebot.cli", "cluster", "up", "--workers", "2", "--port", str(self.port),
             "--redis", redis_url, "--folder", str(folder)],
            cwd=REPO, env=env, stdout=open(folder / "up.log", "wb"),
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 420
        while not (self.state() or {}).get("ready"):
            assert self.process.poll() is None and time.monotonic() < deadline, (folder / "up.log").read_text()[-3000:]
            time.sleep(1)
        self.uri = f"sip:{DEMO_CITY}@127.0.0.1:{self.port}"
        self.token = harness_token(postgres.url)

    def state(self):
        path = self.folder / "cluster.json"
        return json.loads(path.read_text()) if path.exists() else None

    def worker(self, n: int) -> dict:
        return self.state()["components"][f"worker-{n}"]

    def worker_calls(self, n: int) -> list:
        request = urllib.request.Request(f"http://127.0.0.1:{self.worker(n)['http']}/calls",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def answered_by(self, n: int, call_ids) -> set:
        return {c["call_id"] for c in self.worker_calls(n)} & set(call_ids)

    def live_call_ids(self, n: int) -> list:
        return [c["call_id"] for c in self.worker_calls(n) if c["state"] == "talking"]

    def calls(self, count: int) -> list:
        timelines = place_call(self.uri, "--wait", "1", "--calls", str(count), "--concurrent", "2", total_timeout=300)
        assert all(t["connected"] for t in timelines), [t for t in timelines if not t["connected"]]
        return [t["call_id"] for t in timelines]


@pytest.fixture(scope="module")
def cluster(trained, redis_server, tmp_path_factory):
    with private_postgres(tmp_path_factory.mktemp("cluster-pg")) as postgres:
        running = RunningCluster(tmp_path_factory.mktemp("cluster"), postgres, redis_server.url)
        yield running
        procs.stop(running.process, timeout=60)


def test_calls_through_the_front_spread_over_both_workers(cluster):
    call_ids = cluster.calls(6)
    first, second = cluster.answered_by(1, call_ids), cluster.answered_by(2, call_ids)
    assert first and second and first | second == set(call_ids) and not first & second
    assert all(0 < cluster.worker(n)["ready_s"] < 420 for n in (1, 2))  # bench cluster reports them


def test_a_killed_worker_costs_no_call_and_rejoins_when_started_again(cluster):
    # A call in progress on worker 1 (idle workers: the first listed gets it) when it is killed.
    held = threading.Thread(target=place_call, args=(cluster.uri, "--wait", "20"), kwargs={"timeout": 40})
    held.start()
    deadline = time.monotonic() + 30
    while not (cut_off := set(cluster.live_call_ids(1))):
        assert time.monotonic() < deadline, "the call did not reach worker 1"
        time.sleep(0.5)
    os.kill(cluster.worker(1)["pid"], signal.SIGKILL)
    call_ids = cluster.calls(6)  # at once: the front fails over until its OPTIONS mark the worker down
    deadline = time.monotonic() + 300
    while cluster.worker(1)["restarts"] < 1 or not is_healthy(f"http://127.0.0.1:{cluster.worker(1)['http']}/health"):
        assert time.monotonic() < deadline, (cluster.folder / "worker-1.log").read_text()[-3000:]
        time.sleep(1)
    # Each call was answered once: by worker 2, or by worker 1 once it was back (without models
    # of its own, a worker starts in seconds).
    by_second, by_restarted = cluster.answered_by(2, call_ids), cluster.answered_by(1, call_ids)
    assert by_second | by_restarted == set(call_ids) and not by_second & by_restarted and by_second
    time.sleep(5)  # the front's next OPTIONS round finds it back
    call_ids = cluster.calls(6)
    assert cluster.answered_by(1, call_ids), "the restarted worker got no calls"
    # The restarted worker ended the record of the call it was killed in.
    held.join()
    engine = sa.create_engine(cluster.postgres.url)
    with engine.connect() as connection:
        outcomes = set(connection.scalars(sa.select(Call.outcome).where(Call.id.in_(cut_off))))
        lost = set(connection.scalars(sa.select(CallEvent.call_id).where(CallEvent.kind == "worker_lost")))
    engine.dispose()
    assert outcomes == {"error"} and cut_off <= lost


def test_calls_while_postgresql_is_away_are_all_recorded_when_it_is_back(cluster):
    cluster.postgres.stop()
    try:
        call_ids = cluster.calls(4)
    finally:
        cluster.postgres.start()
    engine = sa.create_engine(cluster.postgres.url)
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as connection:
            stored = set(connection.scalars(sa.select(Call.id).where(Call.id.in_(call_ids), Call.outcome.isnot(None))))
        if stored == set(call_ids) or time.monotonic() > deadline:
            break
        time.sleep(1)
    engine.dispose()
    assert stored == set(call_ids)



def test_cluster_up_chooses_the_workers_the_machine_carries():
    from voicebot.cluster.up import machine, workers_for

    assert workers_for(cores=2, available_mb=22_000, languages=5) == 5  # twenty calls on two cores
    assert workers_for(cores=8, available_mb=64_000, languages=5) == 20
    assert workers_for(cores=8, available_mb=8_000, languages=5) == 4  # memory, not cores, is the limit
    assert workers_for(cores=1, available_mb=2_000, languages=5) == 1  # never none
    cores, available_mb = machine()
    assert cores >= 1 and available_mb > 0
