"""The bot's own agent queue, with real calls over 127.0.0.1: baresip softphones as agents that
register with digest authentication, the test caller as the citizen, the bot in between."""

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import AGENT_HOURS, REPO, TextBot, events, place_call
from peers import wav_samples
from voicebot.dialogue.action_server import free_port
from voicebot.queue.registrar import ha1

DEMO_KOMMUNE = "+4570101010"
STADT_KREIS = "+4929211030"
CALLER_ID = "4512345678"
AGENT_TONE, CALLER_TONE = 600, 1000
PASSWORDS = {"anna": "anna-secret-pw", "bo": "bo-secret-pw", "cai": "cai-secret-pw"}


def queue_installation(root: Path, **queue) -> Path:
    """The demo installation with three registering agents who serve the Danish and the German
    line's queues (a shared pool), short timers for tests, and the trained models reused."""
    settings = yaml.safe_load((REPO / "voicebot.yml").read_text())
    settings.update(tenants_dir=str(REPO / "tenants"), models_dir=str(REPO / "models"),
                    audio_prompts_dir=str(REPO / "audio_prompts"))
    shared = ["demo-kommune-borgerservice", "stadt-kreis-pool"]
    realm = settings.get("agent_registrar", {}).get("realm", "voicebot")
    settings["agents"] = {user: {"name": user.title(), "username": user, "ha1": ha1(user, realm, password),
                                 "queues": shared} for user, password in PASSWORDS.items()}
    timers = {"ring_timeout_s": 4, "wrap_up_s": 1, "announce_every_s": 6, "whisper": True, **queue}
    for queue_id in shared:
        settings["queues"][queue_id].update(timers)
    path = root / "voicebot.yml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True))
    for name in ("domain.yml", "config.yml", "nlu_data", "stories"):  # the models' fingerprints
        (root / name).symlink_to(REPO / name)
    return path


class Agent:
    """baresip as an agent's softphone: registers as `user`, answers at once (or never, with
    answer=False) and plays a sine tone; what it hears goes to dump-*-dec.wav, and its SIP
    trace (the INVITEs it got, with their headers) to its log."""

    def __init__(self, bot: "QueueBot", user: str, workdir: Path, password: str = "", answer: bool = True,
                 tone: int = AGENT_TONE):
        workdir.mkdir(parents=True, exist_ok=True)
        self.user, self.workdir, self.log = user, workdir, workdir / "baresip.log"
        (workdir / "config").write_text("\n".join([
            "poll_method epoll", f"sip_listen 127.0.0.1:{free_port()}", "sip_trace yes",
            f"audio_source ausine,{tone}", "ausrc_srate 48000", "ausrc_channels 2",
            "audio_player aubridge,ear", "audio_alert aubridge,ear",
            "module_path /usr/lib/baresip/modules", "module g711.so", "module g722.so", "module ausine.so",
            "module aubridge.so", "module sndfile.so", "module_app account.so", f"snd_path {workdir}", ""]))
        answermode = "auto" if answer else "manual"
        (workdir / "accounts").write_text(
            f"<sip:{user}@127.0.0.1:{bot.registrar_port}>;auth_pass={password or PASSWORDS[user]};"
            f"regint=60;answermode={answermode}\n")
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(["baresip", "-s", "-f", str(workdir)], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)

    def heard(self) -> Path:
        dumps = sorted(self.workdir.glob("dump-*-dec.wav"))
        assert dumps, self.log.read_text()[-3000:]
        return dumps[-1]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class QueueBot(TextBot):
    def __init__(self, config: Path, store_url: str):
        self.registrar_port = free_port()
        super().__init__(AGENT_HOURS, store_url, sip=True, config=config,
                         extra_args=("--registrar-port", str(self.registrar_port)))

    def agent_state(self, agent_id: str) -> str:
        return next(a for a in self.request("GET", "/queues")[1]["agents"] if a["id"] == agent_id)["state"]

    def wait_for_agents(self, state: str, *agent_ids: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while {self.agent_state(a) for a in agent_ids} != {state}:
            assert time.monotonic() < deadline, self.request("GET", "/queues")[1]
            time.sleep(0.2)

    def resume_all(self) -> None:
        for agent_id in PASSWORDS:
            self.request("POST", f"/agents/{agent_id}/state", b'{"state": "available"}')


@pytest.fixture(scope="module")
def queue_bot(trained, tmp_path_factory, store_url):
    server = QueueBot(queue_installation(tmp_path_factory.mktemp("queue")), store_url)
    yield server
    server.stop()


@pytest.fixture
def agents(queue_bot, tmp_path):
    """Start agents with agents(user, ...); all are stopped (and log out) after the test."""
    started = []

    def start(user: str, **options) -> Agent:
        agent = Agent(queue_bot, user, tmp_path / user, **options)
        started.append(agent)
        return agent
    yield start
    for agent in started:
        agent.stop()
    queue_bot.wait_for_agents("logged_out", *PASSWORDS)
    queue_bot.resume_all()


def tone_share(path: Path, freq: float, start_s: float = 0.0) -> float:
    """The share of the signal's energy within 50 Hz of freq, from start_s on."""
    samples, rate = wav_samples(path)
    samples = samples[int(start_s * rate):]
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[np.abs(freqs - freq) < 50].sum() / max(spectrum.sum(), 1e-9))


def tone_wav(path: Path, freq: float, seconds: float) -> Path:
    import wave

    t = np.arange(int(16000 * seconds)) / 16000
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes((np.sin(2 * np.pi * freq * t) * 0.3 * 32767).astype("<i2").tobytes())
    return path


def test_caller_reaches_a_registered_agent_and_audio_flows_both_ways(queue_bot, agents, tmp_path):
    anna = agents("anna")
    queue_bot.wait_for_agents("available", "anna")
    heard = tmp_path / "caller-heard.wav"
    timeline = place_call(queue_bot.sip_uri(DEMO_KOMMUNE), "--from", CALLER_ID, "--dtmf", "0", "--wait", "14",
                          "--wav", str(tone_wav(tmp_path / "tone.wav", CALLER_TONE, 3)), "--wait", "2",
                          record=heard, timeout=40)
    record = queue_bot.call_record(timeline["call_id"])
    assert [e["agent"] for e in events(record, "queue_answered")] == ["anna"], record["events"]
    assert events(record, "bridged") and not events(record, "agent_lost"), json.dumps(record["events"])
    # Both ways through the bridge: the agent's tone at the caller, the caller's at the agent.
    assert tone_share(heard, AGENT_TONE, start_s=14) > 0.3
    assert tone_share(anna.heard(), CALLER_TONE) > 0.1
    # The context went with the INVITE to the agent.
    trace = anna.log.read_text()
    assert "X-Voicebot-Tenant: demo-kommune" in trace and f"X-Voicebot-Conversation: {timeline['call_id']}" in trace
    assert "X-Voicebot-Reason: requested" in trace
    # The caller hung up: the agent's call ended too, and the agent is in wrap-up, then available.
    queue_bot.wait_for_agents("available", "anna")
