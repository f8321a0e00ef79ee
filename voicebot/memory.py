"""What lives as long as the bot process: kept out of Python's full garbage collections.

The models and code loaded at start-up are about 580,000 objects that never become garbage.
Python's full (generation 2) collection walked every one of them, holding the GIL for about
200 ms (measured with gc.callbacks during calls), in which no other thread runs: neither the
conference bridge's clock thread, whose frame callbacks are Python, nor a turn's answer. Frozen
after start-up, collections walk only what calls create since. The frames callers receive
did not change measurably either way (benchmarks/RESULTS.md, "Frames under load: garbage
collections frozen or not"): what made the bridge late was copying each received frame through
SWIG's iterator (voicebot/telephony/media.py)."""

import gc
import os


def freeze_long_lived() -> None:
    """Call once what is loaded will stay (after start-up, after a model replaced another):
    what was frozen before is collected once more, so that a replaced model's cycles go.
    VOICEBOT_GC_FREEZE=0 leaves the collections as Python makes them (to compare)."""
    if os.environ.get("VOICEBOT_GC_FREEZE") == "0":
        return
    gc.unfreeze()
    gc.collect()
    gc.freeze()
