"""`voicebot bench frames` on one call a round: the Korean line's bot with Rasa in its process
and with a Rasa server of its own, each counted at the caller's jitter buffer."""

import re

from voicebot.bench.frames import MODES, run


def test_the_frames_benchmark_counts_the_callers_frames_both_ways(tmp_path):
    said = []
    lines = run(tmp_path, calls=1, rounds=1, say=said.append)
    text = "\n".join(lines)
    for mode in MODES:
        bad, expected = map(int, re.search(rf"^  {mode}\s+(\d+) of (\d+) ", text, re.M).groups())
        assert expected > 500 and 0 <= bad < expected, text  # two answers heard: over 10 s of frames
        assert re.search(rf"< 0.1% of frames late or missing at 1 calls per worker, {mode}: (met|NOT met)", text), text
    assert [s.split(":")[0] for s in said] == ["round 1, Rasa in the bot", "round 1, Rasa server"]
    assert {p.name for p in tmp_path.glob("*-1-*.log")} == {"bot-1-in-bot.log", "bot-1-server.log", "rasa-1-server.log"}
    assert "Rasa for ko on" in (tmp_path / "rasa-1-server.log").read_text()  # the bot used a server indeed
