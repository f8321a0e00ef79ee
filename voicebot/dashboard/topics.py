"""The topic editor: trainers add a topic, its examples per language (typed in; the review
inbox adds more) and what each line does with it, hear an answer in the line's voice, and see
where new examples overlap another topic. Answers are live within a second; examples after
retraining (voicebot.dashboard.retrain). A trainer limited to some lines changes only those
lines' answers and their languages' examples; adding a topic, which every line then has, takes
a trainer for every line. Each change goes into the audit log."""

import re
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from sanic import Blueprint, response
from sanic.exceptions import SanicException

from voicebot.audio.tts import Synthesizer, voice_for
from voicebot.config import ConfigError, Installation
from voicebot.config.live import LiveConfiguration
from voicebot.dashboard.auth import SignedIn
from voicebot.dialogue.examples import examples_by_intent, overlaps
from voicebot.dialogue.training import load_heldout
from voicebot.intents import BUILT_IN_INTENTS
from voicebot.knowledge.editing import TopicEditor
from voicebot.store import RecordStore

BUILT_IN_NAMES = {"greet": "Greeting", "goodbye": "Goodbye", "thank": "Thanks", "affirm": "Yes", "deny": "No",
                  "chitchat": "Small talk", "opening_hours": "Opening hours", "office_location": "Where an office is",
                  "request_agent": "Asks for a person", "callback_request": "Asks for a callback",
                  "out_of_scope": "Not for the council (off-topic)"}
MAX_EXAMPLES_AT_ONCE = 200
MAX_ANSWER_CHARS = 2000
PREVIEW_RATE = 16000
KINDS = ("answer", "offer_callback", "hand_off", "default")


@dataclass
class Kit:
    """What the dashboard's pages share: rendering, the login check, the stores."""

    inst: Installation
    live: LiveConfiguration
    records: RecordStore
    page: Callable
    signed_in: Callable[..., SignedIn]
    off_loop: Callable
    languages: Callable[[], list]  # the languages this bot has models for
    trained_lines: Callable  # (user, line or None): the lines the trainer may change; 403 for another's
    trained_language: Callable  # (user, language): the language if the trainer may change its model; 400/403
    fragment: Callable[..., str]  # (template, **values): part of a page, rendered as pages are


def add_topic_pages(bp: Blueprint, kit: Kit) -> None:
    editor = TopicEditor(kit.inst)

    async def current() -> Installation:
        return await kit.off_loop(kit.live)

    async def edited(user: SignedIn, action: str, fn, *args, **detail):
        """Run an edit off the loop; its refusal is the trainer's to read (409), and it is audited."""
        try:
            result = await kit.off_loop(fn, *args)
        except ConfigError as error:
            raise SanicException(str(error), status_code=409) from None
        kit.live.look_again()
        await kit.off_loop(kit.records.audit, user.name, action, **detail)
        return result

    async def topic_page(request, topic_id: str, status: int = 200, **values):
        inst = await current()
        if topic_id not in inst.topics:
            raise SanicException(f"no topic {topic_id!r}", status_code=404)
        languages = sorted({t.language for t in inst.tenants.values()} & set(kit.languages()))
        examples, heldout, places = await kit.off_loop(_topic_view, editor, inst, topic_id, languages)
        user = request.ctx.user
        user_languages = {inst.tenant(line).language for line in user.lines or ()}
        return kit.page(request, "topic.html", status, topic_id=topic_id, topic=inst.topics[topic_id],
                        examples=examples, heldout=heldout, places=places, names=intent_names(inst),
                        user_languages=user_languages, **values)

    @bp.get("/topics")
    async def topics(request):
        kit.signed_in(request, "trainer")
        inst = await current()
        return kit.page(request, "topics.html", topics=inst.topics, languages=inst.languages,
                        notice=request.args.get("notice"))

    @bp.post("/topics")
    async def create_topic(request):
        user = kit.signed_in(request, "trainer")
        if user.lines is not None:
            raise SanicException("a new topic is on every line: ask a trainer for every line to add it",
                                 status_code=403)
        inst = await current()
        names = {lang: " ".join(request.form.get(f"name_{lang}", "").split())[:80] for lang in inst.languages}
        names = {lang: name for lang, name in names.items() if name}
        topic_id = request.form.get("id", "").strip() or _id_from(next(iter(names.values()), ""))
        default = {"offer_callback": {"offer_callback": True}, "hand_off": {"hand_off": "requested"}}.get(
            request.form.get("default", ""))
        if default is None:
            raise SanicException("choose what lines without their own answer do", status_code=400)
        await edited(user, "topic_created", editor.create, topic_id, names, default, topic=topic_id, names=names)
        return response.redirect(f"/dashboard/topics/{topic_id}")

    @bp.get("/topics/<topic_id>")
    async def topic(request, topic_id: str):
        kit.signed_in(request, "trainer")
        return await topic_page(request, topic_id, notice=request.args.get("notice"))

    # Examples teach the model; held-out sentences judge it and are never learnt from.
    sentence_sets = {"examples": (editor.add_examples, editor.remove_example, "examples", "retrain to use them"),
                     "heldout": (editor.add_heldout, editor.remove_heldout, "held-out sentences",
                                 "they judge the next retraining")}

    @bp.post("/topics/<topic_id>/<kind:examples|heldout>")
    async def add_sentences(request, topic_id: str, kind: str):
        user = kit.signed_in(request, "trainer")
        lang = kit.trained_language(user, request.form.get("lang"))
        texts = [" ".join(t.split()) for t in request.form.get("texts", "").splitlines() if t.strip()]
        if not texts or len(texts) > MAX_EXAMPLES_AT_ONCE or max(map(len, texts)) > 300:
            raise SanicException(f"give 1 to {MAX_EXAMPLES_AT_ONCE} sentences, one a line, each under 300 "
                                 "characters", status_code=400)
        add, _, called, then = sentence_sets[kind]
        added = await edited(user, f"{kind}_added", add, topic_id, lang, texts, topic=topic_id, language=lang,
                             texts=texts)
        found = await kit.off_loop(overlaps, await current(), lang, topic_id, added) if kind == "examples" else []
        notice = (f"{len(added)} new {called} in {lang}"
                  + (f" ({len(texts) - len(added)} already there)" if len(added) < len(texts) else "") + f": {then}.")
        return await topic_page(request, topic_id, notice=notice, overlaps=found)

    @bp.post("/topics/<topic_id>/<kind:examples|heldout>/remove")
    async def remove_sentence(request, topic_id: str, kind: str):
        user = kit.signed_in(request, "trainer")
        lang, text = kit.trained_language(user, request.form.get("lang")), request.form.get("text", "")
        _, remove, called, _ = sentence_sets[kind]
        if not await edited(user, f"{kind}_removed", remove, topic_id, lang, text,
                            topic=topic_id, language=lang, text=text):
            raise SanicException(f"that is not one of the topic's {called} (removed already?)", status_code=409)
        return _back(topic_id, f"Removed from the {lang} {called}.")

    @bp.post("/topics/<topic_id>/lines/<line_id>")
    async def set_behaviour(request, topic_id: str, line_id: str):
        user = kit.signed_in(request, "trainer")
        inst = await current()
        view = _place(inst, line_id, request.form.get("municipality") or None)
        kit.trained_lines(user, line_id)
        behaviour = _behaviour_from(request.form)
        before = view.topics.get(topic_id)
        await edited(user, "behaviour_changed", editor.set_behaviour, topic_id, line_id, behaviour, view.serving,
                     topic=topic_id, line=line_id, municipality=view.serving,
                     before=before.dict(exclude_defaults=True) if before else None, after=behaviour)
        return _back(topic_id, f"Saved for {view.municipality_name or view.name}: callers hear it from now on.")

    @bp.get("/topics/<topic_id>/lines/<line_id>/preview.wav")
    async def preview(request, topic_id: str, line_id: str):
        """The line's answer as its callers hear it, in the line's voice."""
        kit.signed_in(request, "trainer")
        inst = await current()
        tenant = _place(inst, line_id, request.args.get("municipality") or None)
        behaviour = tenant.topics.get(topic_id)
        if behaviour is None or not behaviour.answer:
            raise SanicException("this line has no answer for the topic to hear", status_code=404)
        synthesizer = Synthesizer(voice_for(tenant), inst.settings.audio.words_per_minute)
        speech = await kit.off_loop(synthesizer.render, behaviour.answer, PREVIEW_RATE)
        return response.raw(speech.wav_bytes(), content_type="audio/wav", headers={"Cache-Control": "no-store"})


def _topic_view(editor: TopicEditor, inst: Installation, topic_id: str, languages: List[str]):
    """A topic's examples and held-out sentences per language, and each line, and each
    municipality of a shared line, with what it does now: read in one go off the loop, since
    a page that waits on the event loop between files is slow on a busy machine."""
    examples = {lang: examples_by_intent(inst, lang).get(topic_id, []) for lang in languages}
    heldout = {lang: [text for intent, text in load_heldout(inst, lang) if intent == topic_id] for lang in languages}
    written = editor.written(inst)
    places = []
    for line_id, line in inst.tenants.items():
        for municipality in (None, *line.municipalities):
            view = line.for_municipality(municipality) if municipality else line
            places.append({"line_id": line_id, "municipality": municipality, "view": view,
                           "name": view.municipality_name or line.name,
                           "key": f"{line_id}-{municipality}" if municipality else line_id,
                           "own": topic_id in written.get((line_id, municipality), ())})
    return examples, heldout, places


def _place(inst: Installation, line_id: str, municipality: Optional[str]):
    """The line, or one municipality's view of a shared line; 404 for one there is not."""
    line = inst.tenants.get(line_id)
    if line is None or (municipality is not None and municipality not in line.municipalities):
        raise SanicException(f"no line {line_id!r}" + (f" with a municipality {municipality!r}" if municipality else ""),
                             status_code=404)
    return line.for_municipality(municipality) if municipality else line


def _behaviour_from(form) -> Optional[dict]:
    """The behaviour a line's form asks for; None: the topic's default."""
    kind, answer = form.get("kind", ""), " ".join(form.get("answer", "").split())
    if kind not in KINDS:
        raise SanicException(f"choose one of: {', '.join(KINDS)}", status_code=400)
    if len(answer) > MAX_ANSWER_CHARS:
        raise SanicException(f"an answer has at most {MAX_ANSWER_CHARS} characters", status_code=400)
    if kind == "answer":
        if not answer:
            raise SanicException("write the answer the line's callers hear", status_code=400)
        return {"answer": answer, **({"with_hours": True} if form.get("with_hours") == "yes" else {})}
    if kind == "offer_callback":
        return {"offer_callback": True, **({"answer": answer} if answer else {})}
    if kind == "hand_off":
        reason = form.get("reason", "")
        if reason not in ("case_handling", "requested"):
            raise SanicException("say why the caller goes to a person: case_handling or requested",
                                 status_code=400)
        return {"hand_off": reason}
    return None


def intent_names(inst: Installation) -> Dict[str, str]:
    """What a trainer can say an utterance meant, by name: the built-in intents and every topic."""
    return {**{intent: BUILT_IN_NAMES.get(intent, intent) for intent in BUILT_IN_INTENTS},
            **{topic_id: topic.name("en") for topic_id, topic in inst.topics.items()}}


def _id_from(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _back(topic_id: str, notice: str):
    return response.redirect(f"/dashboard/topics/{topic_id}?" + urllib.parse.urlencode({"notice": notice}))
