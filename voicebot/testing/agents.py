"""The demo installation with agents, for the queue tests and `voicebot bench handoff`: real
baresip softphones (Debian's baresip, a peer no one here wrote) register as agents with the
bot's registrar, answer (or not) and play a tone; the demo lines' trained models are reused."""

import subprocess
import time
from pathlib import Path
from typing import Dict, Optional

import yaml

from voicebot.dialogue.training import TRAINING_FILES
from voicebot.ports import free_port
from voicebot.queue.registrar import ha1
from voicebot.testing.lines import REPO

SHARED_POOL = ("demo-kommune-borgerservice", "stadt-kreis-pool")


def build_demo(root: Path, passwords: Dict[str, str], desk_port: Optional[int] = None,
          only: Optional[Dict[str, dict]] = None, **queue) -> Path:
    """Write voicebot.yml under root: the demo lines, with agents (user -> password) who all serve
    the Danish and the German line's queues (a shared pool), `queue` settings for both queues
    (`only`: settings for one queue id), and with desk_port a fixed-address agent 'desk' at
    sip:desk@127.0.0.1:desk_port."""
    root.mkdir(parents=True, exist_ok=True)
    settings = yaml.safe_load((REPO / "voicebot.yml").read_text())
    settings.update(tenants_dir=str(REPO / "tenants"), models_dir=str(REPO / "models"),
                    audio_prompts_dir=str(REPO / "audio_prompts"))
    realm = settings.get("agent_registrar", {}).get("realm", "voicebot")
    settings["agents"] = {user: {"name": user.title(), "username": user, "ha1": ha1(user, realm, password),
                                 "queues": list(SHARED_POOL)} for user, password in passwords.items()}
    if desk_port:
        settings["agents"]["desk"] = {"name": "Desk", "uri": f"sip:desk@127.0.0.1:{desk_port}",
                                      "queues": list(SHARED_POOL)}
    for queue_id in SHARED_POOL:
        settings["queues"][queue_id].update(queue, **(only or {}).get(queue_id, {}))
    path = root / "voicebot.yml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True))
    for name in (*TRAINING_FILES, "nlu_data", "stories"):  # what the models' fingerprints cover
        if not (root / name).exists():
            (root / name).symlink_to(REPO / name)
    return path


class BaresipAgent:
    """baresip as a live agent's softphone: registers as `user` with the registrar on
    127.0.0.1:registrar_port, answers every call at once (or never, answer=False) and plays a
    sine tone. What it hears goes to dump-*-dec.wav (`heard()`), its SIP trace (the INVITEs it
    got, with their headers) to `log`. A context manager; stopped, it unregisters first."""

    def __init__(self, registrar_port: int, user: str, password: str, workdir: Path, answer: bool = True,
                 tone: int = 440, regint: int = 60):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.log = workdir, workdir / "baresip.log"
        (workdir / "accounts").write_text(
            f"<sip:{user}@127.0.0.1:{registrar_port}>;auth_pass={password};regint={regint};"
            f"answermode={'auto' if answer else 'manual'}\n")
        # baresip also listens for TLS on the port after its own, which free_port did not check:
        # when another process holds it, baresip gives up at once, and is started on another port.
        for _ in range(5):
            self._start(tone)
            if self._started():
                break
        else:
            raise RuntimeError(f"baresip did not start: {self.log.read_text()[-1000:]}")

    def _start(self, tone: int) -> None:
        self.port = free_port()
        # ausine only makes 48 kHz stereo; without saying so, baresip cannot start it and never answers.
        (self.workdir / "config").write_text("\n".join([
            "poll_method epoll", f"sip_listen 127.0.0.1:{self.port}",
            f"audio_source ausine,{tone}", "ausrc_srate 48000", "ausrc_channels 2",
            "audio_player aubridge,ear", "audio_alert aubridge,ear",
            "module_path /usr/lib/baresip/modules", "module g711.so", "module g722.so", "module ausine.so",
            "module aubridge.so", "module sndfile.so", "module_app account.so", f"snd_path {self.workdir}", ""]))
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(["baresip", "-s", "-f", str(self.workdir)], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)

    def _started(self, timeout: float = 10) -> bool:
        """Its transports are up (it goes on to load codecs), or it gave up (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "init failed" in text or self.process.poll() is not None:
                self.stop()
                return False
            if "aucodec:" in text:
                return True
            time.sleep(0.05)
        return True  # slow, not failed: the caller's own waits judge it

    def __enter__(self) -> "BaresipAgent":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

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
