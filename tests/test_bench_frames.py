"""`voicebot bench frames` on one call a round: the Korean line's bot with its long-lived objects
frozen and without, each counted at the caller's jitter buffer."""

import re

from voicebot.bench.frames import run


def test_the_frames_benchmark_counts_the_callers_frames_both_ways(tmp_path):
    said = []
    lines = run(tmp_path, calls=1, rounds=1, say=said.append)
    text = "\n".join(lines)
    for mode in ("frozen", "not frozen"):
        bad, expected = map(int, re.search(rf"^  {mode}\s+(\d+) of (\d+) ", text, re.M).groups())
        assert expected > 500 and 0 <= bad < expected, text  # two answers heard: over 10 s of frames
    assert re.search(r"< 0.1% of frames late or missing at 1 calls per worker: (met|NOT met)", text), text
    assert [s.split(":")[0] for s in said] == ["round 1, frozen", "round 1, not frozen"]
    assert len(list(tmp_path.glob("bot-1-*.log"))) == 2
