"""One phone call's conversation, on the asyncio loop: listen, understand, answer, hand off.

Events arrive from the SIP thread (media ready, DTMF, transfer status, hang-up) and from the
call's Listener thread (speech started, utterance). The caller can always reach a person:
DTMF 0 at any moment, by asking, after two misunderstandings; and is never left in silence:
no speech gets a reprompt, then the keypad menu, then an honest goodbye.
"""

import asyncio
import logging
import re
import time
import urllib.parse
from typing import TYPE_CHECKING, List, Optional

import pjsua2 as pj

from voicebot.audio.format import RATE
from voicebot.audio.listener import Listener, Utterance
from voicebot.audio.tts import Synthesizer, voice_for
from voicebot.audio.vad import VadSettings
from voicebot.clock import ms
from voicebot.config import Tenant
from voicebot.dialogue.runtime import BotReply
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.telephony.sip import with_headers
from voicebot.telephony.waiting import QueuedCaller

if TYPE_CHECKING:
    from voicebot.telephony.line import BotCall, PhoneLine

logger = logging.getLogger(__name__)

TRANSFER_TIMEOUT_S = 30
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def context_headers(tenant: Tenant, handoff: dict, call_id: str, intent: Optional[str]) -> dict:
    """What the agent should know, as SIP header values (one line, printable, bounded)."""
    def clean(value: str) -> str:
        return re.sub(r"[\x00-\x1f\x7f]", " ", str(value))[:200]
    return {"X-Voicebot-Tenant": tenant.id, "X-Voicebot-Intent": clean(intent or "none"),
            "X-Voicebot-Reason": clean(handoff.get("reason", "")),
            "X-Voicebot-Summary": clean(handoff.get("summary", "")),
            "X-Voicebot-Conversation": clean(call_id),
            **({"X-Voicebot-Municipality": clean(handoff["municipality"])} if handoff.get("municipality") else {})}


def refer_target(uri: str, headers: dict) -> str:
    """Refer-To with the context as embedded headers (RFC 3261 19.1.1), so that the INVITE the
    caller's phone sends to the queue carries them too."""
    query = "&".join(f"{name}={urllib.parse.quote(value, safe='')}" for name, value in headers.items())
    return f"<{uri}?{query}>"


class CallSession:
    def __init__(self, line: "PhoneLine", tenant: Tenant, call: "BotCall", call_id: str,
                 caller: Optional[str]):
        self.line, self.tenant, self.call, self.call_id, self.caller = line, tenant, call, call_id, caller
        self.phrases = phrasebook(tenant.language)
        self.synthesizer = Synthesizer(voice_for(tenant), line.inst.settings.audio.words_per_minute)
        self.record = line.store.record(call_id, tenant.id, tenant.language, caller)
        self.events: "asyncio.Queue[tuple]" = asyncio.Queue()
        self.port = None
        self.listener: Optional[Listener] = None
        self.speaking: Optional[asyncio.Task] = None
        self.saying: Optional[str] = None  # the purpose of the reply being said ("answer", "greeting", ...)
        self.said_at_frame: Optional[int] = None  # its own words are out once the port has sent this many frames
        self.quiet_since = time.monotonic()
        self.caller_speaking = False
        self.silences = 0
        self.last_intent: Optional[str] = None
        self.transferring = False
        self.transfer_deadline: Optional[asyncio.TimerHandle] = None
        self.queued: Optional[QueuedCaller] = None  # waiting in the bot's queue, or with an agent
        self.queue_task: Optional[asyncio.Future] = None  # the wait in the queue, held while it runs
        self.handoff_at = 0.0
        self.ended = False

    # -- from the line (loop thread)
    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def event(self, kind: str, value) -> None:
        self.events.put_nowait((kind, value))

    def _emit_from_listener(self, kind: str, value) -> None:
        self.line.loop.call_soon_threadsafe(self.event, kind, value)

    # -- the call
    async def _run(self) -> None:
        try:
            await self._converse()
        except Exception:
            logger.exception("call %s failed", self.call_id)
            self.record.add("error")
            self.line.hang_up(self)
        finally:
            await self._close()

    async def _converse(self) -> None:
        audio = self.line.inst.settings.audio
        while not self.ended:
            try:
                kind, value = await asyncio.wait_for(self.events.get(), timeout=0.1)
            except asyncio.TimeoutError:
                if self.port is not None and self._silent_for() > audio.silence_timeout_s:
                    await self._on_silence()
                continue
            await self._handle(kind, value)

    def _silent_for(self) -> float:
        if self.port.playing or self.caller_speaking or self.transferring or self.queued or (
                self.speaking and not self.speaking.done()):
            self.quiet_since = time.monotonic()
        return time.monotonic() - self.quiet_since

    async def _handle(self, kind: str, value) -> None:
        if self.queued is not None and (kind in ("dtmf", "hangup") or kind.startswith("agent_")):
            self.queued.event(kind, value)
            if kind != "hangup":
                return
        if kind == "media":
            self._media_ready(value)
        elif kind == "speech_started":
            self.caller_speaking = True
            self._hold_text_turns()
        elif kind == "barge_in":
            self._on_barge_in(value)
        elif kind == "utterance":
            self.caller_speaking = False
            self.quiet_since = time.monotonic()
            await self._answering(self._on_utterance(value))
        elif kind == "partial":
            self.record.add("partial", text=value)
        elif kind == "recognizer_failed":
            await self._on_recognizer_failed(value)
        elif kind == "dtmf":
            self._hold_text_turns()
            await self._answering(self._on_dtmf(value))
        elif kind == "transfer_status":
            await self._on_transfer_status(*value)
        elif kind == "hangup":
            by = "caller" if self.record.state == "talking" else "bot"
            self.record.add("hangup", by=by, **(self._cut_off() if by == "caller" else {}))
            self.ended = True

    def _hold_text_turns(self) -> None:
        """From the caller's first word (or key) to the first word of the answer, text turns
        wait: this turn's recognition, dialogue and synthesis get the cores."""
        if self.queued is None and not self.transferring:
            self.line.dialogue.calls_first.hold(self.call_id)

    async def _answering(self, turn) -> None:
        """Handle the turn; when nothing new is to be said to it, text turns may go on at once."""
        speaking = self.speaking
        await turn
        if self.speaking is speaking:
            self.line.dialogue.calls_first.release(self.call_id)

    def _media_ready(self, port) -> None:
        self.port = port
        self.record.state = "talking"
        settings = self.line.inst.settings
        lang = self.tenant.language
        make_recognizer = None
        if self.line.asr.has(lang):
            engine = self.line.asr.engine(lang)
            phrases = settings.asr.models[lang].phrases if lang in settings.asr.models else []
            if engine.name != "vosk":  # a Vosk phrase list is a grammar: only what is configured
                phrases = phrases or self.tenant.office_names
            make_recognizer = lambda: engine.recognizer(phrases)  # noqa: E731
        vad = VadSettings(hangover_ms=settings.audio.hangover_ms, min_speech_ms=settings.audio.min_speech_ms)
        self.listener = Listener(port.heard, self._emit_from_listener, vad, make_recognizer,
                                 int(settings.audio.max_utterance_s * 1000), name=f"listen-{self.call_id[:8]}",
                                 decoder=self.line.decoder, make_detector=self.line.make_detector,
                                 barge_in_ms=settings.audio.barge_in_ms).start()
        self.record.add("answered")
        self._speak([self.tenant.greeting], "greeting")

    def _on_barge_in(self, at: float) -> None:
        """The caller has spoken over the bot long enough (audio.barge_in_ms): it stops."""
        if self.queued is not None:  # hold music and announcements go on
            return
        if self.port.playing or (self.speaking and not self.speaking.done()):
            cut_off = self._cut_off()
            if self.speaking:
                self.speaking.cancel()
            dropped = self.port.stop_playback()
            self.record.add("barge_in", stop_ms=ms(time.monotonic() - at), dropped_ms=dropped * 20, **cut_off)

    def _cut_off(self) -> dict:
        """What the caller cuts short by hanging up or speaking now: {"during": purpose} while the
        bot has not said all of a reply's own words yet. A closing question ("Anything else?") is
        not one of them: a caller who hangs up on it, or answers it early, has had the answer."""
        if self.port is None or not (self.port.playing or (self.speaking and not self.speaking.done())):
            return {}
        if self.said_at_frame is not None and self.port.frames_sent >= self.said_at_frame:
            return {}
        return {"during": self.saying}

    async def _on_utterance(self, utterance: Utterance) -> None:
        timing = {"end_of_speech_ms": ms(utterance.detected_at - utterance.ended_at),
                  "asr_ms": ms(utterance.recognised_at - utterance.detected_at),
                  "speech_ms": utterance.speech_ms, "asr_busy_ms": utterance.asr_busy_ms}
        if self.queued is not None:
            self.record.add("heard", text=utterance.text, **timing)
            await self.queued.utterance(utterance.text)
            return
        if not self.line.asr.has(self.tenant.language):
            self.record.add("heard", text=None, **timing)
            self._speak([self.phrases.say("keypad_only"), self.phrases.keypad_menu(self.tenant.keypad_menu)], "keypad")
            return
        self.record.add("heard", text=utterance.text, confidence=round(utterance.confidence, 3), **timing)
        if not utterance.text:  # a noise the recogniser found no words in: not a turn
            return
        self.silences = 0
        await self._reply_to(utterance.text, None, utterance.ended_at)

    async def _on_dtmf(self, digit: str) -> None:
        self.record.add("dtmf", digit=digit)
        menu = self.tenant.keypad_menu
        if digit == "0":
            intent = "request_agent"
        elif digit.isdigit() and 1 <= int(digit) <= len(menu):
            intent = menu[int(digit) - 1]
        else:
            self._speak([self.phrases.keypad_menu(menu)], "keypad")
            return
        self._interrupt()
        self.silences = 0
        await self._reply_to("", intent, time.monotonic())

    def _interrupt(self) -> None:
        if self.speaking:
            self.speaking.cancel()
        if self.port is not None:
            self.port.stop_playback()

    async def _on_recognizer_failed(self, why: str) -> None:
        """The caller is told, and handed to a person, rather than talking to a deaf line."""
        self.record.add("error", where="recognizer", detail=why[:200])
        if self.transferring or self.queued is not None:
            return
        self._interrupt()
        reply = self.line.dialogue.technical_fault(self.tenant, "", f"call {self.call_id}: speech recognition failed: {why}")
        self.record.add("bot", **reply.as_event())
        await self._act_on(reply, time.monotonic())

    async def _reply_to(self, text: str, intent: Optional[str], heard_at: float) -> None:
        if self.transferring or self.queued is not None:
            return
        started = time.monotonic()
        own_queue = self.tenant.handoff.via == "queue"
        refusal = self.line.queues.refusal(self.tenant.handoff.queue) if own_queue else None
        reply: BotReply = await self.line.dialogue.handle(self.tenant, self.call_id, text, self.caller, intent,
                                                          queue_refusal=refusal)
        self.last_intent = reply.intent or self.last_intent
        self.record.add("bot", **reply.as_event(), dialogue_ms=ms(time.monotonic() - started))
        await self._act_on(reply, heard_at)

    async def _act_on(self, reply: BotReply, heard_at: float) -> None:
        """Say the reply, then hand off, transfer or hang up as it decides."""
        own_queue = self.tenant.handoff.via == "queue"
        self._speak(reply.texts, "answer", heard_at)
        if reply.handoff and own_queue:
            self.handoff_at = time.monotonic()
            self._queue(reply.handoff)
        elif reply.handoff:
            await self._finish_speaking()
            await self._transfer(reply.handoff)
        elif reply.hangup:
            await self._finish_speaking()
            self._hang_up()

    async def _on_silence(self) -> None:
        self.silences += 1
        self.record.add("silence", count=self.silences)
        if self.silences == 1:
            self._speak([self.phrases.say("still_there")], "reprompt")
        elif self.silences == 2:
            self._speak([self.phrases.keypad_menu(self.tenant.keypad_menu)], "keypad")
        else:
            self._speak([self.phrases.say("silence_goodbye")], "goodbye")
            await self._finish_speaking()
            self._hang_up()

    # -- speech out
    def _speak(self, texts: List[str], purpose: str, heard_at: Optional[float] = None) -> None:
        previous = self.speaking
        self.speaking = asyncio.ensure_future(self._play(texts, purpose, heard_at, previous))
        self.quiet_since = time.monotonic()

    async def _play(self, texts, purpose, heard_at, previous) -> None:
        if previous and not previous.done():
            await asyncio.wait([previous])
        loop = asyncio.get_running_loop()
        first = True
        sentences = _sentences(texts)
        own_words = len(sentences) - len(_sentences(texts[-1:])) if _closing_question(texts) else len(sentences)
        self.saying, self.said_at_frame = purpose, None
        for number, sentence in enumerate(sentences, 1):
            speech, _ = await loop.run_in_executor(None, self.line.prompts.speech, self.synthesizer, sentence, RATE)
            self.port.play(speech.pcm)
            if number == own_words:
                self.said_at_frame = self.port.sent_when_drained
            if first:
                self.line.dialogue.calls_first.release(self.call_id)
                self.record.add("playing", purpose=purpose, text=" ".join(texts),
                                **({"turn_ms": ms(time.monotonic() - heard_at)} if heard_at else {}))
                first = False

    async def _finish_speaking(self) -> None:
        if self.speaking:
            try:
                await self.speaking
            except asyncio.CancelledError:
                pass
        while self.port.playing and not self.ended:
            await asyncio.sleep(0.05)

    def stop_listening(self) -> None:
        """Connected to an agent: the bot has nothing more to hear."""
        if self.listener:
            self.listener.stop()
            self.listener = None

    # -- the bot's own queue, transfer and hang-up
    def _queue(self, handoff: dict) -> None:
        """Wait for an agent (hold music, announcements, callback on 1), then talk to one. A
        queue that cannot take the caller now (no one logged in, full: the dialogue offers a
        callback then, except for a technical fault) gets an honest word and the conversation goes on."""
        refusal = self.line.queues.refusal(handoff["queue"])
        if refusal:
            self.record.add("queue_refused", queue=handoff["queue"], reason=refusal)
            self._speak([self.phrases.say("agents_busy" if refusal == "no_agents" else "queue_full"),
                         self.phrases.say("transfer_failed")], "transfer_failed")
            return
        headers = context_headers(self.tenant, handoff, self.call_id, self.last_intent)
        self.queued = QueuedCaller(self, handoff, headers)
        self.queue_task = asyncio.ensure_future(self._wait_in_queue())

    async def _wait_in_queue(self) -> None:
        try:
            await self.queued.run()
        except Exception:  # the caller is not left in silence: they can go on with the bot
            logger.exception("call %s: the queue failed", self.call_id)
            self.record.add("error", where="queue")
            self.queued.caller_gone()
            self.queued = None
            if not self.ended:
                self._speak([self.phrases.say("transfer_failed")], "transfer_failed")

    async def _transfer(self, handoff: dict) -> None:
        uri = self.tenant.handoff.transfer_uri
        if not uri:
            self.record.add("transfer", ok=False, reason="no transfer_uri configured")
            self._speak([self.phrases.say("transfer_failed")], "transfer_failed")
            return
        headers = context_headers(self.tenant, handoff, self.call_id, self.last_intent)
        self.transferring = True
        self.record.add("transfer", uri=uri, headers=headers)

        def refer():  # on the SIP thread, where the call may have gone meanwhile
            if self.call is None:
                return
            self.call.xfer(refer_target(uri, headers), with_headers(headers))
        try:
            await self.line.sip(refer)
        except pj.Error as error:
            await self._on_transfer_status(500, True, error.info())
            return
        self.transfer_deadline = self.line.loop.call_later(
            TRANSFER_TIMEOUT_S, self.event, "transfer_status", (408, True))

    async def _on_transfer_status(self, code: int, final: bool, detail: str = "") -> None:
        if not self.transferring or not final:
            return
        self.transferring = False
        if self.transfer_deadline:
            self.transfer_deadline.cancel()
        self.record.add("transfer_result", code=code, **({"detail": detail} if detail else {}))
        if 200 <= code < 300:
            self.record.state = "transferred"
            self._hang_up()
        else:
            self._speak([self.phrases.say("transfer_failed")], "transfer_failed")

    def _hang_up(self) -> None:
        if self.record.state != "transferred":
            self.record.state = "ending"
        self.line.hang_up(self)

    async def _close(self) -> None:
        if self.queued is not None:
            self.queued.caller_gone()
        if self.listener:
            self.listener.stop()
        if self.speaking:
            self.speaking.cancel()
        if self.transfer_deadline:
            self.transfer_deadline.cancel()
        if self.record.state not in ("transferred",):
            self.record.state = "ended"
        self.record.forget_caller()  # not kept whole in memory past the call
        self.line.dialogue.calls_first.release(self.call_id)
        self.line.dialogue.forget(self.tenant, self.call_id)
        await self.line.sip(self.line.release, self)


def _sentences(texts: List[str]) -> List[str]:
    return [s for text in texts for s in SENTENCE_END.split(text) if s.strip()]


def _closing_question(texts: List[str]) -> bool:
    """Whether a reply ends asking a question of its own ("Anything else?", "Shall we call you back?")."""
    return len(texts) > 1 and texts[-1].rstrip().endswith("?")
