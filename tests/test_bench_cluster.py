"""`voicebot bench cluster`'s pure parts: the search for the highest passing level, a capacity
level's verdict from the callers' and the workers' views, the memory-growth verdict of the
soak, and a demo line's installation of its own. (The benchmark itself is run by hand, not here; the test phone's timelines and the
workers' records it reads are tested in test_bench_call and test_cluster.)"""

import math

from conftest import REPO
from voicebot.bench.call import INTENT, linked_installation
from voicebot.bench.cluster import (GROWTH_LIMIT_MB_PER_H, CapacityLevel, full_workers_lines, growth, highest_pass,
                                    search, searched, slope_per_hour)
from voicebot.config import load_installation
from voicebot.dialogue.training import is_stale


def tried(first, step, maximum, limit):
    order = []

    def attempt(level):
        order.append(level)
        return level <= limit
    best, _ = search(first, step, maximum, attempt)
    return best, order


def test_rates_double_then_the_gap_is_halved_down_to_the_step():
    assert tried(1, 1, 32, limit=5) == (5, [1, 2, 4, 8, 6, 5])
    assert tried(2, 2, 16, limit=9) == (8, [2, 4, 8, 16, 12, 10])


def test_the_search_stops_at_the_maximum_or_at_a_first_failure():
    assert tried(2, 2, 12, limit=100) == (12, [2, 4, 8, 12])
    assert tried(1, 1, 32, limit=0) == (None, [1])


def test_each_measured_step_is_kept_in_order_with_the_best_that_passed():
    class Step:
        def __init__(self, value):
            self.value, self.passed = value, value <= 5
    best, steps = searched(1, 1, 32, Step)
    assert best == 5 and [step.value for step in steps] == [1, 2, 4, 5, 6, 8]


def test_a_pass_above_a_failure_does_not_count():
    assert highest_pass({2: True, 4: False, 6: True}) == 2


def test_steady_memory_after_warm_up_is_not_flagged_but_steady_growth_is():
    minutes = range(31)
    warm_up = [(60 * m, 500 + min(m, 10) * 3) for m in minutes]  # 30 MB in the first 10 min, then flat
    first, last, grows = growth(warm_up)
    assert first > GROWTH_LIMIT_MB_PER_H and last == 0 and not grows
    leak = [(60 * m, 500 + m * 0.5) for m in minutes]  # 30 MB an hour
    first, last, grows = growth(leak)
    assert math.isclose(first, 30) and math.isclose(last, 30) and grows


def test_slope_needs_two_samples_in_time():
    assert math.isnan(slope_per_hour([(0, 100)]))
    assert math.isnan(slope_per_hour([(5, 100), (5, 200)]))
    assert math.isclose(slope_per_hour([(0, 100), (1800, 110)]), 20)


def clock(ticks=1000, late=0):
    return {"ticks": ticks, "late_10ms": late, "late_20ms": 0, "late_40ms": 0, "max_late_ms": 12.0 if late else 2.0}


def timeline(call_id, latencies=(300, 320), bad=0, status=None, late=0, floor=40, prefetch=0):
    if status:
        return {"connected": False, "status": status, "turns": []}
    return {"connected": True, "call_id": call_id, "turns": [{"latency_ms": ms} for ms in latencies],
            "received": {"media_ms": 20_000, "jbuf_empty": bad, "jbuf_lost": 0, "jbuf_discarded": 0,
                         "frames_heard": 1000, "clock": clock(late=late), "jitter_floor_ms": floor,
                         "jbuf_prefetch": prefetch}}


def record(call_id, worker="worker-1", intents=(INTENT, INTENT), late=0):
    events = [{"event": "hangup", "by": "caller", "audio_out": clock(late=late)}]
    for intent in intents:
        events += [{"event": "heard", "text": "영업 시간", "end_of_speech_ms": 200, "asr_ms": 10},
                   {"event": "bot", "intent": intent, "dialogue_ms": 40},
                   {"event": "playing", "purpose": "answer", "turn_ms": 280}]
    return {"call_id": call_id, "worker": worker, "events": events}


def level(timelines, records):
    return CapacityLevel(len(timelines), timelines, records, cluster_cpu_s=10.0, wall_s=20.0)


def test_a_level_passes_with_every_call_answered_recorded_on_time_and_clean():
    passed = level([timeline("a"), timeline("b")], [record("a"), record("b", "worker-2")])
    assert passed.passed and passed.per_worker == {"worker-1": 1, "worker-2": 1}
    assert passed.bad_share == 0 and passed.bot_ms == [280] * 4 and passed.wrong_answers == 0
    assert (passed.bot_late, passed.phone_late) == (0, 0)
    # Late ticks of either side's audio clock are counted, each side's share of its frames; they
    # are causes, not the measure: what the callers' jitter buffers got late or missing is.
    late = level([timeline("a", late=2), timeline("b", late=1)], [record("a", late=10), record("b")])
    assert (late.phone_late, late.bot_late) == (3 / 2000, 10 / 2000) and late.passed
    # A phone whose jitter buffer keeps pjsua's one frame counts apart (strict), not in the measure.
    strict = level([timeline("a", bad=20, floor=None), timeline("b", bad=1)], [record("a"), record("b")])
    assert (strict.strict_share, strict.bad_share) == (20 / 1000, 1 / 1000) and strict.passed
    # The frame a 40 ms buffer plays empty while it first fills is no bot frame late or missing.
    assert level([timeline("a", bad=1, prefetch=1), timeline("b", bad=3, prefetch=1)], []).bad_share == 2 / 2000


def test_a_level_fails_on_a_busy_worker_a_late_or_missing_turn_bad_frames_or_a_lost_record():
    busy = level([timeline("a"), timeline(None, status=486)], [record("a")])
    assert not busy.passed and "1 x 486 (every worker held all the calls it can)" in busy.why_failed()
    late = level([timeline("a", latencies=(300, 1200))] * 2, [record("a")] * 2)
    assert not late.passed and "p95 turn latency 1200 ms" in late.why_failed()
    cut_short = level([timeline("a", latencies=(300,))], [record("a")])  # the second turn never came
    assert cut_short.latencies == [300, math.inf] and not cut_short.passed
    unanswered = level([timeline("a", latencies=(300, None))], [record("a")])
    assert unanswered.latencies == [300, math.inf] and not unanswered.passed
    crackly = level([timeline("a", bad=10)], [record("a")])  # 10 of 1000 frames: 1%
    assert not crackly.passed and "1.00% of frames late or missing" in crackly.why_failed()
    unrecorded = level([timeline("a")], [])
    assert not unrecorded.passed and "1 calls without a record" in unrecorded.why_failed()


def test_clean_audio_is_judged_on_the_levels_where_every_worker_is_full():
    def full(calls, bad=0):
        return level([timeline(str(n), bad=bad if n == 0 else 0) for n in range(calls)],
                     [record(str(n)) for n in range(calls)])
    clean = {1: (4, [full(2, bad=5), full(4)]), 2: (8, [full(4), full(8, bad=2)])}
    assert full_workers_lines(clean)[1:] == [
        "the bot's frames late or missing at the callers (jitter buffers of at least 40 ms; strict: pjsua's own) "
        "with every worker holding 4 calls: 1 worker 0.000% (strict 0.000%), 2 workers 0.025% (strict 0.000%)",
        "  < 0.1%: met"]
    crackly = {**clean, 2: (8, [full(8, bad=8)])}  # 8 of 8000 frames: 0.1%
    assert full_workers_lines(crackly)[-1] == "  < 0.1%: NOT met"
    assert full_workers_lines({1: (2, [full(2)])}) == []


def test_a_turn_taken_for_another_intent_is_counted_wrong():
    assert level([timeline("a")], [record("a", intents=(INTENT, "affirm"))]).wrong_answers == 1


def test_a_demo_line_gets_an_installation_of_its_own_that_uses_the_trained_model(trained, tmp_path):
    """What bench cluster --line demo-city starts its cluster on: one Rasa server, for English."""
    inst = load_installation(linked_installation(REPO / "voicebot.yml", tmp_path / "demo-city", lambda s: None,
                                                 ["demo-city"]))
    assert list(inst.tenants) == ["demo-city"] and inst.languages == ["en"]
    assert not is_stale(inst, "en")  # the Rasa server loads models/en as trained, not retrained
