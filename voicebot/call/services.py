"""What every call on a line uses: settings, the dialogue, the queue, the store, an ear and a voice."""

from dataclasses import dataclass
from typing import Callable

from voicebot.call.ear import Ear
from voicebot.call.speaker import Voice
from voicebot.config import Tenant
from voicebot.config.settings import Settings
from voicebot.dialogue.runtime import Dialogue
from voicebot.queue.backend import QueueBackend
from voicebot.store import RecordStore


@dataclass
class CallServices:
    settings: Settings
    dialogue: Dialogue
    queues: QueueBackend
    store: RecordStore
    ear: Ear
    voice_for: Callable[[Tenant], Voice]
