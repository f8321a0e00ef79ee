"""How well the NLU understands: cross-validation per language, out-of-scope false accepts,
and parse latency. Used by `voicebot test nlu` and `voicebot bench nlu`."""

import asyncio
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from voicebot.config import Installation
from voicebot.dialogue.training import load_nlu, write_config


@dataclass
class NluReport:
    language: str
    folds: int
    examples: int
    accuracy: float
    macro_f1: float
    fallback_rate: float
    oos_false_accept: float
    per_intent_f1: Dict[str, float]
    confusions: List[Tuple[str, str, int]]
    heldout_oos_false_accept: Optional[float] = None
    heldout_oos_size: int = 0
    heldout_oos_accepted: List[Tuple[str, str]] = field(default_factory=list)  # (text, intent)
    latency_ms: Dict[str, float] = field(default_factory=dict)

    def lines(self) -> List[str]:
        out = [
            f"language {self.language}: {self.examples} examples, {self.folds}-fold cross-validation",
            f"  intent accuracy      {self.accuracy:.3f}",
            f"  macro F1             {self.macro_f1:.3f}",
            f"  not understood       {self.fallback_rate:.3f} (share sent to the fallback)",
            f"  out-of-scope answered as a routine intent: {self.oos_false_accept:.3f} (cross-validated)",
        ]
        if self.heldout_oos_false_accept is not None:
            out.append(f"  out-of-scope answered as a routine intent: {self.heldout_oos_false_accept:.3f} (held-out set: "
                       f"{len(self.heldout_oos_accepted)} of {self.heldout_oos_size})")
            out += [f"    {text!r} -> {intent}" for text, intent in self.heldout_oos_accepted]
        if self.latency_ms:
            out.append(f"  parse latency        p50 {self.latency_ms['p50']:.1f} ms, p95 {self.latency_ms['p95']:.1f} ms")
        out.append("  per-intent F1:")
        for intent, f1 in sorted(self.per_intent_f1.items(), key=lambda kv: kv[1]):
            out.append(f"    {intent:22s} {f1:.3f}")
        out.append("  worst confusions (true -> predicted: count):")
        for true, predicted, count in self.confusions or [("none", "none", 0)]:
            out.append(f"    {true} -> {predicted}: {count}")
        return out


def _folds(labels: Sequence[str], folds: int, seed: int) -> List[Tuple[List[int], List[int]]]:
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(list(a), list(b)) for a, b in splitter.split(list(range(len(labels))), list(labels))]


async def _parse_all(model: str, texts: Sequence[str]) -> List[dict]:
    from voicebot.dialogue.quick_load import load_agent

    agent = load_agent(model)
    return [await agent.parse_message(text) for text in texts]


def _train_fold(inst: Installation, lang: str, examples, work: Path, name: str, epochs: Optional[int]) -> str:
    from rasa.model_training import train_nlu
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.training_data import TrainingData

    data_path = work / f"{name}.yml"
    data_path.write_text(RasaYAMLWriter().dumps(TrainingData(training_examples=list(examples))), encoding="utf-8")
    config = write_config(inst, lang, work / name, epochs=epochs)
    model = train_nlu(str(config), str(data_path), str(work / "models"), fixed_model_name=name)
    if not model:
        raise RuntimeError(f"training fold {name} for {lang} failed")
    return model


def cross_validate(inst: Installation, lang: str, folds: int = 5, epochs: Optional[int] = None,
                   report: Callable[[str], None] = print) -> NluReport:
    from sklearn.metrics import f1_score

    examples = load_nlu(inst, lang).intent_examples
    labels = [e.get("intent") for e in examples]
    true: List[str] = []
    predicted: List[str] = []
    with tempfile.TemporaryDirectory(prefix=f"voicebot-cv-{lang}-") as tmp:
        for k, (train_idx, test_idx) in enumerate(_folds(labels, folds, inst.settings.nlu.random_seed), 1):
            report(f"{lang}: fold {k}/{folds}: training on {len(train_idx)}, testing on {len(test_idx)}")
            model = _train_fold(inst, lang, [examples[i] for i in train_idx], Path(tmp), f"fold{k}", epochs)
            parsed = asyncio.run(_parse_all(model, [examples[i].get("text") for i in test_idx]))
            true += [labels[i] for i in test_idx]
            predicted += [p["intent"]["name"] for p in parsed]
    intents = sorted(set(labels))
    per_intent = f1_score(true, predicted, labels=intents, average=None, zero_division=0)
    oos = [p for t, p in zip(true, predicted) if t == "out_of_scope"]
    confusions = Counter((t, p) for t, p in zip(true, predicted) if t != p).most_common(8)
    return NluReport(
        language=lang, folds=folds, examples=len(examples),
        accuracy=sum(t == p for t, p in zip(true, predicted)) / len(true),
        macro_f1=float(f1_score(true, predicted, labels=intents, average="macro", zero_division=0)),
        fallback_rate=predicted.count("nlu_fallback") / len(predicted),
        oos_false_accept=sum(p in inst.routine_intents for p in oos) / max(len(oos), 1),
        per_intent_f1={i: float(f) for i, f in zip(intents, per_intent)},
        confusions=[(t, p, n) for (t, p), n in confusions],
    )


def heldout_and_latency(model: str, oos_texts: Sequence[str], probe_texts: Sequence[str], routine: Sequence[str],
                        rounds: int = 3) -> Tuple[List[Tuple[str, str]], Dict[str, float]]:
    """Held-out out-of-scope texts answered as a `routine` intent (text, intent), and in-process
    parse latency."""

    async def run():
        from voicebot.dialogue.quick_load import load_agent

        agent = load_agent(model)
        oos = [await agent.parse_message(t) for t in oos_texts]
        timings = []
        for _ in range(rounds):
            for text in probe_texts:
                started = time.perf_counter()
                await agent.parse_message(text)
                timings.append((time.perf_counter() - started) * 1000)
        return oos, timings

    oos, timings = asyncio.run(run())
    accepted = [(t, p["intent"]["name"]) for t, p in zip(oos_texts, oos) if p["intent"]["name"] in routine]
    quantiles = statistics.quantiles(timings, n=100)
    return accepted, {"p50": quantiles[49], "p95": quantiles[94], "n": len(timings)}
