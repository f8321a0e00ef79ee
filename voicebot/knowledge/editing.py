"""Trainers' edits of what the bot knows, written into the same files a programmer edits
(topics.yml, tenants/<line>.yml, nlu_data/<language>/), with their comments and layout kept.
Each edit is checked by loading the whole installation again, as the bot will: one that does
not load is undone and refused with the loader's message, which names the file and key. The
action server reads the files again within a second, so an answer is live without retraining;
examples need a retraining."""

import io
import os
import threading
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from voicebot.config import ConfigError, Installation, load_installation
from voicebot.dialogue.examples import add_examples, examples_by_intent, new_sentences, normalise
from voicebot.dialogue.training import heldout_path, nlu_files

_edits = threading.Lock()  # one edit at a time: each reads, writes and checks its files whole


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments, order and block styles stay as written
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _read(path: Path):
    return _yaml().load(path.read_text(encoding="utf-8"))


def _line_files(inst: Installation) -> Iterator[Tuple[Path, dict]]:
    """The installation's line files in name order, each with what it holds."""
    for path in sorted(inst.path(inst.settings.tenants_dir).glob("*.yml")):
        yield path, _read(path) or {}


def _dump(data) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _write(path: Path, text: str) -> None:
    """Whole or not at all: the action server may read the file at any moment."""
    swap = path.with_name(f".{path.name}.swap")
    swap.write_text(text, encoding="utf-8")
    os.replace(swap, path)


class TopicEditor:
    def __init__(self, inst: Installation):
        self.settings_file = inst.settings_file

    def installation(self) -> Installation:
        """The installation as its files say now (the running process loaded it at start)."""
        return load_installation(self.settings_file)

    def _checked(self, paths: List[Path], change: Callable[[], None]) -> Installation:
        """Apply `change` to `paths`; undo it if the installation then does not load."""
        with _edits:
            before = {path: path.read_bytes() if path.exists() else None for path in paths}
            try:
                change()
                return self.installation()
            except Exception:
                for path, content in before.items():
                    if content is None:
                        path.unlink(missing_ok=True)
                    else:
                        _write(path, content.decode("utf-8"))
                raise

    def create(self, topic_id: str, names: Dict[str, str], default: Optional[dict]) -> Installation:
        """A new topic with its names; lines that say nothing of it do what `default` says."""
        inst = self.installation()
        if topic_id in inst.topics:
            raise ConfigError(f"{inst.topics_file}: topics.{topic_id}: there is a topic {topic_id!r} already")

        def change():
            data = (_read(inst.topics_file) if inst.topics_file.exists() else None) or {}
            if data.get("topics") is None:
                data["topics"] = {}
            data["topics"][topic_id] = {"names": dict(names), **({"default": default} if default else {})}
            _write(inst.topics_file, _dump(data))

        return self._checked([inst.topics_file], change)

    def set_behaviour(self, topic_id: str, line_id: str, behaviour: Optional[dict],
                      municipality: Optional[str] = None) -> Installation:
        """What line `line_id` (or one `municipality` of a shared line) does with the topic; None:
        what the topic's default (for a municipality: the line's shared behaviour) says."""
        inst = self.installation()
        self._known(inst, topic_id)
        if municipality is not None and municipality not in inst.tenant(line_id).municipalities:
            raise ConfigError(f"line {line_id!r} serves no municipality {municipality!r}")
        path = self.line_file(inst, line_id)

        def change():
            data = _read(path)
            holder = data["municipalities"][municipality] if municipality else data
            if behaviour is None:
                (holder.get("topics") or {}).pop(topic_id, None)
            else:
                if holder.get("topics") is None:
                    holder["topics"] = {}
                answer_only = set(behaviour) == {"answer"}
                holder["topics"][topic_id] = behaviour["answer"] if answer_only else dict(behaviour)
            _write(path, _dump(data))

        return self._checked([path], change)

    def add_examples(self, topic_id: str, lang: str, texts: List[str]) -> List[str]:
        """The texts that were new; one that is an example of another intent is refused."""
        inst = self.installation()
        self._known(inst, topic_id)
        with _edits:
            return add_examples(inst, lang, topic_id, texts)

    def remove_example(self, topic_id: str, lang: str, text: str) -> bool:
        """Take `text` out of the topic's examples, in whichever file of the language it is."""
        inst = self.installation()
        self._known(inst, topic_id)
        wanted = normalise(text)
        with _edits:
            for path in nlu_files(inst, lang):
                data = _read(path)
                blocks = (data or {}).get("nlu") or []
                for block in blocks:
                    if block.get("intent") != topic_id or "examples" not in block:
                        continue
                    lines = str(block["examples"]).splitlines(keepends=True)
                    kept = [line for line in lines if normalise(line.strip()[1:]) != wanted]
                    if len(kept) != len(lines):
                        if kept:
                            block["examples"] = LiteralScalarString("".join(kept))
                        else:  # Rasa warns of an intent block without examples
                            blocks.remove(block)
                        _write(path, _dump(data))
                        return True
        return False

    def add_heldout(self, topic_id: str, lang: str, texts: List[str]) -> List[str]:
        """Held-out sentences of the topic (heldout/<lang>.yml), which judge every new model and
        which no model may learn from: a training example is refused. Returns the new ones."""
        inst = self.installation()
        self._known(inst, topic_id)
        path = heldout_path(inst, lang)
        trained = {normalise(t) for texts_of in examples_by_intent(inst, lang).values() for t in texts_of}
        with _edits:
            data = (_read(path) if path.exists() else None) or {}
            held = {normalise(str(t)): intent for intent, held_texts in data.items() for t in held_texts or []}
            added = new_sentences(texts, topic_id, held, trained,
                                  f"{path}: {{text}} is a training example; a held-out sentence must be one no model "
                                  "learns from", f"{path}: {{text}} is held out for {{intent}} already")
            if added:
                if data.get(topic_id) is None:
                    data[topic_id] = []
                data[topic_id].extend(added)
                path.parent.mkdir(parents=True, exist_ok=True)
                _write(path, _dump(data))
            return added

    def remove_heldout(self, topic_id: str, lang: str, text: str) -> bool:
        path = heldout_path(self.installation(), lang)
        with _edits:
            data = (_read(path) if path.exists() else None) or {}
            held = data.get(topic_id) or []
            kept = [t for t in held if normalise(str(t)) != normalise(text)]
            if len(kept) == len(held):
                return False
            held[:] = kept
            _write(path, _dump(data))
            return True

    @staticmethod
    def written(inst: Installation) -> Dict[Tuple[str, Optional[str]], set]:
        """For each line, and each municipality of a shared line (line id, municipality or None):
        the topics its own file says something about; the rest follow their default (a
        municipality: the line's shared behaviour). Each line's file is read once."""
        found = {}
        for _, data in _line_files(inst):
            if data.get("id") not in inst.tenants:
                continue
            found[data["id"], None] = set(data.get("topics") or {})
            for municipality, holder in (data.get("municipalities") or {}).items():
                found[data["id"], municipality] = set((holder or {}).get("topics") or {})
        return found

    @staticmethod
    def line_file(inst: Installation, line_id: str) -> Path:
        inst.tenant(line_id)  # a clear error for a line there is not
        path = next((path for path, data in _line_files(inst) if data.get("id") == line_id), None)
        if path is None:
            raise ConfigError(f"{inst.path(inst.settings.tenants_dir)}: no file for line {line_id!r}")
        return path

    @staticmethod
    def _known(inst: Installation, topic_id: str) -> None:
        if topic_id not in inst.topics:
            raise ConfigError(f"{inst.topics_file}: no topic {topic_id!r}")
