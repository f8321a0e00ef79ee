"""`voicebot bench cluster`'s pure parts: the search for the highest passing level and the
memory-growth verdict of the soak. (The benchmark itself is run by hand, not here.)"""

import math

from voicebot.bench.cluster import GROWTH_LIMIT_MB_PER_H, growth, highest_pass, search, slope_per_hour


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
