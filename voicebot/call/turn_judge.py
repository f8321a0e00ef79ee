"""The judge of a caller's words at a pause (voicebot.audio.turn_end): does what they said so far
make a whole request? A last word a sentence does not end on says no at once; otherwise the
line's NLU, on the call's loop, says yes when it is sure of an intent that does not lead on, and
that it may be answered at once when that intent is a routine question (the line's offices, a topic)."""

import asyncio
import concurrent.futures
import logging

from voicebot.audio.turn_end import Verdict, done, ends_unfinished
from voicebot.config.settings import EndOfTurnSettings
from voicebot.knowledge.phrasebook import phrasebook

logger = logging.getLogger(__name__)

NOT_UNDERSTOOD = ("nlu_fallback", None)


class WordsJudge:
    def __init__(self, dialogue, language: str, loop: asyncio.AbstractEventLoop, settings: EndOfTurnSettings):
        self.dialogue, self.language, self.loop, self.settings = dialogue, language, loop, settings
        self.unfinished = phrasebook(language).unfinished_words
        self.routine = set(dialogue.inst.routine_intents)

    def __call__(self, text: str, nlu: bool = True) -> "concurrent.futures.Future[Verdict]":
        """Called from the listener's thread; with nlu False, the NLU is not asked."""
        if ends_unfinished(text, self.unfinished):
            return done(Verdict.UNFINISHED)
        if not nlu:
            return done(Verdict.UNSURE)
        return asyncio.run_coroutine_threadsafe(self._parsed(text), self.loop)

    async def _parsed(self, text: str) -> Verdict:
        try:
            intent = (await self.dialogue.parse(self.language, text)).get("intent") or {}
        except Exception:  # the NLU is down: the turn ends on silence, and the turn itself says so
            logger.warning("could not judge the words so far; the turn ends on silence", exc_info=True)
            return Verdict.UNSURE
        name, confidence = intent.get("name"), intent.get("confidence") or 0.0
        if name in NOT_UNDERSTOOD or name in self.settings.wait_after or confidence < self.settings.confidence:
            return Verdict.UNSURE
        return Verdict.ANSWERABLE if name in self.routine else Verdict.COMPLETE
