"""`voicebot bench load`'s figures from given measurements (the benchmark itself runs a bot)."""

from voicebot.bench.load import Load, figures
from voicebot.config.settings import TextChannel


def test_the_figures_name_the_text_settings_and_compare_the_call_alone_and_under_load():
    call_alone, call_loaded = ([500.0, 600.0], [100.0, 120.0]), ([550.0, 700.0], [110.0, 130.0])
    load = Load(text_ms=[1000.0, 3000.0], busy=2, large_ms=[7.0])
    lines = figures(call_alone, [2.0], call_loaded, [4.0], load, 200, 2, TextChannel())
    assert "turns at once 1, 200 waiting, waiting for calls at most 3 s" in lines[0]
    assert "defaults" not in lines[0]
    assert lines[3].split()[-1] == "1.10"  # turn latency p50 550 / 500
    assert "2 answered" in lines[6] and "2 told to send again" in lines[6]
    compared = figures(call_alone, [2.0], call_loaded, [4.0], load, 200, 2, TextChannel(wait_for_calls_s=0))
    assert "waiting for calls at most 0 s (defaults: turns_at_once 1, max_waiting 200, wait_for_calls_s 3.0)" \
        in compared[0]
