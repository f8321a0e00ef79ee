"""Shared fixtures: the trained models (trained once, reused), and real bot servers on loopback."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

import pytest

from voicebot.config import load_installation
from voicebot.dashboard.auth import harness_token
from voicebot.dialogue.training import TRAINING_FILES, train_stale
from voicebot.ports import free_port
from voicebot import procs
from voicebot.testing.phone import timeline_from_output
from voicebot.timeline import without_taken_back

# Fixtures of their own modules: a private PostgreSQL server, a headless browser, private Redis,
# the Kamailio front, the Norwegian and Swedish demo lines' bot; and the fixture timing report.
pytest_plugins = ("postgres", "browser", "redis_server", "front", "nordic", "timing")

REPO = Path(__file__).resolve().parents[1]
# A Tuesday morning: every demo line's agents are at work.
AGENT_HOURS = "2026-11-24T10:00:00+01:00"
# A Sunday: no agents anywhere.
NO_AGENTS = "2026-11-29T12:00:00+01:00"
# The demo lines' numbers.
DEMO_CITY, DEMO_KOMMUNE, STADT_KREIS = "+441632960100", "+4570101010", "+4929211030"
# The lines the session's bot serves: the Danish, German and English demo lines. The Norwegian and
# Swedish ones have a bot of their own (tests/nordic.py), and so has the shared hotline
# (test_shared_line): every language more is a model more to load before the first test.
SESSION_LINES = ("demo-kommune", "stadt-kreis", "demo-city")

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# In a parallel run (.ci/run: pytest -n 2 --dist loadgroup --no-loadscope-reorder), every worker
# that runs a test using a session-wide bot starts that bot itself; the modules that share the
# session bots therefore run as one group, on one worker. Every other module is a group of its
# own, so its module fixtures start once. Groups are handed out in this order (longest first,
# from the figures in benchmarks/TEST_TIMES.md), the rest after them in file order.
# Every bot of the run signs text conversation ids alike, so workers can share conversations.
os.environ.setdefault("VOICEBOT_CONVERSATION_KEY", "test-conversations")
SHARED_BOTS = ("test_api_access", "test_bad_input", "test_cluster_front", "test_dialogue", "test_phone_line",
               "test_sip_security", "test_sip_shapes", "test_sip_peers", "test_phone_faults", "test_speech_in")
LONGEST_FIRST = ("shared-bots", "test_agent_queue", "test_dashboard", "test_commands", "test_rasa_server",
                 "test_dashboard_access",
                 "test_cluster", "test_shared_queue", "test_operations")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    def group(item) -> str:
        module = item.module.__name__
        return "shared-bots" if module in SHARED_BOTS else module

    for item in items:
        item.add_marker(pytest.mark.xdist_group(group(item)))
    order = {name: rank for rank, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: order.get(group(item), len(order)))  # stable: file order within


@pytest.fixture(scope="session")
def inst():
    return load_installation(REPO / "voicebot.yml")


@pytest.fixture
def install_copy(tmp_path) -> Path:
    """A copy of the installation's configuration and training data, to change freely."""
    for name in ("voicebot.yml", *TRAINING_FILES):
        shutil.copy(REPO / name, tmp_path / name)
    for folder in ("tenants", "nlu_data", "stories", "heldout"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


@pytest.fixture(scope="session")
def trained(inst):
    """Models for every language; trains only what is missing or stale (the install script
    normally did it already)."""
    train_stale(inst, inst.languages)
    return inst


class TextBot:
    """A `voicebot serve` process and a client for its HTTP text channel (and its phone line,
    with `sip=True`)."""

    def __init__(self, clock: str, store_url: str, sip: bool = False, config: Optional[Path] = None,
                 extra_args: tuple = (), log: Optional[Path] = None, lines: tuple = ()):
        """`lines`: serve only these (and load only their languages' models); default all."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self.sip_port = free_port() if sip else None
        env = {**os.environ, "VOICEBOT_CLOCK": clock, "VOICEBOT_STORE_URL": store_url,
               "VOICEBOT_CONFIG": str(config or REPO / "voicebot.yml")}
        self.env = env
        sip_args = ["--sip-port", str(self.sip_port)] if sip else ["--no-sip"]
        self.process = procs.start(
            [sys.executable, "-m", "voicebot.cli", *(["--verbose"] if log else []), "serve", "--port", str(self.port),
             "--actions-port", "0", *sip_args, *[a for line in lines for a in ("--line", line)], *extra_args], cwd=REPO, env=env,
            stderr=open(log, "wb") if log else None)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "voicebot serve exited at start-up"
            try:
                if self.request("GET", "/health")[0] == 200:
                    self.token = harness_token(store_url)  # the bot has migrated the store
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("voicebot serve did not come up")

    def add_login(self, name: str, role: str, password: str) -> None:
        """A dashboard login in this bot's store, as `voicebot users add` makes it."""
        done = subprocess.run([sys.executable, "-m", "voicebot.cli", "users", "add", name, "--role", role],
                              input=f"{password}\n{password}\n", env=self.env, cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    def request(self, method: str, path: str, body: Optional[bytes] = None, token: Optional[str] = None):
        """The JSON answer; with the bot's admin token unless `token` is given ("": none)."""
        token = self.token if token is None else token
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def text(self, path: str) -> str:
        """A plain-text resource, such as /metrics."""
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            return response.read().decode()

    def start(self, line: str) -> tuple:
        status, body = self.request("POST", f"/lines/{line}/conversations")
        assert status == 201, body
        return body["conversation_id"], body["messages"]

    def say(self, line: str, conversation_id: str, text: str, caller: Optional[str] = None) -> dict:
        payload = {"text": text, **({"caller": caller} if caller else {})}
        status, body = self.request("POST", f"/lines/{line}/conversations/{conversation_id}/messages",
                                    json.dumps(payload).encode())
        assert status == 200, body
        return body

    def conversation(self, line: str, *texts: str, caller: Optional[str] = None) -> list:
        conversation_id, _ = self.start(line)
        return [self.say(line, conversation_id, text, caller) for text in texts]

    def sip_uri(self, number: str) -> str:
        return f"sip:{number}@127.0.0.1:{self.sip_port}"

    def call_record(self, call_id: str) -> dict:
        """The bot's timeline of a call, once the call is over on the bot's side too."""
        deadline = time.monotonic() + 15
        while True:
            status, record = self.request("GET", f"/calls/{call_id}")
            if status == 200 and record["state"] in ("ended", "transferred") or time.monotonic() > deadline:
                assert status == 200, record
                return record
            time.sleep(0.2)

    def stop(self) -> None:
        procs.stop(self.process)


@pytest.fixture(scope="session")
def store_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'voicebot.sqlite3'}"


@pytest.fixture(scope="session")
def bot(trained, store_url):
    server = TextBot(AGENT_HOURS, store_url, sip=True, lines=SESSION_LINES)
    yield server
    server.stop()


def metric(text, name, **labels):
    """A sample's value from a Prometheus exposition, or None."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{wanted}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def events(record: dict, kind: str) -> list:
    """The events of one kind in the bot's record of a call."""
    return [e for e in record["events"] if e["event"] == kind]


def answered(record: dict, kind: str) -> list:
    """The events of one kind in the bot's record of a call, less those of early answers it took
    back (the caller went on: voicebot.call.session): one spoken turn, one heard and one bot."""
    return [e for e in without_taken_back(record["events"]) if e["event"] == kind]


def place_call(uri: str, *args: str, timeout: float = 60, record: Optional[Path] = None,
               total_timeout: Optional[float] = None):
    """`voicebot call URI ARGS... --json`: the caller's timeline (a list of them with --calls)."""
    # -X faulthandler: should pjsua crash the caller, its threads' stacks go to stderr.
    command = [sys.executable, "-X", "faulthandler", "-m", "voicebot.cli", "call", uri, "--json",
               "--timeout", str(timeout), *args]
    if record:
        command += ["--record", str(record)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          timeout=total_timeout or timeout + 30)
    timeline = timeline_from_output(done.stdout)
    assert timeline is not None, f"exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-4000:]}"
    return timeline


# A Tuesday morning in Seoul, for the Korean test line.
SEOUL_OFFICE_HOURS = "2026-11-24T10:00:00+09:00"


@pytest.fixture(scope="session")
def korean_config(tmp_path_factory) -> Path:
    """The Korean test line's installation, trained. Silence is noticed after 4 s (not the
    default 8) to keep the silence tests short; a chat waits up to 10 s (not 3) for a call's turn,
    so that on a busy machine a slow turn does not outlast the wait the calls-first test watches."""
    from voicebot.testing import korean

    config = korean.build(tmp_path_factory.mktemp("korean"), silence_timeout_s=4)
    with config.open("a", encoding="utf-8") as settings:
        settings.write("text: {wait_for_calls_s: 10}\n")
    return config


@pytest.fixture(scope="session")
def korean_bot(korean_config, store_url):
    """The Korean test line on a phone line: real Vosk hears the caller."""
    server = TextBot(SEOUL_OFFICE_HOURS, store_url, sip=True, config=korean_config)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bot_without_agents(trained, store_url):
    server = TextBot(NO_AGENTS, store_url, lines=("demo-city", "demo-kommune"))
    yield server
    server.stop()
