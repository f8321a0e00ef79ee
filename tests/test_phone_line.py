"""The phone line over real SIP calls on 127.0.0.1: `voicebot call` dials `voicebot serve`."""

import os
import re
import threading
import time
import urllib.parse
import wave
from pathlib import Path

import numpy as np

from conftest import DEMO_CITY, answered, events, metric, place_call
from voicebot.audio.tts import Synthesizer, voice_for
from voicebot.telephony.media import RATE
from voicebot.testing import korean



def speech_ms(tenant, text: str) -> int:
    return int(Synthesizer(voice_for(tenant)).render(text, RATE).duration * 1000)


def test_greeting_is_heard_with_speech_energy_and_its_length(bot, inst, tmp_path):
    wav_path = tmp_path / "heard.wav"
    timeline = place_call(bot.sip_uri(DEMO_CITY), record=wav_path)
    assert timeline["connected"]
    greeting_ms = speech_ms(inst.tenant("demo-city"), inst.tenant("demo-city").greeting)
    spoken = sum(segment["ms"] for segment in timeline["heard"])
    # The bot's speech heard over G.722/RTP: as long as the rendered greeting (pauses excluded).
    assert 0.6 * greeting_ms < spoken <= greeting_ms + 500
    with wave.open(str(wav_path)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float32)
    loud = samples[np.abs(samples) > 1000]
    assert loud.size > RATE, "less than a second of audible speech in the recording"
    record = bot.call_record(timeline["call_id"])
    assert events(record, "playing")[0]["purpose"] == "greeting"
    hangup = events(record, "hangup")[0]
    assert hangup["by"] == "caller"
    # What the bot received of the caller's audio (its silence, a packet every 20 ms), for operators.
    received = hangup["audio_in"]
    assert received["rtp_packets"] >= 0.8 * greeting_ms / 20 and received["rtp_lost"] == 0, received
    assert 0 < received["jbuf_delay_ms"] < 200 and received["jitter_ms"] >= 0
    # How punctually each side's audio clock handled the frames: a tick every 20 ms while the
    # media flowed (this test does not judge how many were late: the machine is shared).
    sent, fetched = hangup["audio_out"], timeline["received"]["clock"]
    media_ticks = timeline["received"]["media_ms"] / 20
    assert 0.8 * media_ticks < sent["ticks"] and 0.8 * media_ticks < fetched["ticks"] <= media_ticks + 5, (sent, fetched)
    assert sent["ticks"] >= sent["late_10ms"] >= sent["late_20ms"] >= sent["late_40ms"] >= 0 <= sent["max_late_ms"]


def test_a_caller_can_keep_a_jitter_buffer_floor_as_real_phones_do(bot):
    """bench cluster judges the bot's audio at phones whose jitter buffers keep 40 ms, as real
    phones keep 40-60 ms: pjsua's own adaptive buffer shrinks to one frame (20 ms) on loopback."""
    floored = place_call(bot.sip_uri(DEMO_CITY), "--jitter-floor-ms", "80", timeout=5)["received"]
    own = place_call(bot.sip_uri(DEMO_CITY), timeout=5)["received"]
    assert floored["jitter_floor_ms"] == 80 and floored["jbuf_delay_ms"] >= 70, floored
    # Filling to it at the start, the buffer plays 3 frames empty (pjsua counts them): no bot frame is late.
    assert floored["jbuf_prefetch"] == 3 and floored["jbuf_empty"] >= 3, floored
    assert own["jitter_floor_ms"] is None and own["jbuf_delay_ms"] < 70, own


def test_keypad_1_answers_the_first_menu_topic(bot):
    timeline = place_call(bot.sip_uri(DEMO_CITY), "--dtmf", "1")
    turn = timeline["turns"][0]
    assert turn["latency_ms"] is not None and turn["bot_ms"] > 2000
    record = bot.call_record(timeline["call_id"])
    assert events(record, "dtmf")[0]["digit"] == "1"
    answer = events(record, "bot")[0]
    assert answer["intent"] == "opening_hours"
    assert "open" in answer["texts"][0] and answer["handoff"] is None


def test_keypad_0_refers_the_caller_to_the_pbx_queue_with_context(bot, inst):
    """Demo City hands off by SIP REFER to its existing PBX (handoff.via: refer)."""
    timeline = place_call(bot.sip_uri(DEMO_CITY), "--dtmf", "3", "--dtmf", "0")
    assert len(timeline["transfers"]) == 1
    refer_to = timeline["transfers"][0].strip("<>")
    uri, _, query = refer_to.partition("?")
    assert uri == inst.tenant("demo-city").handoff.transfer_uri
    headers = dict(urllib.parse.parse_qsl(query))
    assert headers["X-Voicebot-Tenant"] == "demo-city"
    assert headers["X-Voicebot-Intent"] == "request_agent"
    assert headers["X-Voicebot-Reason"] == "requested"
    assert "change_address" in headers["X-Voicebot-Summary"]
    assert headers["X-Voicebot-Conversation"] == timeline["call_id"]
    # The test caller declines the REFER: the bot says so and keeps the call.
    record = bot.call_record(timeline["call_id"])
    assert events(record, "transfer_result")[0]["code"] == 603
    assert events(record, "playing")[-1]["purpose"] == "transfer_failed"
    assert timeline["hung_up_by"] == "caller"


def test_an_unknown_number_is_rejected_clearly(bot):
    timeline = place_call(bot.sip_uri("+4511111111"), timeout=10)
    assert not timeline["connected"]
    assert timeline["status"] == 404 and timeline["reason"] == "No such line"


def test_hanging_up_during_the_greeting_ends_the_call_on_the_bot(bot):
    # --timeout 2: the caller hangs up two seconds in, while the greeting plays.
    timeline = place_call(bot.sip_uri(DEMO_CITY), timeout=2)
    assert timeline["connected"] and timeline["hung_up_by"] == "caller"
    record = bot.call_record(timeline["call_id"])
    assert record["state"] == "ended"
    hangups = events(record, "hangup")
    assert len(hangups) == 1 and set(hangups[0]) == {"t", "event", "by", "during", "audio_in", "audio_out"}
    assert hangups[0]["by"] == "caller" and hangups[0]["during"] == "greeting"  # cut short: see CallSession._cut_off
    live = [c for c in bot.request("GET", "/calls")[1] if c["call_id"] == timeline["call_id"]]
    assert live[0]["state"] == "ended"


def usage(pid: int) -> dict:
    """A process's resident memory, threads and open file descriptors, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    field = lambda name: int(re.search(rf"{name}:\s+(\d+)", status).group(1))  # noqa: E731
    return {"rss_kb": field("VmRSS"), "threads": field("Threads"), "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def calls_settled(bot) -> dict:
    """The bot's usage once every call it knows of is over on its side too."""
    deadline = time.monotonic() + 20
    while any(c["state"] not in ("ended", "transferred") for c in bot.request("GET", "/calls")[1]):
        assert time.monotonic() < deadline, "calls still open on the bot"
        time.sleep(0.2)
    return usage(bot.process.pid)


def test_a_hundred_calls_in_a_row_leave_no_growing_memory_or_open_handles(bot):
    # Each call hears two seconds of greeting and hangs up; three at a time (the bot holds four).
    many = ("--calls", "20", "--concurrent", "3")
    warm_up = place_call(bot.sip_uri(DEMO_CITY), *many, timeout=2, total_timeout=300)
    before = calls_settled(bot)
    timelines = warm_up + [timeline for _ in range(4)
                           for timeline in place_call(bot.sip_uri(DEMO_CITY), *many, timeout=2, total_timeout=300)]
    after = calls_settled(bot)
    assert len(timelines) == 100 and all(t["connected"] and t["heard_ms"] > 1000 for t in timelines)
    assert after["fds"] <= before["fds"] + 2 and after["threads"] <= before["threads"] + 2, (before, after)
    # A leak of 100 KB a call would show as 8 MB over the last 80 calls; the bot keeps the
    # records of its last 200 calls, a few kB each.
    assert after["rss_kb"] - before["rss_kb"] < 8000, (before, after)


# -- speech in: real Vosk on the Korean test line (voicebot/testing/korean.py)

KOREAN_LINE = korean.NUMBER


def test_a_recognised_korean_utterance_drives_the_dialogue(korean_bot):
    timeline = place_call(korean_bot.sip_uri(KOREAN_LINE), "--lang", "ko",
                          "--say", korean.ASK_OPENING_HOURS, "--say", korean.ASK_FOR_A_PERSON)
    record = korean_bot.call_record(timeline["call_id"])
    heard, replies = answered(record, "heard"), answered(record, "bot")
    # Vosk's words, not the caller's script: the recogniser may swap a word (주세요/계세요).
    assert heard[0]["text"].startswith("영업 시간") and heard[1]["text"].startswith("사람 바꿔"), heard
    assert [r["intent"] for r in replies] == ["opening_hours", "request_agent"]
    assert replies[1]["handoff"]["reason"] == "requested"
    assert len(timeline["transfers"]) == 1
    first = timeline["turns"][0]
    assert first["latency_ms"] is not None and first["bot_ms"] > 1000
    # Turns end on the words' verdict (a whole request; the opening hours, a routine question, may
    # be answered early) or the silence, never waiting as if the caller stopped mid-sentence. How
    # long each waited is counted in frames and tested in test_turn_end: this record's
    # end_of_speech_ms is wall-clock, shorter than the frames counted when they arrive in a burst
    # after a stall (CI once saw it below the wait).
    ends = [h["turn_end"] for h in heard]
    assert ends[0] in {"early", "complete", "silence"} and ends[1] in {"complete", "silence"}, ends
    # The recogniser's real-time factor per utterance reaches the metrics.
    assert all(h["speech_ms"] > 500 and h["asr_busy_ms"] > 0 for h in heard)
    assert metric(korean_bot.text("/metrics"), "voicebot_asr_real_time_factor_count", language="ko") >= 2


def test_a_chat_waits_while_a_callers_turn_is_heard_and_answered(korean_bot):
    """Calls first (text.wait_for_calls_s): a chat that sends turn after turn gets no answer
    between the end of the caller's words and the beginning of the bot's answer."""
    conversation_id, _ = korean_bot.start("ko-test")
    answered_at, stop = [], threading.Event()

    def chat() -> None:
        while not stop.is_set():
            korean_bot.say("ko-test", conversation_id, korean.ASK_OPENING_HOURS)
            answered_at.append(time.time())
    chatting = threading.Thread(target=chat, name="chat")
    chatting.start()
    try:
        timeline = place_call(korean_bot.sip_uri(KOREAN_LINE), "--lang", "ko", "--say", korean.ASK_OPENING_HOURS)
    finally:
        stop.set()
        chatting.join(60)
    record = korean_bot.call_record(timeline["call_id"])
    [heard] = answered(record, "heard")
    [answer] = [e for e in answered(record, "playing") if e["purpose"] == "answer"]
    spoken_until = record["started"] + heard["t"] - (heard["end_of_speech_ms"] + heard["asr_ms"]) / 1000
    answer_at = record["started"] + answer["t"]
    assert sum(t < spoken_until - 2 for t in answered_at) >= 5, "the chat was not going before the caller spoke"
    # The bot waited for the caller's silence: at least audio.end_of_turn.answer_early_ms (0.1 s) of it.
    assert answer_at - spoken_until > 0.05
    assert not [t for t in answered_at if spoken_until < t < answer_at], (spoken_until, answer_at, answered_at)
    assert any(t > answer_at for t in answered_at)


def test_models_get_fails_clearly_when_the_model_host_is_unreachable(tmp_path):
    import subprocess
    import sys

    from conftest import REPO
    from voicebot.ports import free_port

    done = subprocess.run([sys.executable, "-m", "voicebot.cli", "models", "get", "en",
                           "--url", f"http://127.0.0.1:{free_port()}/vosk-model-small-en-us-0.15.zip"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "could not download the en Vosk model" in done.stderr and "asr.models.en.path" in done.stderr
    assert "Traceback" not in done.stderr
