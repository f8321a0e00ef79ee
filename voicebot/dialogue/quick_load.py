"""Loading a trained Rasa 3.6 model in seconds rather than half a minute.

RasaModel.load (DIET, TED) builds the model's weights by fitting it on one example before it
reads the trained weights over them. Keras traces the whole training step as a graph for that
one step: 20-35 s per language on 2 cores, nearly all of a model's load (`voicebot bench
startup`). Run eagerly, the same step creates the same variables in about a second; the trained
weights are then read as before, and predictions run as a traced graph as configured. A model
loaded to be trained further (finetune) is loaded as Rasa does it.

`use_quick_load()` puts this in place of RasaModel.load, once per process (`load_agent` does it
first); tests/test_quick_load.py checks that a model loaded either way answers identically.
"""

import functools
from typing import Any, Optional


def load_agent(path: str, **options: Any):
    """Rasa's Agent.load, quickly, its action server's replies checked quickly too
    (voicebot/dialogue/reply_check.py)."""
    from rasa.core.agent import Agent

    from voicebot.dialogue.reply_check import use_compiled_reply_check

    use_quick_load()
    use_compiled_reply_check()
    return Agent.load(path, **options)


def use_quick_load() -> None:
    from rasa.utils.tensorflow.models import RasaModel

    if getattr(RasaModel.load, "quick", False):
        return
    rasa_load = RasaModel.load.__func__

    @functools.wraps(rasa_load)
    def load(cls, model_file_name: str, model_data_example, predict_data_example: Optional[Any] = None,
             finetune_mode: bool = False, *args: Any, **kwargs: Any):
        if finetune_mode:
            return rasa_load(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                             *args, **kwargs)
        import tensorflow as tf
        from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
        from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator

        config = kwargs.get("config", {})
        model = cls(*args, **kwargs)
        model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)), run_eagerly=True)
        model.fit(RasaBatchDataGenerator(model_data_example, batch_size=1), verbose=False)
        model.load_weights(model_file_name)
        model.run_eagerly = bool(config.get(RUN_EAGERLY))  # predictions: a traced graph, as configured
        if predict_data_example:
            model.run_inference(predict_data_example)  # trace the prediction now, not on a caller's turn
        return model

    load.quick = True
    RasaModel.load = classmethod(load)
