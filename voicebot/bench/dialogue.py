"""`voicebot bench dialogue`: multi-turn conversations through the real dialogue (the trained
models and the action server), each at its own clock instant, judged turn by turn.

A scenario file (benchmarks/dialogue/<lang>.yml) is a list of:

    - id: en-named-easter-monday
      category: named_day
      line: demo-city
      at: "2027-03-24T10:00+00:00"
      turns:
        - say: is the town hall open on easter monday
          expect: answer                 # or a list, for two requests in one turn
          must: ["closed", "29 March"]   # facts the reply must state (case-insensitive)
          must_not: ["open today"]       # wrong facts: never said

A scenario is correct when every turn gets the expected outcome and its facts; wrong when the
bot states a wrong fact or hangs up where it should not (an unexpected handoff is partly right:
a person takes over); partly otherwise.
"""

import asyncio
import datetime as dt
import statistics
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from voicebot.config import ConfigError, Installation, Tenant
from voicebot.dialogue.runtime import BotReply, Dialogue
from voicebot.knowledge.phrasebook import phrasebook

# Replies recognised by their phrase: the outcome label is the phrase's key.
LABELLED_PHRASES = ("rephrase", "out_of_scope", "greet_back", "you_are_welcome", "chitchat",
                    "callback_ask_number", "callback_bad_number", "how_can_i_help")
CALLBACK_OFFERS = ("callback_offer", "callback_offer_now", "callback_offer_topic")
# Outcomes that do not answer as the council would; the others (an hours or address answer, a
# topic's answer) an off-topic question must get none of.
NOT_MUNICIPAL = ("handoff", "goodbye", "callback_offer", *LABELLED_PHRASES)
OFF_TOPIC_DAY = dt.date(2026, 12, 2)  # a Wednesday: every line's offices are open at 10:00


@dataclass
class Turn:
    say: str
    expect: List[str]
    must: List[str] = field(default_factory=list)
    must_not: List[str] = field(default_factory=list)


@dataclass
class Scenario:
    id: str
    category: str
    line: str
    at: dt.datetime
    turns: List[Turn]
    lang: str = ""


@dataclass
class Verdict:
    scenario: Scenario
    grade: str  # correct, partly, wrong
    problems: List[str]
    wrong_facts: List[str]
    turn_ms: List[float]


def load_scenarios(inst: Installation, folder: Path, languages: Sequence[str]) -> List[Scenario]:
    """Every scenario of the languages' files, checked against the installation's lines."""
    scenarios, seen = [], set()
    for lang in languages:
        path = folder / f"{lang}.yml"
        if not path.exists():
            continue
        for n, item in enumerate(yaml.safe_load(path.read_text(encoding="utf-8")) or []):
            where = f"{path}: scenario {n + 1}"
            try:
                scenario = Scenario(
                    id=str(item["id"]), category=str(item["category"]), line=str(item["line"]),
                    at=dt.datetime.fromisoformat(str(item["at"])), lang=lang,
                    turns=[Turn(say=str(t["say"]), expect=_as_list(t["expect"]), must=_as_list(t.get("must")),
                                must_not=_as_list(t.get("must_not"))) for t in item["turns"]])
            except (KeyError, TypeError, ValueError) as error:
                raise ConfigError(f"{where}: {error!r}") from None
            if scenario.at.tzinfo is None:
                raise ConfigError(f"{where} ({scenario.id}): at needs a UTC offset")
            if scenario.id in seen:
                raise ConfigError(f"{where}: id {scenario.id!r} is used twice")
            if inst.tenant(scenario.line).language != lang:
                raise ConfigError(f"{where} ({scenario.id}): line {scenario.line} does not speak {lang}")
            seen.add(scenario.id)
            scenarios.append(scenario)
    return scenarios


def _as_list(value) -> List[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def outcome(reply: BotReply, tenant: Tenant) -> List[str]:
    """What the bot did in a turn, as labels in order: 'handoff', 'goodbye', 'callback_offer', a
    phrase's key, a topic answered, or 'answer' (an hours or address answer)."""
    if reply.handoff:
        return ["handoff"]
    if reply.hangup:
        return ["goodbye"]
    phrases = phrasebook(tenant.language)
    if any(text == phrases.say(key) for text in reply.texts for key in CALLBACK_OFFERS):
        return ["callback_offer"]
    by_text = {phrases.say(key): key for key in LABELLED_PHRASES}
    by_text.update({b.answer: topic for topic, b in tenant.topics.items() if b.answer})
    anything_else = phrases.say("anything_else")
    labels: List[str] = []
    for text in reply.texts:
        label = by_text.get(text, "answer")
        if text != anything_else and (not labels or labels[-1] != label):
            labels.append(label)
    return labels


def judge(scenario: Scenario, replies: List[BotReply], tenant: Tenant, turn_ms: List[float]) -> Verdict:
    """Grade a scenario from the replies to its turns (fewer replies: the bot ended the call)."""
    problems, wrong = [], []
    for n, (turn, reply) in enumerate(zip(scenario.turns, replies), start=1):
        said = " ".join(" ".join(reply.texts).split())
        where = f"turn {n} {turn.say!r}"
        got = outcome(reply, tenant)
        if got != turn.expect:
            problems.append(f"{where}: expected {'+'.join(turn.expect)}, got {'+'.join(got) or 'nothing'}")
            if "goodbye" in got and "goodbye" not in turn.expect:  # a caller lost, not handed on
                wrong.append(f"{where}: hung up: {said!r}")
        for fact in turn.must:
            if fact.lower() not in said.lower():
                problems.append(f"{where}: did not say {fact!r}: {said!r}")
        for fact in turn.must_not:
            if fact.lower() in said.lower():
                wrong.append(f"{where}: said {fact!r}: {said!r}")
    if len(replies) < len(scenario.turns):
        problems.append(f"turns {len(replies) + 1}-{len(scenario.turns)} never asked: the conversation had ended")
    grade = "wrong" if wrong else "partly" if problems else "correct"
    return Verdict(scenario, grade, problems, wrong, turn_ms)


async def play(dialogue: Dialogue, inst: Installation, scenario: Scenario) -> Verdict:
    """One scenario as a fresh conversation; it stops where the bot ends the conversation."""
    tenant = inst.tenant(scenario.line)
    conversation_id = f"bench-{scenario.id}-{uuid.uuid4().hex[:8]}"
    replies, turn_ms = [], []
    try:
        for turn in scenario.turns:
            started = time.perf_counter()
            reply = await dialogue.handle(tenant, conversation_id, turn.say, at=scenario.at)
            turn_ms.append((time.perf_counter() - started) * 1000)
            replies.append(reply)
            if reply.ends_conversation:
                break
    finally:
        dialogue.forget(tenant, conversation_id)
    return judge(scenario, replies, tenant, turn_ms)


def report(verdicts: List[Verdict]) -> List[str]:
    """Figures per language and category, then every wrong fact and every partly right scenario."""
    languages = sorted({v.scenario.lang for v in verdicts})
    by_lang: Dict[str, Counter] = defaultdict(Counter)
    by_category: Dict[str, Dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for v in verdicts:
        by_lang[v.scenario.lang][v.grade] += 1
        by_category[v.scenario.category][v.scenario.lang][v.grade] += 1
    turns = sum(len(v.scenario.turns) for v in verdicts)
    lines = [f"scenarios {len(verdicts)}, turns {turns}",
             f"{'language':<10}{'scenarios':>10}{'correct':>9}{'partly':>8}{'wrong':>7}{'correct %':>11}"]
    for lang in languages + ["all"]:
        counts = sum(by_lang.values(), Counter()) if lang == "all" else by_lang[lang]
        total = sum(counts.values())
        lines.append(f"{lang:<10}{total:>10}{counts['correct']:>9}{counts['partly']:>8}{counts['wrong']:>7}"
                     f"{100 * counts['correct'] / max(total, 1):>10.1f}%")
    lines += ["", "correct per category: " + "  ".join(languages)]
    for category in sorted(by_category):
        cells = [f"{c['correct']}/{sum(c.values())}" for c in (by_category[category][lang] for lang in languages)]
        lines.append(f"  {category:<18}" + "  ".join(f"{cell:>6}" for cell in cells))
    latencies = [ms for v in verdicts for ms in v.turn_ms]
    if len(latencies) >= 2:
        p95 = statistics.quantiles(latencies, n=20)[-1]
        lines += ["", f"turn time ms: p50 {statistics.median(latencies):.0f}, p95 {p95:.0f}"]
    wrong = [v for v in verdicts if v.grade == "wrong"]
    lines += ["", f"wrong facts or callers hung up on: {len(wrong)}"]
    lines += [f"  {v.scenario.id}: {fact}" for v in wrong for fact in v.wrong_facts]
    partly = [v for v in verdicts if v.problems]
    lines += ["", f"scenarios not fully right: {len(partly)}"]
    lines += [f"  {v.scenario.id}: {problem}" for v in partly for problem in v.problems]
    return lines


def run(inst: Installation, languages: Sequence[str], folder: Path, echo: Callable[[str], None],
        off_topic: Optional[Path] = None) -> List[str]:
    """Load the languages' models beside an action server that takes each turn's clock, play
    every scenario, then (from `off_topic`/<lang>/out_of_scope.txt) every held-out off-topic
    question as the first turn of a call; report."""
    from voicebot.clock import PER_TURN_ENV
    from voicebot.dialogue.action_server import ActionServerProcess

    scenarios = load_scenarios(inst, folder, languages)
    if not scenarios:
        raise ConfigError(f"no scenarios for {', '.join(languages)} in {folder}")
    languages = sorted({s.lang for s in scenarios})
    echo(f"{len(scenarios)} scenarios; loading the models for {', '.join(languages)}")
    server = ActionServerProcess(inst.settings_file, env={PER_TURN_ENV: "1"}).start()
    try:
        dialogue = Dialogue(inst, server.url, languages, actions_up=server.is_up).load()
        verdicts = asyncio.run(_play_all(dialogue, inst, scenarios, echo))
        lines = report(verdicts)
        if off_topic:
            lines += ["", f"held-out off-topic questions, each the first turn of a call ({OFF_TOPIC_DAY}, 10:00):"]
            for lang in languages:
                path = off_topic / lang / "out_of_scope.txt"
                questions = [q.strip() for q in path.read_text(encoding="utf-8").splitlines() if q.strip()]
                tenant = next(t for t in sorted(inst.tenants.values(), key=lambda t: t.id) if t.language == lang)
                lines += off_topic_report(lang, asyncio.run(_ask_off_topic(dialogue, tenant, questions)))
    finally:
        server.stop()
    return lines


async def _play_all(dialogue: Dialogue, inst: Installation, scenarios: List[Scenario],
                    echo: Callable[[str], None]) -> List[Verdict]:
    verdicts = []
    for scenario in scenarios:
        verdict = await play(dialogue, inst, scenario)
        if verdict.grade != "correct":
            echo(f"{verdict.grade}: {scenario.id}")
        verdicts.append(verdict)
    return verdicts


async def _ask_off_topic(dialogue: Dialogue, tenant: Tenant, questions: List[str]) -> List[Tuple[str, List[str]]]:
    """What the bot did with each question, asked as a new call's first turn."""
    at = dt.datetime.combine(OFF_TOPIC_DAY, dt.time(10), tenant.zone)
    outcomes = []
    for question in questions:
        conversation_id = f"bench-off-topic-{uuid.uuid4().hex[:8]}"
        try:
            reply = await dialogue.handle(tenant, conversation_id, question, at=at)
            outcomes.append((question, outcome(reply, tenant)))
        finally:
            dialogue.forget(tenant, conversation_id)
    return outcomes


def off_topic_report(lang: str, outcomes: List[Tuple[str, List[str]]]) -> List[str]:
    """How often an off-topic question got a municipal answer (hours, an address, guidance), and
    which ones did."""
    municipal = [(q, got) for q, got in outcomes if set(got) - set(NOT_MUNICIPAL)]
    kinds = Counter("+".join(got) if not set(got) - set(NOT_MUNICIPAL) else "municipal answer" for _, got in outcomes)
    share = 100 * len(municipal) / max(len(outcomes), 1)
    lines = [f"  {lang}: {len(outcomes)} questions, answered as a municipal topic: {len(municipal)} ({share:.1f}%)",
             "    " + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())]
    return lines + [f"    {q!r} -> {'+'.join(got)}" for q, got in municipal]
