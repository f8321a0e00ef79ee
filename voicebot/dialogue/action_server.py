"""The Rasa action server for voicebot's custom actions, bound to loopback by default. It answers
only the bot: every request but /health must carry the secret the two share (VOICEBOT_ACTIONS_TOKEN,
made by the bot when it starts its own action server), since its actions store callback requests."""

import argparse
import hmac
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Optional

from voicebot import logs, procs
from voicebot.ports import free_port

logger = logging.getLogger(__name__)

TOKEN_ENV = "VOICEBOT_ACTIONS_TOKEN"


def endpoint(url: str):
    """Rasa's endpoint for the action server at `url`, with the shared secret."""
    from rasa.utils.endpoints import EndpointConfig

    token = os.environ.get(TOKEN_ENV)
    return EndpointConfig(f"{url}/webhook", headers={"Authorization": f"Bearer {token}"} if token else None)


def is_healthy(url: str, timeout: float = 1.0) -> bool:
    """Whether `url` (a health endpoint) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


class ActionServerError(RuntimeError):
    """The action server could not be started."""


class ActionServerProcess:
    """Runs the action server as a child process, so a crash there never takes the bot down."""

    def __init__(self, settings_path: Path, host: str = "127.0.0.1", port: int = 0,
                 env: Optional[dict] = None):
        self.settings_path = Path(settings_path).resolve()
        self.host = host
        self.port = port or free_port(host)
        self.env = env or {}
        os.environ.setdefault(TOKEN_ENV, secrets.token_urlsafe(32))  # this process's Rasa sends it (endpoint())
        self.process: Optional[subprocess.Popen] = None
        self._stopping = threading.Event()
        self._answering = threading.Event()  # set from "healthy" until it is found dead

    def is_up(self) -> bool:
        """Whether it runs and has answered its health check since it was (re)started."""
        return self._answering.is_set() and self.process is not None and self.process.poll() is None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 90.0) -> "ActionServerProcess":
        if is_healthy(f"{self.url}/health"):
            raise ActionServerError(f"something already answers on {self.url}; choose another action_server.port")
        self._answering.clear()
        env = {**os.environ, "VOICEBOT_CONFIG": str(self.settings_path), **self.env}
        self.process = procs.start(
            [sys.executable, "-m", "voicebot.dialogue.action_server", "--host", self.host, "--port", str(self.port)],
            env=env, cwd=self.settings_path.parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ActionServerError(f"the action server exited at start-up (code {self.process.returncode})")
            if is_healthy(f"{self.url}/health"):
                self._answering.set()
                return self
            time.sleep(0.1)
        procs.stop(self.process)  # not self.stop(): that would also end supervise()
        raise ActionServerError(f"the action server did not answer on {self.url} within {timeout:.0f} s")

    def supervise(self, every_s: float = 0.2) -> "ActionServerProcess":
        """Restart the action server whenever it dies. Meanwhile turns wait for it up to
        action_server.timeout_s, then end in the technical-fault handoff (voicebot.dialogue.runtime)."""
        def watch() -> None:
            while not self._stopping.wait(every_s):
                if self.process.poll() is not None:
                    logger.error("the action server exited (code %s); restarting it", self.process.returncode)
                    try:
                        self.start()
                    except ActionServerError as error:
                        logger.error("%s", error)
        threading.Thread(target=watch, name="action-server-watchdog", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self.process:
            procs.stop(self.process, timeout=10)

    def __enter__(self) -> "ActionServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args()
    logs.configure()
    token = os.environ.get(TOKEN_ENV)
    if not token:
        sys.exit(f"set {TOKEN_ENV} to the secret the bot sends (the bot sets it for an action server it starts)")
    from rasa_sdk.endpoint import create_app
    from sanic import response

    from voicebot.dialogue import actions

    actions.installation()  # fail at start-up, not on the first call, if configuration is wrong
    app = create_app(actions, cors_origins=None)
    expected = f"Bearer {token}".encode()

    async def only_the_bot(request):
        if request.path != "/health" and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), expected):
            return response.json({"error": f"only the bot may call its action server ({TOKEN_ENV})"}, status=401)

    app.register_middleware(only_the_bot, "request")
    app.run(host=args.host, port=args.port, access_log=False, motd=False)


if __name__ == "__main__":
    main()
