"""The end of a caller's turn judged by their words (voicebot/audio/turn_end.py) in the real
listener and speech detector, with scripted audio (tones for words, zeros for pauses) and a
scripted recogniser; the call layer's judge against the dialogue; the real edges in the phone
tests (test_phone_line.py, test_speech_in.py)."""

import concurrent.futures
import queue
import time
from typing import Dict, List, Optional

import numpy as np
import pytest

from voicebot.audio.asr import Transcript
from voicebot.audio.format import FRAME_BYTES, FRAME_MS, RATE
from voicebot.audio.listener import Answerable, Listener, Utterance, WentOn
from voicebot.audio.turn_end import EarlyWait, TurnEnd, TurnEndSettings, Verdict, done, ends_unfinished
from voicebot.audio.vad import VadSettings
from voicebot.knowledge.phrasebook import phrasebook

HANGOVER_MS, COMPLETE_MS, UNFINISHED_MS = 300, 140, 900
TONE = (np.sin(np.arange(FRAME_BYTES // 2) * 2 * np.pi * 220 / RATE) * 8000).astype("<i2").tobytes()
PAUSE = bytes(FRAME_BYTES)


class WordsRecognizer:
    """A streaming recogniser that 'hears' the next phrase of its script in each burst of tone."""

    def __init__(self, phrases: List[str]):
        self.phrases, self.heard, self._in_tone = iter(phrases), [], False

    def feed(self, pcm: bytes) -> str:
        tone = pcm[-FRAME_BYTES:] != PAUSE
        if tone and not self._in_tone:
            self.heard.append(next(self.phrases, ""))
        self._in_tone = tone
        return " ".join(filter(None, self.heard))

    def final(self) -> Transcript:
        text, self.heard = " ".join(filter(None, self.heard)), []
        return Transcript(text, 0.9 if text else 0.0)


def audio(*parts) -> List[bytes]:
    """("tone", ms) and ("pause", ms) as 20 ms frames."""
    return [TONE if kind == "tone" else PAUSE for kind, length in parts for _ in range(length // FRAME_MS)]


def listen(frames: List[bytes], phrases: List[str], verdicts: Optional[Dict[str, Verdict]] = None,
           listen_to_words: bool = True, answer_early_ms: int = 0, kinds: tuple = (Utterance,),
           recognizer=None) -> list:
    """The utterances (or events of `kinds`) the listener makes of `frames`, judged by
    `verdicts` (text -> verdict, else unsure) when it listens to the words."""
    asked: List[str] = []

    def judge(text: str, nlu: bool) -> "concurrent.futures.Future[Verdict]":
        asked.append(text)
        return done((verdicts or {}).get(text, Verdict.UNSURE))

    settings = (TurnEndSettings(judge, HANGOVER_MS, COMPLETE_MS, UNFINISHED_MS, answer_early_ms)
                if listen_to_words else None)
    received, emitted = queue.SimpleQueue(), []
    listener = Listener(received, emitted.append, VadSettings(hangover_ms=HANGOVER_MS),
                        lambda: (recognizer or WordsRecognizer)(phrases), turn_end=settings)
    for frame in frames:
        received.put((time.monotonic(), frame))
    listener.start()
    deadline = time.monotonic() + 10
    while not received.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # the last frames taken are handled
    listener.stop()
    return [event for event in emitted if isinstance(event, kinds)]


class SlowWordsRecognizer(WordsRecognizer):
    """2 ms a frame, 50 ms for the final words."""

    def feed(self, pcm: bytes) -> str:
        time.sleep(0.002)
        return super().feed(pcm)

    def final(self) -> Transcript:
        time.sleep(0.05)
        return super().final()


def test_a_streaming_recognisers_time_on_a_turn_counts_its_feeding_and_its_final_words():
    frames = audio(("pause", 200), ("tone", 400), ("pause", 1000))
    [utterance] = listen(frames, ["opening hours"], listen_to_words=False, recognizer=SlowWordsRecognizer)
    assert utterance.asr_busy_ms >= 50 + 2 * 15  # the tone's frames are fed one by one


def waited_ms(utterance: Utterance, before_ms: int) -> int:
    """The silence the turn waited out after its last voice, its audio having begun with
    `before_ms` of audio before that voice ended (all of it within the turn's lead-in)."""
    return utterance.speech_ms - before_ms


def test_a_complete_request_the_nlu_is_sure_of_ends_the_turn_sooner():
    frames = audio(("pause", 200), ("tone", 400), ("pause", 1000))
    judged = listen(frames, ["opening hours"], {"opening hours": Verdict.COMPLETE})
    fixed = listen(frames, ["opening hours"], listen_to_words=False)
    assert [(u.text, u.turn_end, waited_ms(u, 600)) for u in judged] == [("opening hours", "complete", COMPLETE_MS)]
    assert [(u.text, u.turn_end, waited_ms(u, 600)) for u in fixed] == [("opening hours", "silence", HANGOVER_MS)]


def test_an_unsure_verdict_or_none_keeps_the_usual_hangover():
    frames = audio(("pause", 200), ("tone", 400), ("pause", 1000))
    for verdicts in ({}, {"opening": Verdict.COMPLETE}):  # unsure; and a verdict on other words
        [utterance] = listen(frames, ["opening hours"], verdicts)
        assert (utterance.turn_end, waited_ms(utterance, 600)) == ("silence", HANGOVER_MS)


def test_a_caller_who_stops_mid_sentence_is_waited_for_not_cut_off():
    """"I would like to ... [600 ms] ... renew my passport": the fixed hangover made two turns
    of it, the first a fragment; judged by its last word, it is one."""
    frames = audio(("pause", 200), ("tone", 400), ("pause", 600), ("tone", 400), ("pause", 1200))
    phrases = ["I would like to", "renew my passport"]
    unfinished = {"I would like to": Verdict.UNFINISHED,
                  "I would like to renew my passport": Verdict.COMPLETE}
    assert [u.text for u in listen(frames, phrases, listen_to_words=False)] == phrases
    [utterance] = listen(frames, phrases, unfinished)
    assert (utterance.text, utterance.turn_end) == ("I would like to renew my passport", "complete")
    assert waited_ms(utterance, 1600) == COMPLETE_MS
    # Waiting has its limit: a caller silent for longer than unfinished_ms has finished after all.
    long_pause = audio(("pause", 200), ("tone", 400), ("pause", UNFINISHED_MS + 200), ("tone", 400), ("pause", 1200))
    first, second = listen(long_pause, phrases, unfinished)
    assert (first.text, first.turn_end, waited_ms(first, 600)) == ("I would like to", "unfinished", UNFINISHED_MS)


ANSWER_EARLY_MS = 60
EARLY_EVENTS = (Answerable, WentOn, Utterance)


def test_a_routine_question_may_be_answered_before_its_turn_ends_which_ends_as_before():
    frames = audio(("pause", 200), ("tone", 400), ("pause", 1000))
    early, utterance = listen(frames, ["opening hours"], {"opening hours": Verdict.ANSWERABLE},
                              answer_early_ms=ANSWER_EARLY_MS, kinds=EARLY_EVENTS)
    assert isinstance(early, Answerable) and early.text == "opening hours" and not early.went_on.is_set()
    assert early.ended_at == utterance.ended_at and early.speech_ms == 600 + ANSWER_EARLY_MS
    assert (utterance.text, utterance.turn_end, waited_ms(utterance, 600)) == ("opening hours", "complete", COMPLETE_MS)
    # Not early: a request that is no routine question, or a line that does not answer early.
    for verdict, answer_early_ms in ((Verdict.COMPLETE, ANSWER_EARLY_MS), (Verdict.ANSWERABLE, 0)):
        events = listen(frames, ["opening hours"], {"opening hours": verdict}, answer_early_ms=answer_early_ms,
                        kinds=EARLY_EVENTS)
        assert [(type(e), e.turn_end) for e in events] == [(Utterance, "complete")]


def test_a_caller_who_goes_on_after_an_early_answer_withdraws_it_within_the_same_turn():
    """"opening hours ... [100 ms] ... for saturday": answerable at the pause, then not; the
    turn is one, with every word, and the next pause may be answered again."""
    frames = audio(("pause", 200), ("tone", 400), ("pause", 100), ("tone", 400), ("pause", 1000))
    verdicts = {"opening hours": Verdict.ANSWERABLE, "opening hours for saturday": Verdict.ANSWERABLE}
    events = listen(frames, ["opening hours", "for saturday"], verdicts, answer_early_ms=ANSWER_EARLY_MS,
                    kinds=EARLY_EVENTS)
    assert [type(e) for e in events] == [Answerable, WentOn, Answerable, Utterance]
    assert events[0].text == "opening hours" and events[0].went_on.is_set()
    assert events[2].text == events[3].text == "opening hours for saturday" and not events[2].went_on.is_set()
    # With a pause shorter than answer_early_ms, nothing is answered before the words are whole.
    frames = audio(("pause", 200), ("tone", 400), ("pause", 40), ("tone", 400), ("pause", 1000))
    events = listen(frames, ["opening hours", "for saturday"], verdicts, answer_early_ms=ANSWER_EARLY_MS,
                    kinds=EARLY_EVENTS)
    assert [(type(e), e.text) for e in events] == [(Answerable, "opening hours for saturday"),
                                                   (Utterance, "opening hours for saturday")]


def test_a_caller_who_went_on_after_a_gap_is_answered_early_only_after_a_longer_silence_for_the_rest_of_the_call():
    """Two turns of one call: "opening hours ... [100 ms] ... for saturday", then "opening hours".
    The first taught the listener that this caller leaves 100 ms between words, so the second
    is answered early after 120 ms of silence, not 60."""
    frames = audio(("pause", 200), ("tone", 400), ("pause", 100), ("tone", 400), ("pause", 1000),
                   ("tone", 400), ("pause", 1000))
    verdicts = {text: Verdict.ANSWERABLE for text in ("opening hours", "opening hours for saturday")}
    events = listen(frames, ["opening hours", "for saturday", "opening hours"], verdicts,
                    answer_early_ms=ANSWER_EARLY_MS, kinds=EARLY_EVENTS)
    assert [type(e) for e in events] == [Answerable, WentOn, Answerable, Utterance, Answerable, Utterance]
    quiet_before = [utterance.speech_ms - early.speech_ms for early, utterance in ((events[2], events[3]),
                                                                                   (events[4], events[5]))]
    assert quiet_before == [COMPLETE_MS - 120] * 2  # silent for 120 ms when answered, the turn ending at 140


def test_the_wait_for_an_early_answer_rises_only_past_gaps_at_answerable_words_and_stays_below_the_turns_end():
    wait = EarlyWait(TurnEndSettings(done, HANGOVER_MS, COMPLETE_MS, UNFINISHED_MS, ANSWER_EARLY_MS))
    for verdict in (Verdict.UNFINISHED, Verdict.COMPLETE, Verdict.UNSURE, None):  # "I would like to ... erm"
        wait.went_on(verdict, 120)
    assert wait.ms == ANSWER_EARLY_MS and wait.answers(Verdict.ANSWERABLE, ANSWER_EARLY_MS)
    assert not wait.answers(Verdict.COMPLETE, 120)
    wait.went_on(Verdict.ANSWERABLE, 40)  # a gap shorter than the wait changes nothing
    wait.went_on(Verdict.ANSWERABLE, 80)
    assert wait.ms == 100 and not wait.answers(Verdict.ANSWERABLE, 80) and wait.answers(Verdict.ANSWERABLE, 100)
    wait.went_on(Verdict.ANSWERABLE, COMPLETE_MS - FRAME_MS)  # this caller pauses as long as a turn's end
    assert wait.ms == COMPLETE_MS and not wait.answers(Verdict.ANSWERABLE, 1000)
    off = EarlyWait(TurnEndSettings(done, HANGOVER_MS, COMPLETE_MS, UNFINISHED_MS, 0))
    off.went_on(Verdict.ANSWERABLE, 80)
    assert off.ms == 0 and not off.answers(Verdict.ANSWERABLE, 1000)


class BurstsRecognizer:
    """A segmented recogniser, as slow as Whisper on a short turn: the turn's audio has as many
    phrases of its script as it has bursts of tone."""

    def __init__(self, phrases: List[str], decode_s: float = 0.15):
        self.phrases, self.decode_s = phrases, decode_s

    def transcribe(self, pcm: bytes) -> Transcript:
        time.sleep(self.decode_s)
        frames = [pcm[i:i + FRAME_BYTES] != PAUSE for i in range(0, len(pcm), FRAME_BYTES)]
        bursts = sum(1 for i, tone in enumerate(frames) if tone and (i == 0 or not frames[i - 1]))
        return Transcript(" ".join(self.phrases[:bursts]), 0.9)


def test_a_segmented_recogniser_s_words_are_waited_for_and_judged_too():
    """Whisper's words come from the early decoding, after the caller's pause began: the turn
    waits for them rather than end on the hangover meanwhile. Frames come in real time here."""
    phrases = ["I would like to", "renew my passport"]
    verdicts = {"I would like to": Verdict.UNFINISHED, "I would like to renew my passport": Verdict.COMPLETE}
    frames = audio(("pause", 200), ("tone", 400), ("pause", 600), ("tone", 400), ("pause", 1200))
    results = {}
    for judged in (True, False):
        settings = TurnEndSettings(lambda text, nlu: done(verdicts.get(text, Verdict.UNSURE)), HANGOVER_MS, COMPLETE_MS,
                                   UNFINISHED_MS) if judged else None
        received, emitted = queue.SimpleQueue(), []
        with concurrent.futures.ThreadPoolExecutor(1) as decoder:
            listener = Listener(received, emitted.append, VadSettings(hangover_ms=HANGOVER_MS),
                                lambda: BurstsRecognizer(phrases), decoder=decoder, turn_end=settings).start()
            for frame in frames:
                received.put((time.monotonic(), frame))
                time.sleep(FRAME_MS / 1000)
            time.sleep(0.5)
            listener.stop()
        results[judged] = [(e.text, e.turn_end) for e in emitted if isinstance(e, Utterance)]
    assert [end for _, end in results[False]] == ["silence", "silence"]  # cut off at the pause: two turns
    assert results[False][0][0] == "I would like to"
    assert results[True] == [("I would like to renew my passport", "complete")]


def test_a_judge_that_fails_or_never_answers_leaves_the_turn_to_the_silence():
    frames = audio(("pause", 200), ("tone", 400), ("pause", 1000))
    broken: "concurrent.futures.Future[Verdict]" = concurrent.futures.Future()
    broken.set_exception(RuntimeError("the NLU server is down"))
    pending: "concurrent.futures.Future[Verdict]" = concurrent.futures.Future()
    for future in (broken, pending):
        received, emitted = queue.SimpleQueue(), []
        settings = TurnEndSettings(lambda text, nlu, f=future: f, HANGOVER_MS, COMPLETE_MS, UNFINISHED_MS)
        listener = Listener(received, emitted.append, VadSettings(), lambda: WordsRecognizer(["opening hours"]),
                            turn_end=settings).start()
        for frame in frames:
            received.put((time.monotonic(), frame))
        deadline = time.monotonic() + 10
        while not any(isinstance(e, Utterance) for e in emitted) and time.monotonic() < deadline:
            time.sleep(0.01)
        listener.stop()
        [utterance] = [e for e in emitted if isinstance(e, Utterance)]
        assert (utterance.turn_end, waited_ms(utterance, 600)) == ("silence", HANGOVER_MS)
    assert pending.cancelled()  # the turn is over: its verdict is no longer wanted


def test_a_turn_asks_for_a_bounded_number_of_verdicts():
    asked = []
    end = TurnEnd(TurnEndSettings(lambda text, nlu: asked.append(text) or done(Verdict.UNSURE), 300, 140, 900))
    for n in range(50):
        end.hangover_ms(f"word{n}", quiet_ms=60)
        end.hangover_ms(f"word{n}", quiet_ms=80)  # the same words: judged once
    end.hangover_ms("within a word", quiet_ms=20)  # too short a gap to ask
    assert asked == [f"word{n}" for n in range(8)]


def test_words_heard_once_the_usual_hangover_passed_are_not_sent_to_the_nlu():
    """A segmented recogniser's words may come after the hangover: a complete verdict could no
    longer end the turn sooner, so only the words themselves are judged (they may still make it
    wait)."""
    asked = []
    end = TurnEnd(TurnEndSettings(lambda text, nlu: asked.append((text, nlu)) or done(Verdict.UNSURE), 300, 200, 900))
    end.hangover_ms("opening hours", quiet_ms=60)
    end.hangover_ms("opening hours please", quiet_ms=320)
    assert asked == [("opening hours", True), ("opening hours please", False)]


@pytest.mark.parametrize("lang, text, unfinished", [
    ("en", "I would like to", True), ("en", "erm", True), ("en", "when are you open", False),
    ("en", "who can I talk to?", True),  # a stranded preposition waits: later, never cut off
    ("da", "jeg vil gerne", True), ("da", "hvornår har I åbent", False),
    ("de", "ich hätte gern", True), ("de", "wann macht das Bürgerbüro auf", False),
    ("nb", "jeg lurer på om", True), ("sv", "jag vill gärna", True),
    ("ko", "영업 시간을", True), ("ko", "음", True), ("ko", "영업 시간 알려 주세요", False),
])
def test_each_language_knows_the_words_a_sentence_does_not_end_on(lang, text, unfinished):
    assert ends_unfinished(text, phrasebook(lang).unfinished_words) == unfinished


def test_vosk_keeps_the_words_before_its_own_endpoint_within_a_turn():
    """Vosk may end a segment of its own within a caller's pause; a turn that waits longer (a
    caller who paused after "to") keeps the words before it (they were lost: "알려 계세요")."""
    from voicebot.audio.asr.vosk import load
    from voicebot.testing import korean
    from voicebot.testing.phone import Turn, turn_speech

    pcm = turn_speech(Turn("say", "영업 시간을 ... 알려 주세요", lang="ko")) + bytes(RATE)
    recognizer = load("ko", korean.vosk_model_dir()).recognizer([*korean.PHRASES, "영업 시간을 알려 주세요"])
    partials = [recognizer.feed(pcm[at:at + FRAME_BYTES]) for at in range(0, len(pcm), FRAME_BYTES)]
    transcript = recognizer.final()
    assert transcript.text.startswith("영업") and "알려" in transcript.text, (transcript, partials)
    assert partials[-1].startswith("영업")  # the partial text holds them too
