"""The speech benchmark's scoring, sampling and aggregation (no recogniser, no bot)."""

import math
from types import SimpleNamespace

import pytest

from voicebot.bench import speech as bench
from voicebot.dialogue.training import load_heldout


def test_normalise_drops_case_punctuation_and_apostrophes_keeps_nordic_letters():
    assert bench.normalise("Can I renew my passport?") == ["can", "i", "renew", "my", "passport"]
    assert bench.normalise("I'd like it — now, please.") == ["id", "like", "it", "now", "please"]
    assert bench.normalise("Hvornår har I åbent på rådhuset?") == ["hvornår", "har", "i", "åbent", "på", "rådhuset"]
    assert bench.normalise("Straße; e-mail/Post") == ["straße", "e", "mail", "post"]
    assert bench.normalise("") == []


def test_word_errors_count_substitutions_deletions_and_insertions():
    assert bench.word_errors("can I renew my passport", "Can I renew my passport.") == (0, 5)
    assert bench.word_errors("can I renew my passport", "come I renew my passport") == (1, 5)
    assert bench.word_errors("can I renew my passport", "renew passport") == (3, 5)
    assert bench.word_errors("yes", "yes yes please") == (2, 1)
    assert bench.word_errors("hello there", "") == (2, 2)  # nothing heard: every word deleted
    assert bench.word_errors("", "") == (0, 0)


def test_wer_is_over_all_reference_words_not_a_mean_of_sentences():
    pairs = [("a b c d", "a b c d"), ("x", "y")]  # 1 error in 5 words, not (0 + 1) / 2
    assert bench.wer(pairs) == pytest.approx(0.2)
    assert bench.wer([("one two", "one two three four")]) == pytest.approx(1.0)  # insertions can pass 100%
    assert math.isnan(bench.wer([]))


def test_only_a_real_intent_counts_as_understood():
    assert not bench.is_understood(None)
    assert not bench.is_understood("")
    assert not bench.is_understood("nlu_fallback")
    assert bench.is_understood("opening_hours")
    assert bench.is_understood("out_of_scope")  # the bot answers it too


def test_held_out_reads_intents_in_order(tmp_path):
    (tmp_path / "heldout").mkdir()
    (tmp_path / "heldout" / "en.yml").write_text('greet: ["hiya", "hello there"]\nthank: ["cheers"]\n')
    assert load_heldout(SimpleNamespace(root=tmp_path), "en") == [
        ("greet", "hiya"), ("greet", "hello there"), ("thank", "cheers")]
    assert load_heldout(SimpleNamespace(root=tmp_path), "da") == []


def test_plan_hears_every_utterance_once_per_condition_with_styles_rotated():
    utterances = [(f"intent{i}", f"sentence {i}") for i in range(8)]
    cases = bench.plan("da", utterances, quick=False)
    conditions = bench.conditions(False)
    assert len(conditions) == 6 and len(cases) == 6 * 8
    for channel, snr in conditions:
        heard = [c for c in cases if (c.channel, c.snr) == (channel, snr)]
        assert sorted(c.text for c in heard) == sorted(t for _, t in utterances)
        # each of the 4 voice/speed styles on a quarter of them
        styles = [(c.voice, c.wpm) for c in heard]
        assert {styles.count(s) for s in set(styles)} == {2} and len(set(styles)) == 4
    first = [(c.voice, c.wpm) for c in cases if c.text == "sentence 0"]
    assert len(set(first)) == 4  # one sentence is heard in every style over the conditions
    assert {c.voice for c in cases} == {"da", "da+f3"} and {c.wpm for c in cases} == set(bench.SPEEDS)


def test_quick_plan_samples_utterances_across_intents():
    utterances = [(f"intent{i // 3}", f"sentence {i}") for i in range(60)]
    cases = bench.plan("en", utterances, quick=True)
    assert len(cases) == bench.QUICK_UTTERANCES * len(bench.QUICK_CONDITIONS)
    assert len({c.intent for c in cases}) == bench.QUICK_UTTERANCES  # spread, not the first few
    assert {c.voice for c in cases} <= {"en-gb", "en-gb+f3"}


def test_noise_is_added_at_the_asked_snr_over_the_whole_clip():
    import numpy as np

    rng = np.random.default_rng(7)
    t = np.arange(32479) / 16000
    speech = np.where((t > 0.3) & (t < 1.7), 8000 * np.sin(2 * np.pi * 220 * t), 0.0)
    span = (int(0.3 * 16000), int(1.7 * 16000))
    assert bench.with_noise(speech, span, None, rng) is speech
    for snr in (20.0, 10.0):
        noisy = bench.with_noise(speech, span, snr, rng)
        assert noisy.size == speech.size  # whatever the length rounds to
        noise = noisy - speech
        measured = 10 * np.log10(np.mean(speech[span[0]:span[1]] ** 2) / np.mean(noise ** 2))
        assert measured == pytest.approx(snr, abs=0.01)
        assert np.abs(noise[:span[0]]).max() > 0  # in the silence around the words too


def test_figures_and_noise_table():
    case = bench.Case("en", "passport", "renew my passport", "en-gb", 150, "G.711", None)
    results = [bench.Result(case, "renew my passport", 1.0, 0.5, 0.4, "passport", "passport"),
               bench.Result(case, "", 1.0, 0.1, 0.1, "passport", None)]
    wer, speech, text, empty, n = bench.figures(results).split()
    assert (wer, speech, text, empty, n) == ("50.0%", "50.0%", "100.0%", "50.0%", "2")
    noise = {"en": [bench.NoiseResult("en", "hum", "G.711", "", None),
                    bench.NoiseResult("en", "music", "G.711", "Thank you.", "thank")]}
    lines = bench.noise_lines(noise)
    assert any(line.split()[:2] == ["hum", "0/1"] for line in lines)
    assert any(line.split()[:2] == ["music", "1/1"] for line in lines)
    assert any(line.split() == ["all", "50.0%"] for line in lines)
    assert any("'Thank you.' -> thank" in line for line in lines)


# --- bench call on the Whisper line: the parts it joins and judges by

def test_bot_turns_carry_the_recognisers_busy_time():
    from voicebot.bench.call import bot_turns

    record = {"events": [
        {"event": "heard", "text": "", "end_of_speech_ms": 300, "asr_ms": 5, "asr_busy_ms": 40},  # a noise
        {"event": "heard", "text": "What are your opening hours?", "end_of_speech_ms": 301, "asr_ms": 420,
         "asr_busy_ms": 690, "turn_end": "complete"},
        {"event": "bot", "intent": "opening_hours", "dialogue_ms": 50},
        {"event": "playing", "purpose": "answer", "turn_ms": 780},
    ]}
    assert bot_turns(record) == [{"end_of_speech_ms": 301, "asr_ms": 420, "asr_busy_ms": 690, "turn_end": "complete",
                                  "dialogue_ms": 50, "turn_ms": 780}]


def test_an_early_answer_taken_back_is_no_turn_of_its_own():
    """The caller went on after an early answer: the bot's turns match the caller's, one."""
    from voicebot.bench.call import bot_turns

    record = {"events": [
        {"event": "heard", "text": "opening hours", "end_of_speech_ms": 60, "asr_ms": 0, "turn_end": "early"},
        {"event": "bot", "intent": "opening_hours", "dialogue_ms": 30},
        {"event": "playing", "purpose": "answer", "turn_ms": 95},
        {"event": "taken_back", "text": "opening hours", "intent": "opening_hours"},
        {"event": "heard", "text": "opening hours on saturday", "end_of_speech_ms": 200, "asr_ms": 9,
         "turn_end": "complete"},
        {"event": "bot", "intent": "opening_hours", "dialogue_ms": 31},
        {"event": "playing", "purpose": "answer", "turn_ms": 245},
        {"event": "heard", "text": "and on sunday", "end_of_speech_ms": 100, "asr_ms": 0, "turn_end": "early"},
        {"event": "bot", "intent": "opening_hours", "dialogue_ms": 20},
        {"event": "playing", "purpose": "answer", "turn_ms": 130},  # it stood
    ]}
    assert [(t["turn_end"], t["turn_ms"]) for t in bot_turns(record)] == [("complete", 245), ("early", 130)]


def test_a_capacity_level_passes_on_its_lines_own_p95_limit():
    from voicebot.bench.call import LINES, Level

    def level(limit: float) -> Level:
        return Level(4, latencies=[900, 1000, 1200, 1400], bad_frames=0, expected_frames=1000,
                     caller_short_frames=0, refused=[], cut_short=0, wrong_answers=0, bot_cpu_s=10,
                     asr_busy_s=4, call_s=100, wall_s=30, caller_cpu_s=3, peak_rss_mb=1500, max_p95_ms=limit)
    assert level(LINES["demo-city"].max_p95_ms).passed
    assert not level(LINES["korean"].max_p95_ms).passed
    assert (LINES["korean"].target_p50_ms, LINES["demo-city"].target_p50_ms) == (300, 900)  # issue 21 on Vosk


def test_the_caller_times_how_much_of_the_bot_it_heard_over_its_own_words():
    """A turn spoken after the answer was heard to its end: the bot's audio that began while the
    caller spoke (an early answer it went on after) is measured, the answer after it is not."""
    from voicebot.testing.phone import Spoken, answer_timing

    turn = Spoken({"kind": "say", "value": "opening hours on saturday", "barge_in": False}, 10.0, 11.2)
    blip, answer = [10.5, 10.62], [11.45, 14.0]
    timed = answer_timing(turn, None, [[8.0, 9.5], blip, answer])
    assert (timed["latency_ms"], timed["bot_over_caller_ms"]) == (250, 140)
    assert answer_timing(turn, None, [[8.0, 9.5], answer])["bot_over_caller_ms"] == 0
    # A barge-in turn begins over the bot: how soon it stopped is what counts there.
    barge_in = Spoken({**turn.entry, "barge_in": True}, 10.0, 11.2)
    assert answer_timing(barge_in, None, [[9.0, 10.5], answer])["bot_stopped_after_ms"] == 500


def test_a_clock_that_stalled_and_caught_up_counts_its_late_ticks():
    """Ticks every 20 ms, but one 45 ms late, the next two caught up at once (25 and 5 ms late,
    as pjmedia's clock does after a stall); the grid is set by the earliest tick, whatever the
    first one's phase."""
    from voicebot.telephony.media import clock_lateness

    late_ms = [3, 0, 1, 45, 25, 5, 0, 2]  # each tick's time less its place on the grid, in ms
    assert clock_lateness([100.0 + ms / 1000 for ms in late_ms]) == {
        "ticks": 8, "late_10ms": 2, "late_20ms": 2, "late_40ms": 1, "max_late_ms": 45.0}
    assert clock_lateness([]) == {"ticks": 0, "late_10ms": 0, "late_20ms": 0, "late_40ms": 0, "max_late_ms": 0.0}


def test_bench_call_reports_how_soon_early_answers_were_stopped_and_how_much_the_callers_heard():
    from voicebot.bench.call import LINES, Level, over_caller_line, stopped_after

    assert stopped_after([{"event": "taken_back", "stopped_after_ms": ms} for ms in (40, 90, 60)]) == "60 / 90 ms"
    assert stopped_after([{"event": "taken_back"}]) == stopped_after([]) == "-"  # the caller did not go on

    def level(over: tuple) -> Level:
        return Level(2, latencies=[200, 300], bad_frames=0, expected_frames=1000, caller_short_frames=0, refused=[],
                     cut_short=0, wrong_answers=0, bot_cpu_s=1, asr_busy_s=1, call_s=10, wall_s=10, caller_cpu_s=1,
                     peak_rss_mb=900, max_p95_ms=LINES["korean"].max_p95_ms, over_caller_ms=over)
    assert over_caller_line([level((0, 0)), level((0, 0, 0, 0))]).endswith(": 0 of 6 turns")
    line = over_caller_line([level((0, 40)), level((0, 0, 100, 20))])
    assert line.endswith(": 3 of 6 turns, p50 40 ms, at most 100 ms")
