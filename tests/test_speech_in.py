"""Speech in on the demo lines, over real SIP calls: Whisper (the bundled base model, chosen for
every language without a Vosk model) hears callers spoken by espeak-ng in English, German and
Danish; noise, music and silence become no request; a recogniser that fails mid-call leaves
the caller with an honest word and a person."""

import queue
import time

import numpy as np

from conftest import DEMO_CITY, DEMO_KOMMUNE, STADT_KREIS, answered, events, place_call
from test_phone_faults import wav_file
from voicebot.audio.asr import RecognizerError, Transcript
from voicebot.audio.format import FRAME_BYTES, RATE
from voicebot.audio.hold_music import hold_music
from voicebot.audio.listener import Listener, RecognizerFailed, SpeechStarted, Utterance
from voicebot.audio.tts import Synthesizer
from voicebot.audio.vad import VadSettings


def spoken_call(bot, number: str, voice: str, *sentences: str, **options) -> dict:
    turns = [arg for sentence in sentences for arg in ("--say", sentence)]
    # Each turn waits out the bot's spoken answer (the passport guidance alone takes about 20 s),
    # and on a busy machine Whisper takes seconds per turn: three turns need more than a minute.
    options.setdefault("timeout", 40 * len(sentences) + 30)
    timeline = place_call(bot.sip_uri(number), "--lang", voice, *turns, **options)
    return bot.call_record(timeline["call_id"])


# Sentences Whisper base hears exactly in espeak-ng's voice at every offset into the turn tried
# (eight, 160-720 ms): "can I renew my passport" came out as "car in your passport" in one call
# in ten. How well it hears harder sentences is the speech benchmark's business.
ENGLISH_TURNS = ("how do I renew my passport", "what are your opening hours tomorrow", "I want to talk to a person")


def test_an_english_caller_is_heard_and_answered(bot):
    record = spoken_call(bot, DEMO_CITY, "en-gb", *ENGLISH_TURNS)
    heard, replies = answered(record, "heard"), answered(record, "bot")
    assert [r["intent"] for r in replies] == ["passport", "opening_hours", "request_agent"], (heard, replies)
    # The hours said are the ones the text channel gives for the same question at the same time.
    assert replies[1]["texts"][0] == bot.conversation("demo-city", ENGLISH_TURNS[1])[0]["messages"][0]
    assert replies[2]["handoff"]["reason"] == "requested"
    assert all(h["text"] and 0 < h["confidence"] <= 1 for h in heard), heard


def test_a_caller_who_pauses_mid_sentence_is_waited_for(bot):
    """"I would like to ... know your opening hours", with 0.6 s of silence after "to": the fixed
    300 ms hangover made a turn of "I would like to"; the turn waits for Whisper's words, and
    their last one says that more is coming (audio.end_of_turn)."""
    record = spoken_call(bot, DEMO_CITY, "en-gb", "I would like to ... know your opening hours")
    heard = [h for h in answered(record, "heard") if h["text"]]
    assert len(heard) == 1 and "opening hours" in heard[0]["text"].lower(), heard
    assert [r["intent"] for r in answered(record, "bot")] == ["opening_hours"]


def test_a_german_caller_is_heard_in_german(bot):
    # Whisper base makes little of espeak-ng's German ("Reisepass" comes back as "Hi, Bepa"), so
    # what it understands is the speech benchmark's figure (38% of intents), not a test's luck;
    # this sentence came back with its first words right at all eight offsets tried.
    record = spoken_call(bot, STADT_KREIS, "de", "Guten Tag, ich habe eine Frage zum Reisepass")
    heard = answered(record, "heard")
    assert heard and heard[0]["text"].lower().startswith("guten tag, ich habe"), heard
    assert events(record, "bot"), "what it heard reached the dialogue"


def test_the_danish_line_hears_speech_not_just_keys(bot):
    record = spoken_call(bot, DEMO_KOMMUNE, "da", "hvornår har I åbent i morgen")
    heard = answered(record, "heard")
    assert heard and heard[0]["text"], heard  # decoded as Danish: the line's language is fixed
    assert events(record, "bot"), "what it heard reached the dialogue"
    assert not [e for e in events(record, "playing") if e["purpose"] == "keypad"]


def test_noise_music_and_silence_are_no_request(bot, tmp_path):
    seconds = RATE * 10
    sounds = {"white noise": np.random.default_rng(3).normal(0, 3000, seconds),
              "hold music": np.frombuffer(hold_music("tone", RATE), "<i2").astype(float),
              "silence": np.zeros(seconds)}
    turns = [arg for name, samples in sounds.items()
             for arg in ("--wav", wav_file(tmp_path / f"{name}.wav", np.resize(samples, seconds)))]
    timeline = place_call(bot.sip_uri(DEMO_CITY), *turns, timeout=90)
    record = bot.call_record(timeline["call_id"])
    assert not events(record, "bot"), record["events"]  # no intent, no handoff
    assert all(not h["text"] for h in events(record, "heard")), events(record, "heard")


class FailingRecognizer:
    """A segmented recogniser whose decoding fails, as a model that cannot run would."""

    def transcribe(self, pcm: bytes) -> Transcript:
        raise RecognizerError("the model could not run")


def test_a_recogniser_failing_mid_call_is_reported_to_the_call():
    frames, emitted = queue.SimpleQueue(), []
    listener = Listener(frames, emitted.append, VadSettings(), FailingRecognizer).start()
    speech = Synthesizer("en-gb").render("can I renew my passport", RATE).pcm + bytes(RATE)
    for at in range(0, len(speech) - FRAME_BYTES, FRAME_BYTES):
        frames.put((time.monotonic(), speech[at:at + FRAME_BYTES]))
    deadline = time.monotonic() + 10
    while not any(isinstance(event, Utterance) for event in emitted) and time.monotonic() < deadline:
        time.sleep(0.05)
    listener.stop()
    kinds = [type(event) for event in emitted]
    assert kinds[0] is SpeechStarted and RecognizerFailed in kinds, kinds
    assert kinds.index(RecognizerFailed) < kinds.index(Utterance)  # told first, then an empty turn
