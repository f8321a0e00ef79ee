"""Train one Rasa model per language, only when its inputs changed."""

import functools
import hashlib
import logging
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import yaml

from voicebot.config import ConfigError, Installation
from voicebot.intents import BUILT_IN_INTENTS

logger = logging.getLogger(__name__)

# What the models are made from beside the NLU data and stories, at an installation's root.
TRAINING_FILES = ("domain.yml", "config.yml", "topics.yml")


def nlu_files(inst: Installation, lang: str) -> List[Path]:
    files = sorted((inst.root / "nlu_data" / lang).glob("**/*.yml"))
    if not files:
        raise ConfigError(f"{inst.root / 'nlu_data' / lang}: no NLU training data for language {lang!r}")
    return files


def heldout_path(inst: Installation, lang: str) -> Path:
    """Sentences per intent that no model is trained on (heldout/<lang>.yml): how well a model
    understands what it has not seen. Trainers keep it beside the training data."""
    return inst.root / "heldout" / f"{lang}.yml"


def load_heldout(inst: Installation, lang: str) -> List[Tuple[str, str]]:
    """(intent, sentence) pairs of the language's held-out set, in file order; none without one."""
    path = heldout_path(inst, lang)
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected intents, each with a list of sentences")
    return [(intent, str(text)) for intent, texts in data.items() for text in (texts or [])]


def load_nlu(inst: Installation, lang: str):
    """All NLU examples of a language as one Rasa TrainingData (read-only: it is shared). Read
    again only when a file changed, since a topic's page reads every language's."""
    stamps = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in nlu_files(inst, lang))
    return _load_nlu_files(stamps)


@functools.lru_cache(maxsize=16)
def _load_nlu_files(stamps: Tuple[Tuple[str, int, int], ...]):
    from rasa.shared.nlu.training_data.loading import load_data

    parts = [load_data(path) for path, _, _ in stamps]
    return parts[0].merge(*parts[1:])


def check_examples(inst: Installation, lang: str) -> List[str]:
    """Refuse to train on examples of an intent that is neither built in nor a topic (the bot would
    recognise it and have nothing to do) and the same utterance under two intents (which teaches
    the model to guess). Returns a warning for each topic without examples in the language: it
    cannot be recognised there, but a trainer adding a topic one language at a time must not
    stop the other languages' training."""
    folder, known = inst.root / "nlu_data" / lang, set(BUILT_IN_INTENTS) | set(inst.topics)
    seen: Dict[str, str] = {}
    for example in load_nlu(inst, lang).intent_examples:
        text, intent = " ".join(example.get("text").lower().split()), example.get("intent")
        if intent not in known:
            raise ConfigError(f"{folder}: intent {intent!r} has examples but is no topic in {inst.topics_file}:"
                              f" add it there, with what each line does with it")
        if seen.setdefault(text, intent) != intent:
            raise ConfigError(f"{folder}: {text!r} is an example of both "
                              f"{seen[text]!r} and {intent!r}; keep it under one intent")
    return [f"{folder}: no examples of the topic {topic!r} in {lang!r}: callers in this language cannot be "
            "understood on it" for topic in sorted(set(inst.topics) - set(seen.values()))]


def write_topics(inst: Installation, directory: Path) -> Tuple[Path, Path]:
    """domain.yml with every topic as an intent, and a rule per topic (action_topic), for training."""
    domain = yaml.safe_load((inst.root / "domain.yml").read_text(encoding="utf-8"))
    domain["intents"] = list(domain["intents"]) + list(inst.topics)
    rules = {"version": domain["version"],
             "rules": [{"rule": f"topic {t}", "steps": [{"intent": t}, {"action": "action_topic"}]} for t in inst.topics]}
    directory.mkdir(parents=True, exist_ok=True)
    domain_path, rules_path = directory / "domain.yml", directory / "topic_rules.yml"
    domain_path.write_text(yaml.safe_dump(domain, allow_unicode=True, sort_keys=False), encoding="utf-8")
    rules_path.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return domain_path, rules_path


def story_files(inst: Installation) -> List[Path]:
    return sorted((inst.root / "stories").glob("**/*.yml"))


def model_path(inst: Installation, lang: str) -> Path:
    return inst.models_dir / f"{lang}.tar.gz"


def fingerprint_path(inst: Installation, lang: str) -> Path:
    return inst.models_dir / f"{lang}.fingerprint"


def seconds_path(inst: Installation, lang: str) -> Path:
    """How long `voicebot train` took for the live model: what the first retraining can expect."""
    return inst.models_dir / f"{lang}.seconds"


def live_version_path(inst: Installation, lang: str) -> Path:
    """Which kept version (voicebot.dialogue.versions) the live model is; none after `voicebot train`."""
    return inst.models_dir / f"{lang}.version"


def pipeline_config(inst: Installation, lang: str, epochs: Optional[int] = None) -> dict:
    """config.yml with this language, the installation's fallback threshold and seed."""
    config = yaml.safe_load((inst.root / "config.yml").read_text(encoding="utf-8"))
    config["language"] = lang
    nlu = inst.settings.nlu
    for component in config["pipeline"]:
        if component["name"] == "FallbackClassifier":
            component["threshold"] = nlu.fallback_threshold
        if component["name"] == "DIETClassifier":
            component["random_seed"] = nlu.random_seed
            if epochs:
                component["epochs"] = epochs
    return config


def write_config(inst: Installation, lang: str, directory: Path, epochs: Optional[int] = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(pipeline_config(inst, lang, epochs), sort_keys=False), encoding="utf-8")
    return path


def fingerprint(inst: Installation, lang: str) -> str:
    import rasa

    digest = hashlib.sha256(f"rasa {rasa.__version__}\n".encode())
    digest.update(yaml.safe_dump(pipeline_config(inst, lang)).encode())
    digest.update(f"topics {sorted(inst.topics)}\n".encode())  # their answers change without retraining
    for path in [inst.root / "domain.yml", *nlu_files(inst, lang), *story_files(inst)]:
        digest.update(str(path.relative_to(inst.root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def is_stale(inst: Installation, lang: str) -> bool:
    marker = fingerprint_path(inst, lang)
    return not (model_path(inst, lang).exists() and marker.exists()
                and marker.read_text().strip() == fingerprint(inst, lang))


def train_language(inst: Installation, lang: str, into: Optional[Path] = None) -> Path:
    """Train the language's live model, or a candidate `into` a .tar.gz path, leaving the live one
    alone (the dashboard's retraining: voicebot.dialogue.versions)."""
    from rasa.model_training import train

    for warning in check_examples(inst, lang):
        logger.warning(warning)
    inputs = fingerprint(inst, lang)  # before training: edits made meanwhile must leave it stale
    started = time.monotonic()
    build = inst.models_dir / ".build" / lang
    config = write_config(inst, lang, build)
    domain, topic_rules = write_topics(inst, build)
    files = [str(p) for p in [*nlu_files(inst, lang), *story_files(inst), topic_rules]]
    output, name = (into.parent, into.name[:-len(".tar.gz")]) if into else (inst.models_dir, lang)
    result = train(domain=str(domain), config=str(config), training_files=files,
                   output=str(output), fixed_model_name=name, force_training=True)
    if result.code != 0 or not result.model:
        raise RuntimeError(f"training the {lang} model failed (rasa exit code {result.code})")
    if into is None:
        fingerprint_path(inst, lang).write_text(inputs)
        seconds_path(inst, lang).write_text(f"{time.monotonic() - started:.1f}")
        live_version_path(inst, lang).unlink(missing_ok=True)
    return Path(result.model)


def train_stale(inst: Installation, languages: Iterable[str], force: bool = False,
                report: Callable[[str], None] = print) -> List[str]:
    """Train the languages whose data changed; returns the ones trained."""
    languages = list(languages)
    todo = [lang for lang in languages if force or is_stale(inst, lang)]
    for lang in languages:
        if lang not in todo:
            report(f"{lang}: model is up to date ({model_path(inst, lang).relative_to(inst.root)})")
    for number, lang in enumerate(todo, start=1):
        report(f"[{number}/{len(todo)}] training the {lang} model ...")
        started = time.monotonic()
        path = train_language(inst, lang)
        report(f"[{number}/{len(todo)}] {lang}: done in {time.monotonic() - started:.0f} s -> {path.name}")
    return todo
