"""The bot as `voicebot serve` runs it, built in one place and in order: the calls in progress and
the agent queue, the store with its metrics, the action server, the dialogue, the phone line
with its speech engines, and the HTTP app (text channel, API, dashboard). `run` owns start and
stop: on start the models load, the line and the agents' registrar open and the retention job
runs; on stop each goes in the opposite order."""

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional

from voicebot.audio.asr import registry_for
from voicebot.audio.tts import PromptCache, voice_for
from voicebot.call.live import LiveCalls
from voicebot.channels.http import create_app
from voicebot.config import Installation
from voicebot.dialogue.action_server import ActionServerProcess
from voicebot.dialogue.runtime import Dialogue
from voicebot.memory import freeze_long_lived
from voicebot.metrics import Metrics
from voicebot.queue.factory import queue_service
from voicebot.store import RecordStore
from voicebot.telephony.line import PhoneLine
from voicebot.telephony.sip import MAX_CALLS


@dataclass
class ServeOptions:
    """What `voicebot serve` may set beyond voicebot.yml (None: the settings' value)."""

    host: Optional[str] = None
    port: Optional[int] = None
    actions_port: Optional[int] = None  # 0: any free port
    sip: bool = True  # False: the text channel only
    sip_port: Optional[int] = None
    registrar_port: Optional[int] = None
    rasa_servers: Dict[str, str] = field(default_factory=dict)  # language -> URL of its Rasa server
    worker: Optional[str] = None  # this process's name in the call records (default HOST:HTTP-PORT)


class ListenError(RuntimeError):
    """The HTTP port could not be bound (in use, or not this machine's address)."""


class Bot:
    """`settings_path`: the installation's voicebot.yml (the action server loads it too); `say`
    gets what the operator starting the bot should read (addresses, missing models)."""

    def __init__(self, inst: Installation, settings_path: Path, options: ServeOptions,
                 say: Callable[[str], None] = print):
        settings, self.inst, self.settings_path, self.say = inst.settings, inst, settings_path, say
        self.host, self.port = options.host or settings.http.host, options.port or settings.http.port
        self._check_listen()  # before the models load, so that an operator hears it at once
        self.options = options
        self.line = self.queues = None
        if options.sip:
            calls = LiveCalls()
            self.queues = queue_service(settings, live_calls=calls.listed, rung_calls=calls.rung)
        self.records = RecordStore(settings.store_url, inst.root, settings.nlu.review_below,
                                   metrics=Metrics(self.queues.snapshot if self.queues else None),
                                   worker=options.worker or f"{socket.gethostname()}:{self.port}")
        self.actions = self._action_server(options)
        self.dialogue = Dialogue(inst, self.actions.url if self.actions else settings.action_server.url,
                                 servers=options.rasa_servers,
                                 actions_up=self.actions.is_up if self.actions else lambda: True)
        if options.sip:
            self.line = self._phone_line(calls)
        self.http = create_app(inst, self.dialogue, self.records, phone_line=self.line)
        self.http.register_listener(self._start, "before_server_start")
        self.http.register_listener(self._stop, "before_server_stop")
        self._listening = threading.Event()
        self.http.register_listener(lambda app, loop: self._listening.set(), "after_server_start")
        if self.line:
            self.http.register_listener(lambda app, loop: self.line.stop(), "after_server_stop")

    def _action_server(self, options: ServeOptions) -> Optional[ActionServerProcess]:
        """Our own action server, unless voicebot.yml names one elsewhere or every language runs
        on a Rasa server (which has its own)."""
        settings = self.inst.settings.action_server
        servers = {**self.inst.settings.rasa_servers, **options.rasa_servers}
        if not settings.spawn or all(lang in servers for lang in self.inst.languages):
            return None
        return ActionServerProcess(self.settings_path, settings.host,
                                   settings.port if options.actions_port is None else options.actions_port)

    def _phone_line(self, calls):
        """The SIP line with its speech models (loaded now, not during the first call); says which
        lines have no recogniser."""
        asr = registry_for(self.inst)
        for tenant in self.inst.tenants.values():
            voice_for(tenant)  # a line without a voice is a configuration error, before any call
            if not asr.has(tenant.language):
                self.say(f"note: no speech recognition model for {tenant.language!r}: line {tenant.id} answers the "
                         f"keypad only (run 'voicebot models get {tenant.language}' or set "
                         f"asr.models.{tenant.language}.path)")
        for loaded in asr.load_all():
            self.say(f"speech recognition {loaded}")
        prompts = PromptCache(self.inst.path(self.inst.settings.audio_prompts_dir))
        return PhoneLine(self.inst, self.dialogue, asr, prompts, self.records, self.queues, calls,
                         port=self.options.sip_port)

    def run(self) -> None:
        """Serve until stopped (Ctrl-C, SIGTERM). ListenError if the HTTP port could not be bound
        (Sanic only logs that)."""
        orphans = self.records.end_orphans()
        if orphans:
            self.say(f"ended {orphans} calls and conversations that this worker ({self.records.worker}) left open "
                     "when it stopped (outcome error, event worker_lost)")
        if self.actions:
            self.actions.start()
            self.actions.supervise()
        try:
            self.say(f"text channel on http://{self.host}:{self.port}, actions on {self.dialogue.action_server_url}")
            self.http.run(host=self.host, port=self.port, access_log=False, motd=False)
        finally:
            if self.actions:
                self.actions.stop()
        if not self._listening.is_set():
            raise ListenError(self._cannot_listen("see the error above"))

    def _check_listen(self) -> None:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Sanic binds it
            try:
                sock.bind((self.host, self.port))
            except OSError as error:
                raise ListenError(self._cannot_listen(error.strerror or str(error))) from None

    def _cannot_listen(self, why: str) -> str:
        return (f"cannot listen on http://{self.host}:{self.port} ({why}): choose another port "
                "(voicebot.yml http.port, or --port) or stop what holds it")

    async def _start(self, app, loop) -> None:
        self.dialogue.load()
        app.ctx.purge = loop.create_task(self.records.purge_every(self.inst.tenants.values()))
        if self.line:
            self.line.start(loop)
            self.say(f"phone line on sip:{self.line.address} (UDP and TCP, at most {MAX_CALLS} calls at once); "
                     + ", ".join(f"{t.id}: {', '.join(t.numbers)}" for t in self.inst.tenants.values()))
            registrar = await self.line.start_registrar(self.options.registrar_port)
            if registrar:
                self.say(f"agents register at sip:{registrar.host}:{registrar.port} (UDP, realm {registrar.realm})")
        freeze_long_lived()

    def _stop(self, app, loop) -> None:
        app.ctx.purge.cancel()
        self.records.close()
