"""The bot's mouth on one call: sentences rendered in turn and queued to the port as frames,
cut short when the caller barges in, and a wait until the caller has heard it all."""

import asyncio
import re
from typing import Callable, List, Optional, Protocol

from voicebot.audio.format import RATE
from voicebot.audio.tts import PromptCache, Synthesizer

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Voice(Protocol):
    async def render(self, text: str) -> bytes:
        """16 kHz 16-bit mono PCM of text."""


class CachedVoice:
    """A line's espeak-ng voice, through the prompt cache, off the loop."""

    def __init__(self, prompts: PromptCache, synthesizer: Synthesizer):
        self.prompts, self.synthesizer = prompts, synthesizer

    async def render(self, text: str) -> bytes:
        speech, _ = await asyncio.get_running_loop().run_in_executor(
            None, self.prompts.speech, self.synthesizer, text, RATE)
        return speech.pcm


# Told when a reply's first audio is queued: (purpose, texts, heard_at).
FirstAudio = Callable[[str, List[str], Optional[float]], None]


class Speaker:
    """`port` is the call's audio out (play, stop_playback, playing, frames_sent,
    sent_when_drained, queued_bytes). What is said while something is being said follows it."""

    def __init__(self, port, voice: Voice, on_first_audio: FirstAudio = lambda *_: None):
        self.port, self.voice, self.on_first_audio = port, voice, on_first_audio
        self.task: Optional[asyncio.Task] = None  # the last reply, which follows the ones before it
        self.saying: List[asyncio.Task] = []  # replies not yet done, the last one included
        self.purpose: Optional[str] = None  # of the reply being said ("answer", "greeting", ...)
        self.said_at_frame: Optional[int] = None  # its own words are out once the port has sent this many frames
        self.closed = False

    @property
    def busy(self) -> bool:
        """Rendering or still sending audio."""
        return self.port.playing or (self.task is not None and not self.task.done())

    def say(self, texts: List[str], purpose: str, heard_at: Optional[float] = None) -> None:
        previous = self.task
        self.task = asyncio.ensure_future(self._say(texts, purpose, heard_at, previous))
        self.saying = [task for task in self.saying if not task.done()] + [self.task]

    async def _say(self, texts: List[str], purpose: str, heard_at: Optional[float], previous) -> None:
        if previous and not previous.done():
            await asyncio.wait([previous])
        sentences = _sentences(texts)
        own_words = len(sentences) - len(_sentences(texts[-1:])) if _closing_question(texts) else len(sentences)
        self.purpose, self.said_at_frame = purpose, None
        for number, sentence in enumerate(sentences, 1):
            self.port.play(await self.voice.render(sentence))
            if number == own_words:
                self.said_at_frame = self.port.sent_when_drained
            if number == 1:
                self.on_first_audio(purpose, texts, heard_at)

    def interrupt(self) -> int:
        """Stop now: nothing more is rendered, nothing queued is sent. Returns the frames dropped."""
        self._cancel_all()
        return self.port.stop_playback()

    def _cancel_all(self) -> None:
        """Every reply still to be said, not only the last: cancelling a reply that waits for the
        one before it does not cancel that one."""
        for task in self.saying:
            task.cancel()
        self.saying = []

    async def played_out(self) -> None:
        """Until everything said so far has been sent (or the speaker is closed). Cancelling the
        wait does not cancel the speech: interrupt() does."""
        if self.task and not self.task.done():
            await asyncio.wait([self.task])
        while self.port.playing and not self.closed:
            await asyncio.sleep(0.05)

    def cut_off(self) -> dict:
        """What the caller cuts short by hanging up or speaking now: {"during": purpose} while the
        bot has not said all of a reply's own words yet. A closing question ("Anything else?") is
        not one of them: a caller who hangs up on it, or answers it early, has had the answer."""
        if not self.busy:
            return {}
        if self.said_at_frame is not None and self.port.frames_sent >= self.said_at_frame:
            return {}
        return {"during": self.purpose}

    # -- sound that is not speech (hold music), queued as it is
    def play(self, pcm: bytes) -> None:
        self.port.play(pcm)

    @property
    def queued_bytes(self) -> int:
        return self.port.queued_bytes

    def close(self) -> None:
        self.closed = True
        self._cancel_all()


def _sentences(texts: List[str]) -> List[str]:
    return [s for text in texts for s in SENTENCE_END.split(text) if s.strip()]


def _closing_question(texts: List[str]) -> bool:
    """Whether a reply ends asking a question of its own ("Anything else?", "Shall we call you back?")."""
    return len(texts) > 1 and texts[-1].rstrip().endswith("?")
