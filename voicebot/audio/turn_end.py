"""When a caller's turn ends: after a silence whose length depends on what was said so far.

A fixed hangover makes every caller wait it out, and cuts off a caller who pauses longer in the
middle of a sentence ("I would like to ... erm ... renew my passport"). Here a judge reads the
words heard so far at each pause (`Verdict`): a complete request the NLU is sure of ends the
turn after `complete_ms` of silence; words a sentence does not end on (a filler, "to", "and")
make it wait `unfinished_ms`; anything else, or no verdict yet, keeps the usual hangover.
A complete routine question (`ANSWERABLE`: opening hours, a topic) may be answered sooner still,
after `answer_early_ms`, while the turn is still open: if the caller goes on, that answer is
stopped and taken back (voicebot.call.session), so a pause mid-sentence costs a few
milliseconds of the bot's voice, not a wrong answer. A caller who leaves longer gaps between
words than that is learnt from (`EarlyWait`): their early answers wait past their longest such gap.

The judge runs elsewhere (the NLU is on the dialogue's loop) and answers with a future, so the
listener's thread never waits for it: it looks at each frame whether the verdict has come.
"""

import concurrent.futures
import enum
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional

from voicebot.audio.format import FRAME_MS

ASK_AFTER_MS = 40  # a gap between words this long is worth a verdict (shorter ones are within a word)
MAX_VERDICTS_PER_TURN = 8  # distinct texts judged per turn: bounds the NLU's extra work


class Verdict(enum.Enum):
    COMPLETE = "complete"  # a whole request, understood with confidence
    ANSWERABLE = "answerable"  # ... and a routine question, which can be answered before the turn ends
    UNFINISHED = "unfinished"  # stopped mid-sentence
    UNSURE = "unsure"


# judge(text, nlu): the verdict on the words so far; with nlu False, only what the words alone
# say (a last word a sentence does not end on), without asking the NLU.
Judge = Callable[[str, bool], "concurrent.futures.Future[Verdict]"]


@dataclass(frozen=True)
class TurnEndSettings:
    judge: Judge
    hangover_ms: int  # without a verdict
    complete_ms: int
    unfinished_ms: int
    answer_early_ms: int = 0  # silence after an answerable question before it is answered (0: never early)

    def hangover(self, verdict: Verdict) -> int:
        return {Verdict.COMPLETE: self.complete_ms, Verdict.ANSWERABLE: self.complete_ms,
                Verdict.UNFINISHED: self.unfinished_ms}.get(verdict, self.hangover_ms)


class EarlyWait:
    """One call's silence before a routine question is answered early: the line's answer_early_ms
    at first, raised for the rest of the call past each pause after which this caller went on
    although the words so far were answerable (someone who leaves longer gaps between words
    would otherwise hear the start of an answer over every sentence). It never reaches
    complete_ms, where the turn ends anyway: early answers then stop for the call."""

    def __init__(self, settings: TurnEndSettings):
        self.ms, self.most_ms = settings.answer_early_ms, settings.complete_ms

    def went_on(self, verdict: Optional[Verdict], pause_ms: int) -> None:
        if self.ms and verdict == Verdict.ANSWERABLE:
            self.ms = min(max(self.ms, pause_ms + FRAME_MS), self.most_ms)

    def answers(self, verdict: Optional[Verdict], quiet_ms: int) -> bool:
        return verdict == Verdict.ANSWERABLE and 0 < self.ms <= quiet_ms and self.ms < self.most_ms


class TurnEnd:
    """One turn's verdicts, by the text they judged (a text is judged once)."""

    def __init__(self, settings: TurnEndSettings):
        self.settings = settings
        self.verdicts: Dict[str, concurrent.futures.Future] = {}
        self.verdict: Optional[Verdict] = None  # of the text heard last, once it came

    def hangover_ms(self, text: str, quiet_ms: int, decoding: bool = False) -> int:
        """The silence that ends the turn, the words so far being `text` and the caller quiet
        for `quiet_ms`. While the words are still `decoding` (a segmented recogniser), the turn
        waits for them up to `unfinished_ms`: its answer needs them anyway, and a caller who
        goes on meanwhile is not cut off."""
        self.verdict = None
        if decoding:
            return self.settings.unfinished_ms
        text = text.strip()
        future = self.verdicts.get(text)
        if future is None and text and quiet_ms >= ASK_AFTER_MS and len(self.verdicts) < MAX_VERDICTS_PER_TURN:
            # Words that come once the usual hangover has passed (a segmented recogniser's) can
            # still make the turn wait, but a complete request can no longer end it sooner: the
            # NLU is not asked for them (the turn's own parse follows at once).
            nlu = quiet_ms < self.settings.hangover_ms
            future = self.verdicts[text] = self.settings.judge(text, nlu)
        if future is not None and future.done() and not future.cancelled() and future.exception() is None:
            self.verdict = future.result()
        return self.settings.hangover(self.verdict)

    def close(self) -> None:
        for future in self.verdicts.values():
            future.cancel()


def ends_unfinished(text: str, endings: Iterable[str]) -> bool:
    """Whether the last word is one a sentence does not end on. An ending "-을" matches a last
    word that ends with it (a Korean particle), any other entry the whole last word."""
    words = re.findall(r"\w+", text.lower())
    if not words:
        return False
    last = words[-1]
    return any(last.endswith(e[1:]) and len(last) > len(e) - 1 if e.startswith("-") else last == e
               for e in endings)


def done(verdict: Verdict) -> "concurrent.futures.Future[Verdict]":
    future: concurrent.futures.Future = concurrent.futures.Future()
    future.set_result(verdict)
    return future
