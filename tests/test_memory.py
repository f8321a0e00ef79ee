"""What the bot keeps for its whole life is kept out of full garbage collections
(voicebot/memory.py)."""

import gc
import weakref

from voicebot.memory import freeze_long_lived


class Node:
    def __init__(self):
        self.me = self  # a cycle: only the garbage collector frees it


def test_what_is_loaded_is_frozen_and_what_a_replaced_model_left_is_still_freed():
    try:
        old_model = Node()
        gone = weakref.ref(old_model)
        freeze_long_lived()  # start-up: the old model is long-lived now
        assert gc.get_freeze_count() > 0
        del old_model
        gc.collect()
        assert gone() is not None  # a frozen cycle is not collected: it would leak
        freeze_long_lived()  # a new model replaced it
        assert gone() is None
    finally:
        gc.unfreeze()
