"""The bot loads a trained model without Rasa's one-example training trace
(voicebot/dialogue/quick_load.py): the model it gets must answer exactly as Rasa's own load does,
intents, confidences, rankings and entities, for sentences of a real model. (The dialogue's
policies are rules, which load no TensorFlow model.)"""

import json
import subprocess
import sys

from conftest import REPO

COMPARE = """
import asyncio, json
from rasa.core.agent import Agent
from voicebot.config import load_installation
from voicebot.dialogue.quick_load import load_agent, use_quick_load
from voicebot.dialogue.training import model_path
from rasa.utils.tensorflow.models import RasaModel

TEXTS = ["when are you open", "I want to renew my passport", "I moved house last week", "hello",
         "can I speak to a person", "my bin was not emptied", "how do I get a digital id", "thank you, bye",
         "the weather is nice", "tomorrow at 10"]

async def answers(agent):
    parsed = [await agent.parse_message(text) for text in TEXTS]
    return [[p["intent"]["name"], round(p["intent"]["confidence"], 5),
             [(r["name"], round(r["confidence"], 5)) for r in p["intent_ranking"]],
             [(e["entity"], e["value"]) for e in p["entities"]]] for p in parsed]

path = str(model_path(load_installation(), "en"))
rasa_way = asyncio.run(answers(Agent.load(path)))
assert not getattr(RasaModel.load, "quick", False)
quick_way = asyncio.run(answers(load_agent(path)))
assert RasaModel.load.quick
print(json.dumps({"rasa": rasa_way, "quick": quick_way}))
"""


def test_a_model_loaded_quickly_answers_exactly_as_rasas_own_load(trained):
    done = subprocess.run([sys.executable, "-c", COMPARE], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers["quick"] == answers["rasa"]
    intents = [parsed[0] for parsed in answers["quick"]]
    assert intents[:2] == ["opening_hours", "passport"], intents  # a real model, not an empty one
