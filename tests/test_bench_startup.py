"""`voicebot bench startup` on one line: a real `voicebot serve` answers a real call, and the parts
(Rasa's import, the model's load and first parse, Rasa's way and the bot's) are measured in a
process of their own."""

import re

from voicebot.bench.startup import run


def test_the_startup_benchmark_times_the_first_answered_call_and_each_part(tmp_path):
    said = []
    lines = run(tmp_path, said.append, lines=("demo-city",))
    text = "\n".join(lines)
    health = float(re.search(r"/health answers after\s+([\d.]+) s", text).group(1))
    answered = float(re.search(r"first call answered after\s+([\d.]+) s", text).group(1))
    assert 0 < health <= answered, text
    assert float(re.search(r"resident memory then\s+(\d+) MB", text).group(1)) > 100, text  # a bot with its model
    rasa, ours = map(float, re.search(r"en:\s+([\d.]+) s \+ [\d.]+ s\s+([\d.]+) s \+ [\d.]+ s", text).groups())
    assert 0 < ours < rasa, text  # the bot's load skips tracing the training step
    assert said[0].startswith("end to end: voicebot serve with demo-city (en)")
