"""The call layer on its own (voicebot.call), in milliseconds: the product's session, speaker,
state, queue wait, dialogue runtime, queue and store, between fakes of the audio, SIP, listener,
voice and Rasa edges (voicebot/testing/call_edges.py), with timings scaled down. The real edges
are proven by the phone tests (test_phone_line, test_agent_queue, test_phone_faults)."""

import asyncio
import time

import pytest

from voicebot.audio.turn_end import Verdict
from voicebot.call.events import AgentAlerting, AgentAnswered, AgentHungUp, AgentMedia, KeyPressed, MediaReady, TransferStatus
from voicebot.call.services import CallServices
from voicebot.call.session import CallSession
from voicebot.call.speaker import Speaker
from voicebot.call.state import CallState, CallStatus
from voicebot.config import load_installation
from voicebot.config.settings import Agent
from voicebot.dialogue import payloads
from voicebot.dialogue.runtime import Dialogue
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.queue.factory import queue_service
from voicebot.store import RecordStore
from voicebot.testing.call_edges import WORD_MS, FakePhone, FakePort, FakeVoice, ScriptedEar, ScriptedRasa

KOMMUNE, CITY = "demo-kommune", "demo-city"
QUEUE = "demo-kommune-borgerservice"
HOURS = "Borgerservice har åbent i dag fra 10 til 17."


@pytest.fixture(scope="module")
def installation():
    return load_installation()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    store = RecordStore(f"sqlite:///{root / 'calls.sqlite3'}", root)
    yield store
    store.close()


def scaled(settings, agent: bool):
    """The demo's settings with seconds made milliseconds, and a fixed-address agent on QUEUE."""
    audio = settings.audio.copy(update={"silence_timeout_s": 0.15})
    queues = {queue_id: queue.copy(update={"announce_every_s": 0.25, "ring_timeout_s": 0.3, "wrap_up_s": 0})
              for queue_id, queue in settings.queues.items()}
    agents = {"desk": Agent(name="Desk", uri="sip:desk@127.0.0.1:5999", queues=[QUEUE])} if agent else {}
    return settings.copy(update={"audio": audio, "queues": queues, "agents": agents})


class Call:
    """One call's world: the product's session between the fakes."""

    def __init__(self, inst, store, line: str, replies: dict, phone: FakePhone = None, agent: bool = True,
                 tick_s: float = 0.001):
        self.tenant = inst.tenant(line)
        self.settings = scaled(inst.settings, agent)
        self.phrases = phrasebook(self.tenant.language)
        self.rasa, self.ear, self.voice = ScriptedRasa(replies), ScriptedEar(), FakeVoice()
        self.phone = phone or FakePhone()
        self.inst, self.store = inst, store
        self.ports, self.tick_s = [], tick_s

    async def __aenter__(self) -> "Call":
        self.queues = queue_service(self.settings)
        self.queues.start()
        dialogue = Dialogue(self.inst, "http://127.0.0.1:9", languages=[self.tenant.language])
        dialogue.agents[self.tenant.language] = self.rasa
        services = CallServices(self.settings, dialogue, self.queues, self.store, self.ear, lambda tenant: self.voice)
        self.session = self.phone.session = CallSession(services, self.phone, self.tenant, f"call-{time.monotonic_ns()}",
                                                        "+4512345678")
        self.session.start()
        self.port = self.new_port()
        self.session.event(MediaReady(self.port))
        await self.until(lambda: self.events("playing"))
        return self

    async def __aexit__(self, *exc) -> None:
        if not self.session.ended:
            self.session.hang_up()
        await asyncio.wait_for(self.phone.released.wait(), 2)
        self.queues.stop()
        for port in self.ports:
            port.close()

    def new_port(self) -> FakePort:
        self.ports.append(FakePort(self.tick_s))
        return self.ports[-1]

    def said(self, text: str) -> bool:
        """Whether the bot said text (the voice renders it sentence by sentence)."""
        return text in " ".join(self.voice.said)

    def events(self, kind: str) -> list:
        return [e for e in self.session.record.events if e["event"] == kind]

    @staticmethod
    async def until(condition, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.005)


def run(scenario):
    asyncio.run(asyncio.wait_for(scenario(), 20))


def answer(*texts) -> list:
    return [{"text": text} for text in texts]


def handoff(call_text: str, queue: str, reason: str = "requested") -> list:
    return [{"text": "Et øjeblik."}, {"custom": payloads.handoff(reason, queue, ["opening_hours"], call_text)}]


def test_a_call_is_greeted_and_answered_and_its_state_follows_it(installation, store):
    async def scenario():
        async with Call(installation, store, KOMMUNE, {"hvornår har i åbent": answer(HOURS, "Andet?")}) as call:
            assert call.session.state == CallState.TALKING and call.session.record.state == "talking"
            call.ear.speak("hvornår har i åbent")
            await call.until(lambda: call.said(HOURS))
            bot = call.events("bot")[0]
            assert bot["intent"] == "hvornår har i åbent" and bot["texts"] == [HOURS, "Andet?"]
            assert call.events("playing")[-1]["purpose"] == "answer" and "turn_ms" in call.events("playing")[-1]
            await call.until(lambda: not call.port.playing)
        assert call.session.state == CallState.ENDED and call.phone.hung_up
        assert call.ear.stopped and call.rasa.forgotten == [call.session.call_id]
        assert [(e["by"], e.get("during")) for e in call.events("hangup")] == [("bot", None)]
    run(scenario)


def test_a_caller_speaking_over_the_bot_stops_it_at_once(installation, store):
    long_answer = " ".join(["Pas bestilles hos Borgerservice."] * 8)
    async def scenario():
        async with Call(installation, store, KOMMUNE, {"pas": answer(long_answer), "tak": answer("Selv tak.")}) as call:
            call.ear.speak("pas")  # over the greeting
            await call.until(lambda: call.events("playing")[-1]["purpose"] == "answer")
            call.ear.speak("tak")
            await call.until(lambda: len(call.events("barge_in")) == 2)
            assert [e["during"] for e in call.events("barge_in")] == ["greeting", "answer"]
            assert call.events("barge_in")[1]["dropped_ms"] > 0
            await call.until(lambda: call.said("Selv tak."))
            assert call.voice.said.count("Pas bestilles hos Borgerservice.") < 8  # the rest was never rendered
    run(scenario)


def test_silence_gets_a_reprompt_then_the_keypad_menu_then_an_honest_goodbye(installation, store):
    async def scenario():
        async with Call(installation, store, KOMMUNE, {}) as call:
            await call.until(lambda: call.session.ended)
            purposes = [e["purpose"] for e in call.events("playing")]
            assert purposes == ["greeting", "reprompt", "keypad", "goodbye"], purposes
            assert [e["count"] for e in call.events("silence")] == [1, 2, 3]
            assert call.said(call.phrases.say("silence_goodbye")) and call.phone.hung_up
            assert call.events("hangup")[0]["by"] == "bot"
    run(scenario)


def test_a_queued_caller_hears_announcements_and_music_until_an_agent_takes_the_call(installation, store):
    async def scenario():
        async with Call(installation, store, KOMMUNE, {"/request_agent": handoff("/request_agent", QUEUE)}) as call:
            call.session.event(KeyPressed("0"))
            await call.until(lambda: call.phone.agent_calls)  # the desk rings at once
            uri, headers = call.phone.agent_calls[0]
            assert uri == "sip:desk@127.0.0.1:5999" and headers["X-Voicebot-Conversation"] == call.session.call_id
            assert call.phone.shown_as.display == f"{call.tenant.name}: +4512345678"  # who the agent's phone shows
            assert call.session.state == CallState.QUEUED and call.session.record.state == "queued"
            await call.until(lambda: call.events("agent_missed"))  # no answer: the desk is paused
            await call.until(lambda: len(call.events("queue_position")) >= 2)
            assert call.said(call.phrases.say("queue_position", position=1))
            music_at = call.port.played_bytes
            await call.until(lambda: call.port.played_bytes > music_at + 32000)  # a second of hold music
            call.queues.set_presence("desk", "available")
            await call.until(lambda: len(call.phone.agent_calls) == 2)
            for event in (AgentAlerting("leg-2"), AgentAnswered("leg-2"), AgentMedia("leg-2", call.new_port())):
                call.session.event(event)
            await call.until(lambda: call.events("bridged"))
            assert call.session.state == CallState.WITH_AGENT and call.phone.bridged == ["leg-2"]
            assert call.events("agent_whisper") and call.ear.stopped  # the bot no longer listens
            call.session.event(AgentHungUp("leg-2", 200))
            await call.until(lambda: call.session.ended)
            assert call.events("agent_hung_up") and call.phone.hung_up
    run(scenario)


def test_an_agent_who_hangs_up_before_the_bridge_puts_the_caller_back_in_the_queue(installation, store):
    async def scenario():
        async with Call(installation, store, KOMMUNE, {"/request_agent": handoff("/request_agent", QUEUE)}) as call:
            call.session.event(KeyPressed("0"))
            await call.until(lambda: call.phone.agent_calls)
            call.session.event(AgentAnswered("leg-1"))
            await call.until(lambda: call.session.state == CallState.WITH_AGENT)
            call.session.event(AgentHungUp("leg-1", 200))
            await call.until(lambda: call.events("agent_lost"))
            await call.until(lambda: call.said(call.phrases.say("queue_agent_lost")))
            assert call.session.state == CallState.QUEUED and not call.phone.bridged
    run(scenario)


def test_the_apology_for_a_lost_agent_is_heard_to_its_end(installation, store):
    """The agent answers and hangs up while the announcements wait for their next turn: the
    caller hears the apology whole, not cut off by the position from the loop before."""
    async def scenario():
        async with Call(installation, store, KOMMUNE, {"/request_agent": handoff("/request_agent", QUEUE)},
                        tick_s=0.005) as call:  # speech at 4x real time: the apology lasts most of a second
            call.session.event(KeyPressed("0"))
            await call.until(lambda: call.events("agent_missed"))  # no answer: the desk is paused
            await call.until(lambda: call.events("queue_position"))  # the announcements' loop now sleeps
            call.queues.set_presence("desk", "available")
            await call.until(lambda: len(call.phone.agent_calls) == 2)
            call.session.event(AgentAnswered("leg-2"))
            await call.until(lambda: call.session.state == CallState.WITH_AGENT)
            call.session.event(AgentHungUp("leg-2", 200))
            await call.until(lambda: call.events("agent_lost"))
            apology = call.phrases.say("queue_agent_lost")
            lost_at = call.events("agent_lost")[0]["t"]
            positions = lambda: [e for e in call.events("queue_position") if e["t"] > lost_at]
            await call.until(lambda: len(positions()) >= 2)
            playing = [e for e in call.events("playing") if e["t"] >= lost_at]
            assert [e["purpose"] for e in playing[:2]] == ["queue_agent_lost", "queue_position"], playing
            lasts_s = len(apology.split()) * WORD_MS / 1000 / 4
            assert playing[1]["t"] - playing[0]["t"] >= 0.9 * lasts_s, playing
            # one announcements' loop, not the old one beside a new one
            assert positions()[1]["t"] - positions()[0]["t"] >= call.settings.queues[QUEUE].announce_every_s
    run(scenario)


def test_a_caller_in_the_queue_can_ask_for_a_callback_on_the_keypad(installation, store):
    async def scenario():
        phone = FakePhone(unreachable=True)  # the desk cannot be called: the caller waits
        async with Call(installation, store, KOMMUNE, {"/request_agent": handoff("/request_agent", QUEUE)},
                        phone=phone) as call:
            call.session.event(KeyPressed("0"))
            await call.until(lambda: call.events("queue_entered"))
            await call.until(lambda: any(e["why"].startswith("unreachable") for e in call.events("agent_missed")))
            call.session.event(KeyPressed("1"))
            await call.until(lambda: call.events("callback_offered"))
            call.session.event(KeyPressed("1"))  # the caller's own number, confirmed
            await call.until(lambda: call.session.ended)
            assert call.events("callback_requested")[0]["number_ending"] == "5678"
            assert call.said(call.phrases.say("callback_recorded", last_digits="5 6 7 8",
                                              promise=call.tenant.callback_promise))
    run(scenario)


@pytest.mark.parametrize("refused", ["REFER refused", None])
def test_a_transfer_that_fails_keeps_the_caller_with_the_bot(installation, store, refused):
    async def scenario():
        phone = FakePhone(refuse_refer=refused)
        replies = {"/request_agent": handoff("/request_agent", "demo-city-contact-centre"),
                   "opening hours": answer("We are open from 9 to 5.")}
        async with Call(installation, store, CITY, replies, phone=phone, agent=False) as call:
            call.session.event(KeyPressed("0"))
            await call.until(lambda: call.events("transfer"))
            if not refused:  # the REFER went out; the transfer target is busy
                assert call.session.state == CallState.TRANSFERRING
                assert phone.refers[0][0] == call.tenant.handoff.transfer_uri
                call.session.event(TransferStatus(486, True))
            await call.until(lambda: call.events("transfer_result"))
            assert call.events("transfer_result")[0]["code"] == (500 if refused else 486)
            await call.until(lambda: call.said(call.phrases.say("transfer_failed")))
            assert call.session.state == CallState.TALKING and not phone.hung_up
            call.ear.speak("opening hours")  # and the conversation goes on
            await call.until(lambda: call.said("We are open from 9 to 5."))
    run(scenario)


def test_a_transfer_that_succeeds_ends_the_call_as_transferred(installation, store):
    async def scenario():
        replies = {"/request_agent": handoff("/request_agent", "demo-city-contact-centre")}
        async with Call(installation, store, CITY, replies, agent=False) as call:
            call.session.event(KeyPressed("0"))
            await call.until(lambda: call.session.state == CallState.TRANSFERRING)
            call.session.event(TransferStatus(200, True))
            await call.until(lambda: call.session.ended)
            assert call.phone.hung_up and call.events("hangup")[0]["by"] == "bot"
        assert call.session.state == CallState.TRANSFERRED and call.session.record.state == "transferred"
    run(scenario)


def test_a_caller_hanging_up_during_the_answer_is_recorded_as_cut_off(installation, store):
    async def scenario():
        long_answer = " ".join(["Det kan du gøre på borger.dk."] * 6)
        async with Call(installation, store, KOMMUNE, {"flytning": answer(long_answer)}) as call:
            call.ear.speak("flytning")
            await call.until(lambda: call.events("playing")[-1]["purpose"] == "answer")
            call.phone.hang_up()  # as the caller's BYE would
            await call.until(lambda: call.session.ended)
            hangup = call.events("hangup")[0]
            assert hangup["by"] == "caller" and hangup["during"] == "answer"
    run(scenario)


def test_a_line_without_a_recogniser_offers_the_keypad(installation, store):
    async def scenario():
        async with Call(installation, store, KOMMUNE, {}) as call:
            call.ear._hears = False
            call.ear.speak("hallo")
            await call.until(lambda: call.said(call.phrases.say("keypad_only")))
            assert call.events("heard")[-1]["text"] is None
    run(scenario)


def test_a_call_state_changes_only_as_its_table_allows():
    changes = []
    status = CallStatus("c1", changes.append)
    assert status.to(CallState.TALKING) and status.to(CallState.QUEUED) and status.to(CallState.WITH_AGENT)
    assert not status.to(CallState.TRANSFERRED)  # a caller with an agent is not transferred by REFER
    assert status.to(CallState.ENDING) and not status.to(CallState.TALKING) and status.to(CallState.ENDED)
    assert [(c.before.value, c.after.value) for c in changes] == [
        ("ringing", "talking"), ("talking", "queued"), ("queued", "with agent"), ("with agent", "ending"),
        ("ending", "ended")]
    transferred = CallStatus("c2")
    assert transferred.to(CallState.TALKING) and transferred.to(CallState.TRANSFERRING)
    assert transferred.to(CallState.TRANSFERRED) and not transferred.to(CallState.ENDED) and transferred.over


def test_an_interrupted_speaker_says_nothing_more_of_any_reply_it_had_queued():
    async def scenario():
        port, voice = FakePort(), FakeVoice()
        speaker = Speaker(port, voice)
        speaker.say(["One. Two. Three. Four."], "answer")
        speaker.say(["Five. Six."], "answer")  # waits for the first
        await Call.until(lambda: voice.said)
        speaker.interrupt()
        said = list(voice.said)
        await asyncio.sleep(0.05)
        assert voice.said == said and len(said) < 4 and "Five." not in said
        assert not port.playing and not speaker.busy
        port.close()
    run(scenario)


def test_the_call_judges_the_words_at_a_pause_with_its_lines_nlu(installation, store):
    """The session gives its listener a judge (voicebot.call.turn_judge): sure of a request, it
    ends the turn sooner; a last word like "to" or a "no" (a correction may follow) does not."""
    async def scenario():
        replies = {"opening hours please": answer("We are open."), "deny": answer("Fine.")}
        async with Call(installation, store, CITY, replies) as call:
            verdicts = [await asyncio.wrap_future(call.ear.judge(text)) for text in
                        ("opening hours please", "I would like to", "deny", "something else")]
            assert verdicts == [Verdict.COMPLETE, Verdict.UNFINISHED, Verdict.UNSURE, Verdict.UNSURE]
            # Without the NLU (words heard after the hangover), only the last word counts.
            assert call.ear.judge("opening hours please", False).result() == Verdict.UNSURE
            assert call.ear.judge("I would like to", False).result() == Verdict.UNFINISHED
            call.ear.speak("opening hours please", turn_end="complete")
            await call.until(lambda: call.said("We are open."))
            assert call.events("heard")[-1]["turn_end"] == "complete"
    run(scenario)


SATURDAY = "Borgerservice har lukket på lørdag."


def test_a_routine_question_answered_before_its_turn_ended_stands_when_the_caller_said_no_more(installation, store):
    async def scenario():
        async with Call(installation, store, KOMMUNE, {"hvornår har i åbent": answer(HOURS, "Andet?")}) as call:
            call.ear.pause("hvornår har i åbent")
            await call.until(lambda: call.said(HOURS))  # before the turn has ended
            assert [e["turn_end"] for e in call.events("heard")] == ["early"]
            call.ear.end("hvornår har i åbent")
            await call.until(lambda: call.said("Andet?") and not call.port.playing)
            assert call.rasa.conversations[call.session.call_id] == ["hvornår har i åbent"]
            assert len(call.events("bot")) == 1 and not call.events("taken_back")
            assert call.voice.said.count(HOURS) == 1 and len(call.events("barge_in")) == 1  # the greeting's
            assert call.events("playing")[-1]["purpose"] == "answer" and "turn_ms" in call.events("playing")[-1]
    run(scenario)


def test_a_caller_who_goes_on_stops_the_early_answer_and_it_is_taken_back(installation, store):
    long_hours = " ".join([HOURS] * 6)
    replies = {"hvornår har i åbent": answer(long_hours, "Andet?"), "hvornår har i åbent på lørdag": answer(SATURDAY)}
    async def scenario():
        async with Call(installation, store, KOMMUNE, replies) as call:
            call.ear.pause("hvornår har i åbent")
            await call.until(lambda: call.said(HOURS))
            call.ear.go_on()
            await call.until(lambda: not call.port.playing)  # stopped at once, not at the turn's end
            assert call.voice.said.count(HOURS) < 6 and not call.said("Andet?")
            call.ear.end("hvornår har i åbent på lørdag")
            await call.until(lambda: call.said(SATURDAY))
            assert call.rasa.conversations[call.session.call_id] == ["hvornår har i åbent på lørdag"]
            assert [(e["text"], e["went_on"]) for e in call.events("taken_back")] == [("hvornår har i åbent", True)]
            assert [e["turn_end"] for e in call.events("heard")] == ["early", "complete"]
            assert [e["texts"] for e in call.events("bot")] == [[long_hours, "Andet?"], [SATURDAY]]
    run(scenario)


def test_final_words_that_differ_from_the_early_ones_but_ask_the_same_keep_the_early_answer(installation, store):
    """A streaming recogniser's last word may change at the end of the turn (Vosk: 주세요, 계세요):
    the same request, understood alike, keeps the answer playing."""
    async def scenario():
        async with Call(installation, store, KOMMUNE, {"hvornår har i åbent": answer(HOURS)}) as call:
            call.rasa.intents["hvornår har I åbent"] = "hvornår har i åbent"
            call.ear.pause("hvornår har i åbent")
            await call.until(lambda: call.said(HOURS))
            call.ear.end("hvornår har I åbent")
            await call.until(lambda: not call.port.playing)
            assert call.rasa.conversations[call.session.call_id] == ["hvornår har i åbent"]
            assert not call.events("taken_back") and call.voice.said.count(HOURS) == 1
    run(scenario)


def test_a_caller_who_only_made_a_sound_hears_the_answer_anew_from_its_start(installation, store):
    """The answer was stopped (the caller heard part of it over their own voice): the turn is
    answered anew, its record that of a whole turn, the early one taken back."""
    async def scenario():
        async with Call(installation, store, KOMMUNE, {"hvornår har i åbent": answer(HOURS)}) as call:
            call.ear.pause("hvornår har i åbent")
            await call.until(lambda: call.said(HOURS))
            call.ear.go_on()
            call.ear.end("hvornår har i åbent")
            await call.until(lambda: call.voice.said.count(HOURS) == 2)
            assert call.rasa.conversations[call.session.call_id] == ["hvornår har i åbent"]
            [taken_back] = call.events("taken_back")
            assert taken_back["went_on"] and taken_back["stopped_after_ms"] >= 0
            assert [e["turn_end"] for e in call.events("heard")] == ["early", "complete"]
    run(scenario)


def test_an_early_answer_that_would_hand_off_waits_for_the_turn_s_end(installation, store):
    """Handing off (or hanging up, or taking a callback) is not done on words the caller may go
    on with: the dialogue's turn is taken back, and the whole turn answered as usual."""
    text = "hvornår har i åbent jeg vil tale med en person"
    async def scenario():
        async with Call(installation, store, KOMMUNE, {text: handoff(text, QUEUE)}) as call:
            call.ear.pause(text)
            await call.until(lambda: call.rasa.conversations.get(call.session.call_id) == [])  # sent, taken back
            assert not call.said("Et øjeblik.") and not call.events("bot")
            # The turn is not over: text turns still wait for its answer (calls first).
            calls_first = call.session.dialogue.calls_first
            assert call.session.call_id in calls_first.answering
            call.ear.end(text)
            await call.until(lambda: call.said("Et øjeblik."))
            assert call.session.call_id not in calls_first.answering
            assert call.rasa.conversations[call.session.call_id] == [text] and len(call.events("bot")) == 1
            assert call.events("bot")[0]["handoff"]["reason"] == "requested"
    run(scenario)
