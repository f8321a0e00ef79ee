"""Every route of the JSON API has an owner: without a token, with a forged or removed one, or
with a role that is not its owner's, it answers 401 or 403 and nothing else; a caller's whole
number only reaches an agent."""

import http.client
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import DEMO_CITY, REPO, place_call
from voicebot.dashboard.auth import harness_token

ROUTE = re.compile(r'@app\.(get|post)\("([^"]+)"\)')
# Every route, as a request, and the roles that own it (admin owns everything).
OWNERS = {
    ("GET", "/lines"): {"operator", "trainer", "agent", "channel"},
    ("POST", "/lines/<line_id>/conversations"): {"channel", "trainer"},
    ("POST", "/lines/<line_id>/conversations/<conversation_id>/messages"): {"channel", "trainer"},
    ("POST", "/lines/<line_id>/conversations/<conversation_id>/end"): {"channel", "trainer"},
    ("GET", "/metrics"): {"operator"},
    ("GET", "/calls"): {"operator", "agent"},
    ("GET", "/calls/<call_id>"): {"operator", "agent"},
    ("GET", "/lines/<line_id>/callbacks"): {"agent"},
    ("GET", "/queues"): {"operator", "agent"},
    ("POST", "/agents/<agent_id>/state"): {"operator", "agent"},
}
OPEN = {("GET", "/health")}  # says only that the process answers
EXAMPLE = {"<line_id>": "demo-city", "<conversation_id>": "0" * 32, "<call_id>": "no-such-call",
           "<agent_id>": "no-such-agent"}


def concrete(path: str) -> str:
    for name, value in EXAMPLE.items():
        path = path.replace(name, value)
    return path


def status_of(bot, method: str, path: str, token: str) -> int:
    body = json.dumps({"text": "hello", "state": "paused"}).encode() if method == "POST" else None
    try:
        return bot.request(method, concrete(path), body, token=token)[0]
    except json.JSONDecodeError:  # /metrics is plain text
        return 200


@pytest.fixture(scope="module")
def tokens(bot, store_url):
    return {role: harness_token(store_url, role) for role in ("operator", "trainer", "agent", "channel")}


def cli(store_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VOICEBOT_STORE_URL": store_url, "VOICEBOT_CONFIG": str(REPO / "voicebot.yml")}
    return subprocess.run([sys.executable, "-m", "voicebot.cli", "users", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_table_names_every_route_of_the_api():
    routes = {(method.upper(), path) for method, path in ROUTE.findall((REPO / "voicebot/channels/http.py").read_text())}
    assert routes == set(OWNERS) | OPEN


@pytest.mark.parametrize("method, path", sorted(OWNERS))
def test_no_token_or_a_forged_one_is_refused(bot, method, path):
    for token in ("", "forged-" + "x" * 40):
        assert status_of(bot, method, path, token) == 401, token


def test_the_refusal_says_how_to_sign_in(bot):
    status, body = bot.request("GET", "/calls", token="")
    assert status == 401 and "Authorization: Bearer" in body["error"]
    assert bot.request("GET", "/health", token="") == (200, {"status": "ok"})


@pytest.mark.parametrize("role", ["operator", "trainer", "agent", "channel"])
def test_each_role_reaches_only_the_routes_it_owns(bot, tokens, role):
    for (method, path), owners in OWNERS.items():
        status = status_of(bot, method, path, tokens[role])
        assert (status != 403) == (role in owners), (method, path, status)
        assert status != 401, (method, path)


def test_only_an_agent_sees_a_callers_whole_number_and_only_during_the_call(bot, tokens):
    def callers(call_id: str) -> dict:
        return {role: bot.request("GET", f"/calls/{call_id}", token=tokens[role])[1].get("caller")
                for role in ("operator", "agent")}

    with ThreadPoolExecutor(1) as pool:
        calling = pool.submit(place_call, bot.sip_uri(DEMO_CITY), "--from", "+4512345678", "--wait", "3")
        live = []
        while not live and not calling.done():
            live = [c["call_id"] for c in bot.request("GET", "/calls", token=tokens["operator"])[1]
                    if c["state"] == "talking" and c["caller"] == "…5678"]
        during = callers(live[0])
        timeline = calling.result()
    assert during == {"operator": "…5678", "agent": "+4512345678"}
    bot.call_record(timeline["call_id"])  # over on the bot's side too
    assert callers(timeline["call_id"]) == {"operator": "…5678", "agent": "…5678"}


def test_a_token_from_the_command_line_works_until_it_is_removed(bot, store_url):
    made = cli(store_url, "token", "web-chat", "--role", "channel")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert bot.request("POST", "/lines/demo-city/conversations", token=token)[0] == 201
    assert "web-chat\tchannel\t(API token)" in cli(store_url, "list").stdout
    # A front end's token is no dashboard login, whatever cookie it is put in.
    connection = http.client.HTTPConnection("127.0.0.1", bot.port, timeout=30)
    connection.request("GET", "/dashboard/", headers={"Cookie": f"voicebot_session={token}"})
    answer = connection.getresponse()
    assert (answer.status, answer.getheader("Location")) == (302, "/dashboard/login")
    connection.close()
    assert cli(store_url, "remove", "web-chat").returncode == 0
    assert bot.request("POST", "/lines/demo-city/conversations", token=token)[0] == 401
    assert cli(store_url, "remove", "web-chat").returncode != 0


def test_a_persons_login_cannot_be_turned_into_a_token(store_url):
    assert cli(store_url, "add", "kirsten", "--role", "operator", "--password", "a long password").returncode == 0
    made = cli(store_url, "token", "kirsten", "--role", "channel")
    assert made.returncode != 0 and "a person's login" in made.stderr
    assert cli(store_url, "token", "wallboard", "--role", "nobody").returncode != 0


def action_server(bot) -> tuple:
    """The port of the bot's action server and the secret the bot gave it."""
    tasks = Path(f"/proc/{bot.process.pid}/task").iterdir()
    for pid in (pid for task in tasks for pid in (task / "children").read_text().split()):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"voicebot.dialogue.action_server" in command:
            environ = dict(v.split(b"=", 1) for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in v)
            return int(command[command.index(b"--port") + 1]), environ[b"VOICEBOT_ACTIONS_TOKEN"].decode()
    raise AssertionError("no action server running under the bot")


def test_the_action_server_answers_only_the_bot(bot):
    """Its actions store callback requests: a forged one from anyone else is refused."""
    port, secret = action_server(bot)
    url = f"http://127.0.0.1:{port}"
    forged = {"next_action": "action_callback", "sender_id": "x", "version": "3.6.0",
              "tracker": {"sender_id": "x", "slots": {}, "latest_message": {"metadata": {"caller": "+4599999999"}},
                          "events": []}, "domain": {}}
    def status(headers: dict, action: str = "action_callback") -> int:
        request = urllib.request.Request(f"{url}/webhook", json.dumps({**forged, "next_action": action}).encode(),
                                         method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    assert status({}) == status({"Authorization": "Bearer forged"}) == 401
    assert status({"Authorization": f"Bearer {secret}"}, "action_thank") != 401  # the bot's own secret gets in
    with urllib.request.urlopen(f"{url}/health", timeout=10) as answer:
        assert answer.status == 200


def test_a_text_turn_goes_only_to_a_conversation_the_text_channel_started(bot, tokens):
    timeline = place_call(bot.sip_uri(DEMO_CITY), "--dtmf", "1")
    call = bot.call_record(timeline["call_id"])
    conversation_id, _ = bot.start("demo-kommune")
    turn = json.dumps({"text": "I want to talk to a person", "caller": "+4599999999"}).encode()
    for line, target in (("demo-city", timeline["call_id"]),  # a phone call's SIP Call-ID
                         ("demo-city", conversation_id),  # another line's conversation
                         ("demo-city", "0" * 32)):  # a guess
        status, body = bot.request("POST", f"/lines/{line}/conversations/{target}/messages", turn,
                                   token=tokens["channel"])
        assert status == 404 and "start one" in body["error"], (target, body)
    assert bot.call_record(timeline["call_id"])["events"] == call["events"]
    assert bot.say("demo-kommune", conversation_id, "tak")["messages"]  # its own line goes on


def test_only_a_channel_front_end_gives_the_callers_number(bot, tokens):
    """A number given with a turn is offered as the callback number, and a yes is all it takes: a
    trainer (or anyone short of a front end that vouches for its citizens) cannot give one."""
    conversation_id, _ = bot.start("demo-city")
    path = f"/lines/demo-city/conversations/{conversation_id}/messages"
    turn = json.dumps({"text": "can someone call me back please", "caller": "+447700900321"}).encode()
    status, body = bot.request("POST", path, turn, token=tokens["trainer"])
    assert status == 403 and "channel front end" in body["error"], body
    status, body = bot.request("POST", path, turn, token=tokens["channel"])
    assert status == 200 and "0 3 2 1" in body["messages"][0], body  # offered, to be confirmed
