"""Retraining from the dashboard: evaluate the running model on what trainers labelled, train
the language in a child process (the bot keeps answering meanwhile), load the new model into
the running bot, evaluate again. One job at a time; the page polls its progress."""

import asyncio
import logging
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

from voicebot.config import Installation
from voicebot.dialogue.runtime import Dialogue
from voicebot.dialogue.training import model_path

logger = logging.getLogger(__name__)
EPOCH = re.compile(rb"Epochs:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)")


@dataclass
class Evaluation:
    """The model's intents for the labelled utterances: how many it gets right."""

    examples: int
    correct: int
    wrong: List[dict] = field(default_factory=list)  # {text, expected, got}

    @property
    def accuracy(self) -> Optional[float]:
        return round(self.correct / self.examples, 3) if self.examples else None


@dataclass
class RetrainJob:
    lang: str
    phase: str = "evaluating"  # evaluating | training | loading | done | failed
    progress: float = 0.0
    detail: str = ""
    before: Optional[Evaluation] = None
    after: Optional[Evaluation] = None
    started: float = field(default_factory=time.time)
    seconds: Optional[float] = None

    def as_dict(self) -> dict:
        data = asdict(self)
        for name in ("before", "after"):
            evaluation = getattr(self, name)
            if evaluation:
                data[name]["accuracy"] = evaluation.accuracy
        return data


class Retrainer:
    def __init__(self, inst: Installation, dialogue: Dialogue):
        self.inst, self.dialogue = inst, dialogue
        self.job: Optional[RetrainJob] = None
        self._task: Optional[asyncio.Future] = None

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.phase not in ("done", "failed")

    def start(self, lang: str, labelled: List[Tuple[str, str]]) -> RetrainJob:
        """`labelled`: (text, intent) pairs trainers assigned, the yardstick before and after."""
        if self.running:
            raise RuntimeError(f"the {self.job.lang} model is being retrained already")
        self.job = RetrainJob(lang)
        # Held here: the loop keeps only a weak reference to a task, and a collected one would
        # leave the job "evaluating" for ever.
        self._task = asyncio.ensure_future(self._run(self.job, labelled))
        return self.job

    async def _run(self, job: RetrainJob, labelled: List[Tuple[str, str]]) -> None:
        try:
            job.before = await self._evaluate(job.lang, labelled)
            job.phase = "training"
            await self._train(job)
            job.phase, job.progress = "loading", 1.0
            await self.dialogue.load_new_model(job.lang)
            job.after = await self._evaluate(job.lang, labelled)
            job.phase = "done"
        except Exception as error:
            logger.exception("retraining %s failed", job.lang)
            job.phase, job.detail = "failed", str(error)
        job.seconds = round(time.time() - job.started, 1)

    async def _train(self, job: RetrainJob) -> None:
        config = ["--config", str(self.inst.settings_file)] if self.inst.settings_file else []
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voicebot.cli", *config, "train", "--lang", job.lang,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        tail = b""
        while chunk := await process.stdout.read(4096):
            tail = (tail + chunk)[-4096:]
            epochs = EPOCH.findall(tail)
            if epochs:
                done, total = map(int, epochs[-1])
                job.progress = done / total
                job.detail = f"epoch {done} of {total}"
        if await process.wait() != 0 or not model_path(self.inst, job.lang).exists():
            raise RuntimeError("training failed: " + tail.decode(errors="replace").strip().splitlines()[-1:][0]
                               if tail.strip() else "training failed")

    async def _evaluate(self, lang: str, labelled: List[Tuple[str, str]]) -> Evaluation:
        evaluation = Evaluation(len(labelled), 0)
        for text, expected in labelled:
            got = (await self.dialogue.parse(lang, text))["intent"]["name"]
            if got == expected:
                evaluation.correct += 1
            else:
                evaluation.wrong.append({"text": text, "expected": expected, "got": got})
        return evaluation
