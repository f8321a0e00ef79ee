"""One phone call's conversation, on the asyncio loop: listen, understand, answer, hand off.

Events arrive typed from the phone (media ready, keys, transfer status, hang-up, agent legs) and
from the call's listener thread (speech started, barge-in, utterance). The caller can always
reach a person: key 0 at any moment, by asking, after two misunderstandings; and is never left
in silence: no speech gets a reprompt, then the keypad menu, then an honest goodbye.
"""

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import List, Optional

from voicebot.call.events import (AGENT_LEG_EVENTS, Answerable, BargeIn, CallEvent, HungUp, KeyPressed, MediaReady,
                                  Partial, RecognizerFailed, SpeechStarted, TransferStatus, Utterance, WentOn)
from voicebot.call.phone import Phone, PhoneError
from voicebot.call.queue_wait import QueuedCaller
from voicebot.call.services import CallServices
from voicebot.call.speaker import Speaker
from voicebot.call.state import CallState, CallStatus, StateChanged
from voicebot.call.turn_judge import WordsJudge
from voicebot.clock import ms
from voicebot.config import Tenant
from voicebot.dialogue.runtime import BotReply, clean_utterance
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.timeline import Kind

logger = logging.getLogger(__name__)

TRANSFER_TIMEOUT_S = 30


def context_headers(tenant: Tenant, handoff: dict, call_id: str, intent: Optional[str]) -> dict:
    """What the agent should know, as SIP header values (one line, printable, bounded)."""
    def clean(value: str) -> str:
        return re.sub(r"[\x00-\x1f\x7f]", " ", str(value))[:200]
    return {"X-Voicebot-Tenant": tenant.id, "X-Voicebot-Intent": clean(intent or "none"),
            "X-Voicebot-Reason": clean(handoff.get("reason", "")),
            "X-Voicebot-Summary": clean(handoff.get("summary", "")),
            "X-Voicebot-Conversation": clean(call_id),
            **({"X-Voicebot-Municipality": clean(handoff["municipality"])} if handoff.get("municipality") else {})}


@dataclass
class EarlyAnswer:
    """A routine question answered before its turn ended (Answerable), until the turn ends."""
    words: Answerable
    reply: BotReply
    stopped_at: Optional[float] = None  # the caller went on, so its audio was stopped


class CallSession:
    def __init__(self, services: CallServices, phone: Phone, tenant: Tenant, call_id: str, caller: Optional[str]):
        self.services, self.phone, self.tenant, self.call_id, self.caller = services, phone, tenant, call_id, caller
        self.dialogue = services.dialogue
        self.phrases = phrasebook(tenant.language)
        self.voice = services.voice_for(tenant)
        self.record = services.store.record(call_id, tenant.id, tenant.language, caller)
        self.status = CallStatus(call_id, self._state_changed)
        self.events: "asyncio.Queue[CallEvent]" = asyncio.Queue()
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.speaker: Optional[Speaker] = None  # once media flows
        self.listener = None
        self.quiet_since = time.monotonic()
        self.caller_speaking = False
        self.silences = 0
        self.last_intent: Optional[str] = None
        self.transfer_deadline: Optional[asyncio.TimerHandle] = None
        self.queued: Optional[QueuedCaller] = None  # waiting in the bot's queue, or with an agent
        self.queue_task: Optional[asyncio.Future] = None  # the wait in the queue, held while it runs
        self.handoff_at = 0.0
        self.early: Optional[EarlyAnswer] = None
        self.ended = False

    @property
    def state(self) -> CallState:
        return self.status.state

    @property
    def waited_s(self) -> Optional[float]:
        """How long the caller has been waiting for an agent, while they wait."""
        if self.state != CallState.QUEUED or self.queued is None:
            return None
        return round(self.services.queues.waited_s(self.queued.waiter), 1)

    def _state_changed(self, change: StateChanged) -> None:
        self.record.state = change.after.value

    # -- from the phone (loop thread)
    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.ensure_future(self._run())

    def event(self, event: CallEvent) -> None:
        if isinstance(event, HungUp) and self.speaker:  # nothing more reaches the caller: no one waits for it
            self.speaker.close()
        self.events.put_nowait(event)

    def _from_listener(self, event: CallEvent) -> None:  # the listener's thread
        self.loop.call_soon_threadsafe(self.event, event)

    # -- the call
    async def _run(self) -> None:
        try:
            await self._converse()
        except Exception:
            logger.exception("call %s failed", self.call_id)
            self.record.add(Kind.ERROR)
            self.phone.hang_up()
        finally:
            await self._close()

    async def _converse(self) -> None:
        audio = self.services.settings.audio
        while not self.ended:
            try:
                event = await asyncio.wait_for(self.events.get(), timeout=0.1)
            except asyncio.TimeoutError:
                if self.speaker is not None and self._silent_for() > audio.silence_timeout_s:
                    await self._on_silence()
                continue
            await self._handle(event)

    def _silent_for(self) -> float:
        if (self.speaker.busy or self.caller_speaking or self.queued is not None
                or self.state == CallState.TRANSFERRING):
            self.quiet_since = time.monotonic()
        return time.monotonic() - self.quiet_since

    async def _handle(self, event: CallEvent) -> None:
        if self.queued is not None and isinstance(event, (KeyPressed, HungUp, *AGENT_LEG_EVENTS)):
            self.queued.event(event)
            if not isinstance(event, HungUp):
                return
        if self.speaker is None and not isinstance(event, (MediaReady, HungUp)):
            return  # nothing to answer with before the audio flows
        match event:
            case MediaReady(port=port):
                self._media_ready(port)
            case SpeechStarted():
                self.caller_speaking = True
                self._hold_text_turns()
            case BargeIn(at=at):
                self._on_barge_in(at)
            case Answerable():  # the turn goes on: text turns wait until its answer is heard or ended
                await self._answer_early(event)
            case WentOn():
                self._went_on()
            case Utterance():
                self.caller_speaking = False
                self.quiet_since = time.monotonic()
                await self._answering(self._on_utterance(event))
            case Partial(text=text):
                self.record.add(Kind.PARTIAL, text=text)
            case RecognizerFailed(why=why):
                await self._on_recognizer_failed(why)
            case KeyPressed(digit=digit):
                self._hold_text_turns()
                await self._answering(self._on_key(digit))
            case TransferStatus():
                self._on_transfer_status(event)
            case HungUp(received=received, sent=sent):
                by = "bot" if self.status.over else "caller"
                self.record.add(Kind.HANGUP, by=by, **(self._cut_off() if by == "caller" else {}),
                                **({"audio_in": received} if received else {}),
                                **({"audio_out": sent} if sent else {}))
                self.ended = True

    def _hold_text_turns(self) -> None:
        """From the caller's first word (or key) to the first word of the answer, text turns
        wait: this turn's recognition, dialogue and synthesis get the cores."""
        if self.state == CallState.TALKING:
            self.dialogue.calls_first.hold(self.call_id)

    async def _answering(self, turn) -> None:
        """Handle the turn; when nothing new is to be said to it, text turns may go on at once."""
        speaking = self.speaker.task if self.speaker else None
        await turn
        if (self.speaker.task if self.speaker else None) is speaking:
            self.dialogue.calls_first.release(self.call_id)

    def _media_ready(self, port) -> None:
        self.speaker = Speaker(port, self.voice, self._first_audio)
        self.status.to(CallState.TALKING)
        judge = WordsJudge(self.dialogue, self.tenant.language, self.loop, self.services.settings.audio.end_of_turn)
        self.listener = self.services.ear.listen(self.tenant, port.heard, self._from_listener,
                                                 name=f"listen-{self.call_id[:8]}", judge=judge)
        self.record.add(Kind.ANSWERED)
        self.say([self.tenant.greeting], "greeting")

    def _on_barge_in(self, at: float) -> None:
        """The caller has spoken over the bot long enough (audio.barge_in_ms): it stops."""
        if self.queued is not None:  # hold music and announcements go on
            return
        if self.speaker.busy:
            cut_off = self._cut_off()
            dropped = self.speaker.interrupt()
            self.record.add(Kind.BARGE_IN, stop_ms=ms(time.monotonic() - at), dropped_ms=dropped * 20, **cut_off)

    def _cut_off(self) -> dict:
        return self.speaker.cut_off() if self.speaker else {}

    async def _answer_early(self, words: Answerable) -> None:
        """Answer a routine question while its turn is still open. An answer that would do more
        than speak (hand off, hang up, take a callback) waits for the turn's end like any other:
        the dialogue takes this turn back, and answers again then."""
        if self.state != CallState.TALKING or self.queued is not None or self.early or words.went_on.is_set():
            return
        started = time.monotonic()
        reply = await self._dialogue(words.text, None)
        if words.went_on.is_set() or reply.ends_conversation or reply.callback or not reply.texts:
            await self.dialogue.take_back(self.tenant, self.call_id, reply)
            return
        self.early = EarlyAnswer(words, reply)
        self.silences = 0
        self.record.add(Kind.HEARD, text=words.text, end_of_speech_ms=ms(words.at - words.ended_at), asr_ms=0,
                        speech_ms=words.speech_ms, asr_busy_ms=words.asr_busy_ms, turn_end="early")
        self._replied(reply, started)
        self.say(reply.texts, "answer", words.ended_at)

    def _went_on(self) -> None:
        if self.early and self.early.stopped_at is None:
            self.early.stopped_at = time.monotonic()
            self.speaker.interrupt()

    async def _settle_early(self, utterance: Utterance) -> bool:
        """The turn of an early answer has ended: whether that answer stands (the caller did not
        go on, and the final words ask the same, or none were recognised). Else it is stopped and
        taken back, and the whole turn answered as usual (from the start: the caller heard some
        of it while they spoke)."""
        early, self.early = self.early, None
        went_on = early.stopped_at is not None
        if not went_on and (not utterance.text or
                            await self._same_request(utterance.text, early)):
            return True
        if not went_on:
            self.speaker.interrupt()
        await self.dialogue.take_back(self.tenant, self.call_id, early.reply)
        # stopped_after_ms: from the answer's decision to its stop (the caller heard less of it)
        self.record.add(Kind.TAKEN_BACK, text=early.words.text, intent=early.reply.intent, went_on=went_on,
                        **({"stopped_after_ms": ms(early.stopped_at - early.words.at)} if went_on else {}))
        return False

    async def _same_request(self, text: str, early: EarlyAnswer) -> bool:
        """Whether the turn's final words ask what the early answer answered. A streaming
        recogniser's final words may differ from its partial ones in a word (Vosk: 주세요, 계세요)
        and mean the same: the intent and entities decide."""
        if clean_utterance(text) == clean_utterance(early.words.text):
            return True
        try:
            parsed = await self.dialogue.parse(self.tenant.language, text)
        except Exception:  # the NLU is away: the turn is answered anew, and says so
            return False

        def found(entities) -> list:
            return sorted((e.get("entity"), str(e.get("value"))) for e in entities or [])
        return ((parsed.get("intent") or {}).get("name") == early.reply.intent
                and found(parsed.get("entities")) == found(early.reply.entities))

    async def _on_utterance(self, utterance: Utterance) -> None:
        if self.early and await self._settle_early(utterance):
            return
        timing = {"end_of_speech_ms": ms(utterance.detected_at - utterance.ended_at),
                  "asr_ms": ms(utterance.recognised_at - utterance.detected_at),
                  "speech_ms": utterance.speech_ms, "asr_busy_ms": utterance.asr_busy_ms,
                  "turn_end": utterance.turn_end}
        if self.queued is not None:
            self.record.add(Kind.HEARD, text=utterance.text, **timing)
            await self.queued.utterance(utterance.text)
            return
        if not self.services.ear.hears(self.tenant.language):
            self.record.add(Kind.HEARD, text=None, **timing)
            self.say([self.phrases.say("keypad_only"), self.phrases.keypad_menu(self.tenant.keypad_menu)], "keypad")
            return
        self.record.add(Kind.HEARD, text=utterance.text, confidence=round(utterance.confidence, 3), **timing)
        if not utterance.text:  # a noise the recogniser found no words in: not a turn
            return
        self.silences = 0
        await self._reply_to(utterance.text, None, utterance.ended_at)

    async def _on_key(self, digit: str) -> None:
        self.record.add(Kind.DTMF, digit=digit)
        menu = self.tenant.keypad_menu
        if digit == "0":
            intent = "request_agent"
        elif digit.isdigit() and 1 <= int(digit) <= len(menu):
            intent = menu[int(digit) - 1]
        else:
            self.say([self.phrases.keypad_menu(menu)], "keypad")
            return
        self._interrupt()
        self.early = None  # keys overrule it; the turn stays in the conversation
        self.silences = 0
        await self._reply_to("", intent, time.monotonic())

    def _interrupt(self) -> None:
        if self.speaker:
            self.speaker.interrupt()

    async def _on_recognizer_failed(self, why: str) -> None:
        """The caller is told, and handed to a person, rather than talking to a deaf line."""
        self.record.add(Kind.ERROR, where="recognizer", detail=why[:200])
        if self.state != CallState.TALKING:
            return
        self._interrupt()
        reply = self.dialogue.technical_fault(self.tenant, "", f"call {self.call_id}: speech recognition failed: {why}")
        self.record.add(Kind.BOT, **reply.as_event())
        await self._act_on(reply, time.monotonic())

    async def _reply_to(self, text: str, intent: Optional[str], heard_at: float) -> None:
        if self.state != CallState.TALKING:
            return
        started = time.monotonic()
        reply = await self._dialogue(text, intent)
        self._replied(reply, started)
        await self._act_on(reply, heard_at)

    async def _dialogue(self, text: str, intent: Optional[str]) -> BotReply:
        own_queue = self.tenant.handoff.via == "queue"
        refusal = self.services.queues.refusal(self.tenant.handoff.queue) if own_queue else None
        return await self.dialogue.handle(self.tenant, self.call_id, text, self.caller, intent, queue_refusal=refusal)

    def _replied(self, reply: BotReply, started: float) -> None:
        self.last_intent = reply.intent or self.last_intent
        self.record.add(Kind.BOT, **reply.as_event(), dialogue_ms=ms(time.monotonic() - started))

    async def _act_on(self, reply: BotReply, heard_at: float) -> None:
        """Say the reply, then hand off, transfer or hang up as it decides."""
        own_queue = self.tenant.handoff.via == "queue"
        self.say(reply.texts, "answer", heard_at)
        if reply.handoff and own_queue:
            self.handoff_at = time.monotonic()
            self._queue(reply.handoff)
        elif reply.handoff:
            await self.played_out()
            await self._transfer(reply.handoff)
        elif reply.hangup:
            await self.played_out()
            self.hang_up()

    async def _on_silence(self) -> None:
        self.silences += 1
        self.record.add(Kind.SILENCE, count=self.silences)
        if self.silences == 1:
            self.say([self.phrases.say("still_there")], "reprompt")
        elif self.silences == 2:
            self.say([self.phrases.keypad_menu(self.tenant.keypad_menu)], "keypad")
        else:
            self.say([self.phrases.say("silence_goodbye")], "goodbye")
            await self.played_out()
            self.hang_up()

    # -- speech out (the queue wait speaks through these too)
    def say(self, texts: List[str], purpose: str, heard_at: Optional[float] = None) -> None:
        self.speaker.say(texts, purpose, heard_at)
        self.quiet_since = time.monotonic()

    def _first_audio(self, purpose: str, texts: List[str], heard_at: Optional[float]) -> None:
        self.dialogue.calls_first.release(self.call_id)
        self.record.add(Kind.PLAYING, purpose=purpose, text=" ".join(texts),
                        **({"turn_ms": ms(time.monotonic() - heard_at)} if heard_at else {}))

    async def played_out(self) -> None:
        """Until the caller has heard everything said so far (or the call is over)."""
        if self.speaker and not self.ended:
            await self.speaker.played_out()

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
        refusal = self.services.queues.refusal(handoff["queue"])
        if refusal:
            self.record.add(Kind.QUEUE_REFUSED, queue=handoff["queue"], reason=refusal)
            self.say([self.phrases.say("agents_busy" if refusal == "no_agents" else "queue_full"),
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
            self.record.add(Kind.ERROR, where="queue")
            self.queued.caller_gone()
            self.queued = None
            if not self.ended:
                self.status.to(CallState.TALKING)
                self.say([self.phrases.say("transfer_failed")], "transfer_failed")

    async def _transfer(self, handoff: dict) -> None:
        uri = self.tenant.handoff.transfer_uri
        if not uri:
            self.record.add(Kind.TRANSFER, ok=False, reason="no transfer_uri configured")
            self.say([self.phrases.say("transfer_failed")], "transfer_failed")
            return
        headers = context_headers(self.tenant, handoff, self.call_id, self.last_intent)
        if not self.status.to(CallState.TRANSFERRING):  # the caller hung up meanwhile
            return
        self.record.add(Kind.TRANSFER, uri=uri, headers=headers)
        try:
            await self.phone.refer(uri, headers)
        except PhoneError as error:
            self._on_transfer_status(TransferStatus(500, True, str(error)))
            return
        self.transfer_deadline = self.loop.call_later(TRANSFER_TIMEOUT_S, self.event, TransferStatus(408, True))

    def _on_transfer_status(self, status: TransferStatus) -> None:
        if self.state != CallState.TRANSFERRING or not status.final:
            return
        if self.transfer_deadline:
            self.transfer_deadline.cancel()
        self.record.add(Kind.TRANSFER_RESULT, code=status.code, **({"detail": status.detail} if status.detail else {}))
        if 200 <= status.code < 300:
            self.status.to(CallState.TRANSFERRED)
            self.hang_up()
        else:
            self.status.to(CallState.TALKING)
            self.say([self.phrases.say("transfer_failed")], "transfer_failed")

    def hang_up(self) -> None:
        if not self.status.over:
            self.status.to(CallState.ENDING)
        self.phone.hang_up()

    async def _close(self) -> None:
        if self.queued is not None:
            self.queued.caller_gone()
        if self.listener:
            self.listener.stop()
        if self.speaker:
            self.speaker.close()
        if self.transfer_deadline:
            self.transfer_deadline.cancel()
        if self.state != CallState.TRANSFERRED:
            self.status.to(CallState.ENDED)
        self.record.forget_caller()  # not kept whole in memory past the call
        self.dialogue.calls_first.release(self.call_id)
        self.dialogue.forget(self.tenant, self.call_id)
        await self.phone.release()
