"""Retraining from the dashboard. A new model is trained in a child process (the bot keeps
answering meanwhile) into a kept version, judged against the live model on the held-out sentences
that no model is trained on (heldout/<lang>.yml), per intent, and switched in only if it is not
worse beyond `nlu.max_heldout_drop`, or if a trainer says so. A trainer can also put any kept
version back. One job at a time; the page polls its progress, named from the first second."""

import asyncio
import datetime as dt
import functools
import logging
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Awaitable, Callable, Dict, List, Optional, Tuple

from voicebot import procs
from voicebot.config import Installation
from voicebot.dialogue.backends import LocalRasa
from voicebot.dialogue.runtime import Dialogue, clean_utterance
from voicebot.dialogue.training import fingerprint, load_heldout
from voicebot.dialogue.versions import ModelVersion, Versions

logger = logging.getLogger(__name__)
EPOCH = re.compile(rb"Epochs:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)")
# Before the first epoch Rasa reads the data and builds features: about this share of the whole.
PREPARING_SHARE = 0.3
FINISHED = ("done", "failed", "discarded")


@dataclass
class Evaluation:
    """A model's intents for sentences whose intent is known: how many it gets right, per intent."""

    examples: int = 0
    correct: int = 0
    per_intent: Dict[str, List[int]] = field(default_factory=dict)  # intent: [right, of]
    wrong: List[dict] = field(default_factory=list)  # {text, expected, got}

    @property
    def accuracy(self) -> Optional[float]:
        return round(self.correct / self.examples, 3) if self.examples else None


def needs_confirmation(live: Evaluation, candidate: Evaluation, max_drop: float) -> bool:
    """Whether the new model is worse than the live one beyond the margin on the held-out set."""
    if live.accuracy is None or candidate.accuracy is None:
        return False
    return candidate.accuracy < live.accuracy - max_drop


@dataclass
class RetrainJob:
    lang: str
    by: str
    phase: str = "preparing"  # preparing | training | evaluating | waiting | switching | done | failed | discarded
    progress: float = 0.0
    detail: str = "reading the examples"
    remaining_s: Optional[float] = None
    live: Optional[Evaluation] = None  # held-out sentences, the live model
    candidate: Optional[Evaluation] = None  # held-out sentences, the new model
    learnt: Optional[Evaluation] = None  # what trainers labelled (now training data), the new model
    version: Optional[str] = None
    try_first: bool = False  # a trainer tries the new model before it goes live
    started: float = field(default_factory=time.time)
    seconds: Optional[float] = None

    def as_dict(self) -> dict:
        data = asdict(self)
        for name in ("live", "candidate", "learnt"):
            evaluation = getattr(self, name)
            if evaluation:
                data[name]["accuracy"] = evaluation.accuracy
        return data


class Retrainer:
    def __init__(self, inst: Installation, dialogue: Dialogue):
        self.inst, self.dialogue = inst, dialogue
        self.job: Optional[RetrainJob] = None
        # Held here: the loop keeps only a weak reference to a task, and a collected one would
        # leave the job where it was for ever.
        self._task: Optional[asyncio.Future] = None
        self._decision: Optional[asyncio.Future] = None
        self.candidate: Optional[Dialogue] = None  # with the new model, while it waits for a decision

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.phase not in FINISHED

    def start(self, lang: str, labelled: List[Tuple[str, str]], by: str, try_first: bool = False) -> RetrainJob:
        """`labelled`: (text, intent) pairs trainers assigned, shown as learnt or not. `try_first`:
        the new model waits for a trainer's decision, and can be tried meanwhile."""
        return self._begin(RetrainJob(lang, by, try_first=try_first), lambda job: self._retrain(job, labelled))

    def roll_back(self, lang: str, version_id: str, by: str) -> RetrainJob:
        """Put a kept version back live."""
        Versions(self.inst, lang).get(version_id)  # refused at once if there is no such version
        job = RetrainJob(lang, by, phase="switching", detail=f"back to the model of {version_id}", version=version_id)
        return self._begin(job, self._switch)

    def decide(self, switch: bool) -> None:
        """A trainer's answer to a new model that is worse on the held-out sentences."""
        if self.job is None or self.job.phase != "waiting" or self._decision is None or self._decision.done():
            raise RuntimeError("no new model is waiting for a decision")
        self._decision.set_result(switch)

    def _begin(self, job: RetrainJob, work: Callable[[RetrainJob], Awaitable[None]]) -> RetrainJob:
        if self.running:
            raise RuntimeError(f"the {self.job.lang} model is being retrained or switched already")
        self.job = job
        self._task = asyncio.ensure_future(self._guarded(job, work))
        return job

    async def _guarded(self, job: RetrainJob, work) -> None:
        try:
            await work(job)
        except Exception as error:
            logger.exception("retraining or switching the %s model failed", job.lang)
            job.phase, job.detail = "failed", str(error)
        job.seconds = round(time.time() - job.started, 1)

    async def _retrain(self, job: RetrainJob, labelled: List[Tuple[str, str]]) -> None:
        versions = Versions(self.inst, job.lang)
        loop = asyncio.get_running_loop()
        inputs = await loop.run_in_executor(None, fingerprint, self.inst, job.lang)
        job.version = versions.new_id()
        trained_in = await self._train(job, versions)
        job.phase, job.progress = "evaluating", 1.0
        job.detail, job.remaining_s = "the live model and the new one on the held-out sentences", None
        from voicebot.dialogue.action_server import endpoint
        from voicebot.dialogue.quick_load import load_agent

        candidate = LocalRasa(await loop.run_in_executor(None, functools.partial(
            load_agent, str(versions.path(job.version)), action_endpoint=endpoint(self.dialogue.action_server_url))))

        def candidate_parse(text: str) -> Awaitable[dict]:
            return candidate.parse(clean_utterance(text))

        heldout = await loop.run_in_executor(None, load_heldout, self.inst, job.lang)
        job.live = await self._evaluate(lambda text: self.dialogue.parse(job.lang, text), heldout)
        job.candidate = await self._evaluate(candidate_parse, heldout)
        job.learnt = await self._evaluate(candidate_parse, [(intent, text) for text, intent in labelled])
        versions.save(ModelVersion(job.version, job.lang, job.by, _now(), inputs, job.candidate.accuracy, trained_in))
        worse = needs_confirmation(job.live, job.candidate, self.inst.settings.nlu.max_heldout_drop)
        if worse or job.try_first:
            job.phase = "waiting"
            job.detail = (f"the new model gets {job.candidate.accuracy:.0%} of the held-out sentences right, the "
                          f"live one {job.live.accuracy:.0%}: " if worse else "try it, then ") + \
                "switch to it, or keep the live one"
            self.candidate = self.dialogue.with_model(job.lang, candidate)
            self._decision = loop.create_future()
            try:
                switch = await self._decision
            finally:
                self.candidate = None
            if not switch:
                job.phase, job.detail = "discarded", "the live model stays; the new one is kept for later"
                return
        job.phase, job.detail = "switching", "to the new model"
        await self._switch(job)

    async def _switch(self, job: RetrainJob) -> None:
        # A copy of some 20 MB, or two: off the loop, which answers callers meanwhile.
        await asyncio.get_running_loop().run_in_executor(None, Versions(self.inst, job.lang).switch_to, job.version)
        await self.dialogue.load_new_model(job.lang)
        job.phase, job.detail = "done", f"the model of {job.version} is live"

    async def _train(self, job: RetrainJob, versions: Versions) -> float:
        """Train into the new version's file; the progress is the epochs, and before the first
        one (Rasa reads the data and builds features, a minute or so) the time the last training
        took. Returns the seconds it took."""
        expected = versions.expected_seconds()
        config = ["--config", str(self.inst.settings_file)] if self.inst.settings_file else []
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        # Started and read on threads, not with the loop's own subprocess support: uvloop runs
        # Python in the forked child of this threaded process, which can hang there and with it
        # the loop that answers callers (procs.start).
        process = await loop.run_in_executor(None, functools.partial(
            procs.start, [sys.executable, "-m", "voicebot.cli", *config, "train", "--lang", job.lang,
                          "--candidate", str(versions.path(job.version))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        output: "asyncio.Queue[bytes]" = asyncio.Queue()
        threading.Thread(target=_pump, args=(process.stdout, loop, output), name="retrain-output", daemon=True).start()
        job.phase, job.detail = "training", "preparing the data and its features"
        tail, epochs = b"", None
        while True:
            try:
                chunk = await asyncio.wait_for(output.get(), 1.0)
            except asyncio.TimeoutError:
                chunk = None
            if chunk == b"":
                break
            tail = (tail + (chunk or b""))[-4096:]
            epochs = (EPOCH.findall(tail) or [None])[-1] or epochs
            _show_progress(job, time.monotonic() - started, expected, epochs)
        if await loop.run_in_executor(None, process.wait) != 0 or not versions.path(job.version).exists():
            last = tail.decode(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError("training failed: " + (last[0] if last else "no output"))
        return round(time.monotonic() - started, 1)

    async def _evaluate(self, parse: Callable[[str], Awaitable[dict]], cases: List[Tuple[str, str]]) -> Evaluation:
        """`cases`: (intent, text) pairs."""
        evaluation = Evaluation()
        for expected, text in cases:
            got = (await parse(text))["intent"]["name"]
            right = got == expected
            evaluation.examples += 1
            evaluation.correct += right
            counts = evaluation.per_intent.setdefault(expected, [0, 0])
            counts[0] += right
            counts[1] += 1
            if not right:
                evaluation.wrong.append({"text": text, "expected": expected, "got": got})
        return evaluation


def _pump(stream, loop: asyncio.AbstractEventLoop, output: "asyncio.Queue[bytes]") -> None:
    """Hands a child's output to the loop as it comes, then b"" at its end."""
    with stream:
        while True:
            chunk = stream.read1(4096)
            loop.call_soon_threadsafe(output.put_nowait, chunk)
            if not chunk:
                return


def _show_progress(job: RetrainJob, elapsed: float, expected: Optional[float], epochs) -> None:
    if epochs:
        done, total = map(int, epochs)
        job.detail = f"epoch {done} of {total}"
        job.progress = PREPARING_SHARE + (1 - PREPARING_SHARE) * done / total
    elif expected:
        job.progress = min(PREPARING_SHARE, elapsed / expected)
    if expected:
        job.remaining_s = max(0.0, round(expected - elapsed))
    elif epochs and job.progress > PREPARING_SHARE:
        job.remaining_s = round(elapsed * (1 - job.progress) / job.progress)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
