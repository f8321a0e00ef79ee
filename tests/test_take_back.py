"""An answer given early and taken back (the caller went on: voicebot.call.session) against real
Rasa and a real action server: the conversation goes on as if it had never been given. Here
the model in the bot's own process (LocalRasa); a Rasa server's (RemoteRasa) in test_rasa_server."""

import asyncio
import time

from voicebot.dialogue.action_server import ActionServerProcess
from voicebot.dialogue.runtime import Dialogue

FIRST, EARLY, FOLLOW_UP = "is the library open on saturday", "is the town hall open", "what about tomorrow"


def follow_ups(dialogue: Dialogue, tenant) -> dict:
    """The answer to a follow-up ("what about tomorrow") after an early answer about another
    office, that answer taken back or not."""
    async def conversation(take_back: bool):
        conversation_id = f"take-back-{take_back}-{time.monotonic_ns()}"
        await dialogue.handle(tenant, conversation_id, FIRST)
        early = await dialogue.handle(tenant, conversation_id, EARLY)
        assert early.texts[0].startswith("The town hall"), early.texts
        if take_back:
            await dialogue.take_back(tenant, conversation_id, early)
            again = await dialogue.handle(tenant, conversation_id, EARLY)  # the rules answer after it
            assert again.texts == early.texts, (again.texts, early.texts)
            await dialogue.take_back(tenant, conversation_id, again)
        return (await dialogue.handle(tenant, conversation_id, FOLLOW_UP)).texts[0]
    async def both() -> dict:  # on one loop: a Rasa server's client session lives on its loop
        return {take_back: await conversation(take_back) for take_back in (True, False)}
    return asyncio.run(both())


def check(answers: dict) -> None:
    assert answers[True].startswith("The central library is"), answers  # about the library, asked before
    assert answers[False].startswith("The town hall"), answers  # not taken back: about the early question


def test_an_answer_taken_back_leaves_the_conversation_as_before_it(trained):
    with ActionServerProcess(trained.root / "voicebot.yml") as actions:
        dialogue = Dialogue(trained, actions.url, ["en"]).load()
        check(follow_ups(dialogue, trained.tenant("demo-city")))
