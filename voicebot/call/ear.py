"""The call's ear: a Listener per call with the recogniser of the line's language."""

import concurrent.futures
from typing import Callable, Optional, Protocol

from voicebot.audio.asr import Recognizers
from voicebot.audio.listener import Listener, ListenerEvent
from voicebot.audio.turn_end import Judge, TurnEndSettings
from voicebot.audio.vad import VadSettings
from voicebot.config import Tenant
from voicebot.config.settings import Settings


class Listening(Protocol):
    def stop(self) -> None: ...


class Ear(Protocol):
    def hears(self, language: str) -> bool:
        """Whether speech in this language can be recognised (else: keypad only)."""

    def listen(self, tenant: Tenant, frames, emit: Callable[[ListenerEvent], None], name: str,
               judge: Optional[Judge] = None) -> Listening:
        """Start turning the call's received frames into events, on a thread of its own; `judge`
        reads the words at a pause, so that the turn may end sooner or later than on silence."""


class RecognizingEar:
    def __init__(self, settings: Settings, asr: Recognizers, decoder: Optional[concurrent.futures.Executor],
                 make_detector):
        self.settings, self.asr, self.decoder, self.make_detector = settings, asr, decoder, make_detector

    def hears(self, language: str) -> bool:
        return self.asr.has(language)

    def listen(self, tenant: Tenant, frames, emit: Callable[[ListenerEvent], None], name: str,
               judge: Optional[Judge] = None) -> Listener:
        audio, lang = self.settings.audio, tenant.language
        end = audio.end_of_turn
        turn_end = (TurnEndSettings(judge, audio.hangover_ms, end.complete_ms, end.unfinished_ms, end.answer_early_ms)
                    if judge and end.listen_to_words else None)
        make_recognizer = None
        if self.asr.has(lang):
            engine = self.asr.engine(lang)
            phrases = self.settings.asr.models[lang].phrases if lang in self.settings.asr.models else []
            if engine.name != "vosk":  # a Vosk phrase list is a grammar: only what is configured
                phrases = phrases or tenant.office_names
            make_recognizer = lambda: engine.recognizer(phrases)  # noqa: E731
        vad = VadSettings(hangover_ms=audio.hangover_ms, min_speech_ms=audio.min_speech_ms)
        return Listener(frames, emit, vad, make_recognizer, int(audio.max_utterance_s * 1000), name=name,
                        decoder=self.decoder, make_detector=self.make_detector,
                        barge_in_ms=audio.barge_in_ms, turn_end=turn_end).start()
