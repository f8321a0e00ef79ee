"""What lives as long as the bot process: kept out of Python's full garbage collections.

The models and code loaded at start-up are about 580,000 objects that never become garbage.
Python's full (generation 2) collection walked every one of them, holding the GIL for about
200 ms (measured with gc.callbacks during calls), in which no other thread runs: neither the
conference bridge's clock thread, whose frame callbacks are Python, nor a turn's answer. Frozen
after start-up, collections walk only what calls create since. `voicebot bench frames` compares
the frames callers receive both ways (benchmarks/RESULTS.md)."""

import gc
import os


def freeze_long_lived() -> None:
    """Call once what is loaded will stay (after start-up, after a model replaced another):
    what was frozen before is collected once more, so that a replaced model's cycles go.
    VOICEBOT_GC_FREEZE=0 leaves the collections as Python makes them (`voicebot bench frames`
    compares)."""
    if os.environ.get("VOICEBOT_GC_FREEZE") == "0":
        return
    gc.unfreeze()
    gc.collect()
    gc.freeze()
