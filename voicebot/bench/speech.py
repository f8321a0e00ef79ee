"""Speech benchmark (`voicebot bench speech`): what the recogniser makes of each language's
held-out utterances (heldout/<lang>.yml, not training examples) as a phone line
brings them, and what the NLU then understands.

The utterances are spoken by espeak-ng in two voices (the language's own and its "+f3"
variant) at two speeds, with silence around them as the call's endpointing leaves it; pink
noise is added at 20 and 10 dB SNR (against the speech's own power) before the channel, as
background at the caller's end would be; the channel is G.711 (down to 8 kHz, mu-law and back,
as pjsua hands a PCMU call to the bot) or G.722-like (16 kHz band-limited to 50-7000 Hz; the
codec's own ADPCM noise is left out). Every condition (channel x noise) hears every utterance
once, with the four voice/speed styles rotated over the utterances, so conditions compare on
the same sentences and each style gets a quarter of them.

The recogniser is the one a call gets (voicebot.audio.asr.registry_for) with the line's
phrase hint; the NLU is the line's trained Rasa model through Dialogue.parse. Noise-only clips
(silence, noise, hum, hold music, coughs) go to the recogniser directly, without the call's
own voice activity detection in front: a harder test than a call, where a turn must first
sound like speech to the listener.
"""

import asyncio
import gc
import re
import statistics
import time
import unicodedata
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from voicebot.audio.format import RATE
from voicebot.audio.hold_music import hold_music
from voicebot.audio.tts import PREFERRED_VOICES, Synthesizer
from voicebot.bench.vad import at_dbfs, coloured_noise, coughs, mains_hum, pcm16, telephone, voiced_span
from voicebot.dialogue.training import load_heldout

SPEEDS = (150, 190)  # words per minute: a calm caller and a quick one
VARIANT = "+f3"  # espeak-ng's female variant of each voice
CHANNELS = ("G.711", "G.722")
SNRS: Tuple[Optional[float], ...] = (None, 20.0, 10.0)  # None: clean
QUICK_CONDITIONS = (("G.711", None), ("G.722", 10.0))
QUICK_UTTERANCES = 8  # per language, spread over the intents
PAD_MS = 300  # silence before and after: the listener's lead-in and its end-of-speech hangover
FALLBACK = "nlu_fallback"
SEED = 20261124


# --- scoring -----------------------------------------------------------------------------

def normalise(text: str) -> List[str]:
    """Words for scoring: lower case, Unicode NFC, punctuation and apostrophes dropped (so "I'd"
    and "id" agree), hyphens and slashes split words; letters like æ, ø, å, ß kept."""
    text = unicodedata.normalize("NFC", text.lower()).replace("’", "'").replace("'", "")
    return re.sub(r"[^\w]+|_", " ", text).split()


def word_errors(reference: str, hypothesis: str) -> Tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) between normalised texts."""
    import jiwer

    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return len(hyp), 0
    if not hyp:
        return len(ref), len(ref)
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return out.substitutions + out.deletions + out.insertions, len(ref)


def wer(pairs: Sequence[Tuple[str, str]]) -> float:
    """Corpus word error rate of (reference, hypothesis) pairs: all edits over all reference
    words, so long sentences weigh as much as their words."""
    counts = [word_errors(ref, hyp) for ref, hyp in pairs]
    words = sum(n for _, n in counts)
    return sum(e for e, _ in counts) / words if words else float("nan")


def is_understood(intent: Optional[str]) -> bool:
    """An intent the bot would act on: anything but nothing and the fallback."""
    return intent not in (None, "", FALLBACK)


# --- the plan ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    lang: str
    intent: str
    text: str
    voice: str  # espeak-ng voice, with variant
    wpm: int
    channel: str
    snr: Optional[float]


@dataclass
class Result:
    case: Case
    transcript: str
    speech_s: float  # the spoken part, without the padding
    cpu_s: float  # recogniser CPU time, all its threads
    wall_s: float
    text_intent: Optional[str] = None
    speech_intent: Optional[str] = None


def styles(lang: str) -> List[Tuple[str, int]]:
    voice = PREFERRED_VOICES.get(lang, lang)
    return [(v, wpm) for v in (voice, voice + VARIANT) for wpm in SPEEDS]


def conditions(quick: bool) -> List[Tuple[str, Optional[float]]]:
    return list(QUICK_CONDITIONS) if quick else [(c, s) for c in CHANNELS for s in SNRS]


def spread(items: Sequence, count: int) -> list:
    """`count` items evenly spread over the sequence (all of them if it is shorter)."""
    if count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def plan(lang: str, utterances: List[Tuple[str, str]], quick: bool) -> List[Case]:
    """Every condition hears every utterance (quick: a few) once; the voice/speed style moves
    on by one per condition, so each utterance is heard in several styles over the run."""
    chosen = spread(utterances, QUICK_UTTERANCES) if quick else utterances
    kinds = styles(lang)
    return [Case(lang, intent, text, *kinds[(i + c) % len(kinds)], channel, snr)
            for c, (channel, snr) in enumerate(conditions(quick))
            for i, (intent, text) in enumerate(chosen)]


# --- audio -------------------------------------------------------------------------------

def wideband(samples: np.ndarray) -> np.ndarray:
    """G.722's audio band at 16 kHz: 50-7000 Hz (its sub-band ADPCM coding noise left out)."""
    from scipy.signal import butter, sosfilt

    sos = butter(6, [50, 7000], btype="bandpass", fs=RATE, output="sos")
    return sosfilt(sos, samples)


def channel(samples: np.ndarray, name: str) -> bytes:
    return pcm16(telephone(samples) if name == "G.711" else wideband(samples))


def padded_speech(synthesizer: Synthesizer, text: str) -> Tuple[np.ndarray, int, int]:
    """The sentence at 16 kHz, trimmed to where it is said, with PAD_MS of silence each side;
    and where the speech lies in it (samples)."""
    samples = np.frombuffer(synthesizer.render(text, RATE).pcm, "<i2").astype(np.float64)
    first, last = voiced_span(samples)
    pad = np.zeros(PAD_MS * RATE // 1000)
    return np.concatenate([pad, samples[first:last], pad]), pad.size, pad.size + last - first


def with_noise(samples: np.ndarray, speech: Tuple[int, int], snr: Optional[float], rng) -> np.ndarray:
    """Pink noise over the whole clip at `snr` dB below the speech's power (None: clean)."""
    if snr is None:
        return samples
    power = np.mean(samples[speech[0]:speech[1]] ** 2)
    noise = coloured_noise((samples.size + 1) / RATE, 1, rng)[:samples.size]  # seconds * RATE may round down
    return samples + noise * np.sqrt(power / 10 ** (snr / 10) / np.mean(noise ** 2))


def noise_clips(rng) -> Dict[str, np.ndarray]:
    """Turn-length sounds with no words in them, as 16 kHz samples."""
    music = np.frombuffer(hold_music("tone", RATE), "<i2").astype(np.float64)
    return {
        "silence 3 s": np.zeros(3 * RATE),
        "white noise -35 dBFS 3 s": at_dbfs(coloured_noise(3, 0, rng), -35),
        "white noise -20 dBFS 3 s": at_dbfs(coloured_noise(3, 0, rng), -20),
        "mains hum 50 Hz -30 dBFS 3 s": at_dbfs(mains_hum(3), -30),
        "hold music 4 s": np.resize(music, 4 * RATE),
        "hold music 8 s": np.resize(music, 8 * RATE),
        "cough (250 ms burst) in 2 s": coughs(2, rng),
        "coughs, 6 s": coughs(6, rng),
    }


# --- running -----------------------------------------------------------------------------

def transcribe(recognizer, pcm: bytes) -> Tuple[str, float, float]:
    """(text, CPU s, wall s): CPU over the whole process, so CTranslate2's threads count."""
    cpu, wall = time.process_time(), time.perf_counter()
    text = recognizer.transcribe(pcm).text
    return text, time.process_time() - cpu, time.perf_counter() - wall


def hint_phrases(inst, lang: str) -> List[str]:
    """The phrases a call on the language's first line gives its recogniser (session.py)."""
    settings = inst.settings.asr.models.get(lang)
    tenant = next(t for t in inst.tenants.values() if t.language == lang)
    return (settings.phrases if settings and settings.phrases else None) or tenant.office_names


def recognise(recognizer, cases: List[Case], rng, say: Callable[[str], None]) -> List[Result]:
    rendered: Dict[Tuple[str, str, int], Tuple[np.ndarray, int, int]] = {}
    results = []
    for n, case in enumerate(cases, 1):
        key = (case.text, case.voice, case.wpm)
        if key not in rendered:
            rendered[key] = padded_speech(Synthesizer(case.voice, case.wpm), case.text)
        samples, start, end = rendered[key]
        pcm = channel(with_noise(samples, (start, end), case.snr, rng), case.channel)
        text, cpu, wall = transcribe(recognizer, pcm)
        results.append(Result(case, text, (end - start) / RATE, cpu, wall))
        if n % 20 == 0 or n == len(cases):
            say(f"  {case.lang}: {n}/{len(cases)} utterances decoded")
    return results


@dataclass
class NoiseResult:
    lang: str
    kind: str
    channel: str
    transcript: str
    intent: Optional[str] = None


def recognise_noise(recognizer, lang: str, clips: Dict[str, np.ndarray], channels: Sequence[str]) -> List[NoiseResult]:
    return [NoiseResult(lang, kind, name, transcribe(recognizer, channel(samples, name))[0])
            for kind, samples in clips.items() for name in channels]


def parse_all(inst, lang: str, results: List[Result], noise: List[NoiseResult]) -> None:
    """Fill in the intents: the reference text's, the transcript's and the noise clips'."""
    from voicebot.dialogue.runtime import Dialogue

    async def intents(dialogue: Dialogue, texts: List[str]) -> List[Optional[str]]:
        return [(await dialogue.parse(lang, t))["intent"]["name"] for t in texts]

    texts = list(dict.fromkeys([*(r.case.text for r in results), *(r.transcript for r in results),
                                *(n.transcript for n in noise)]))
    dialogue = Dialogue(inst, action_server_url="", languages=[lang]).load()
    parsed = dict(zip(texts, asyncio.run(intents(dialogue, texts))))
    for result in results:
        result.text_intent, result.speech_intent = parsed[result.case.text], parsed[result.transcript]
    for clip in noise:
        clip.intent = parsed[clip.transcript]
    del dialogue
    gc.collect()  # one language's model at a time


def run(inst, langs: List[str], quick: bool, say: Callable[[str], None] = print) -> List[str]:
    from voicebot.audio.asr import registry_for

    rng = np.random.default_rng(SEED)
    registry = registry_for(inst)
    clips = noise_clips(rng)
    if quick:
        clips = {k: clips[k] for k in ("white noise -20 dBFS 3 s", "hold music 4 s", "cough (250 ms burst) in 2 s")}
    results: Dict[str, List[Result]] = {}
    noise: Dict[str, List[NoiseResult]] = {}
    engines = {}
    started = time.monotonic()
    for lang in langs:
        engine = registry.engine(lang)
        engines[lang] = engine.description
        recognizer = engine.recognizer(hint_phrases(inst, lang))
        utterances = load_heldout(inst, lang)
        cases = plan(lang, utterances, quick)
        say(f"{lang}: {len(cases)} utterances and {len(clips) * len(CHANNELS[:1 if quick else 2])} noise clips "
            f"through {engine.name} ...")
        results[lang] = recognise(recognizer, cases, rng, say)
        noise[lang] = recognise_noise(recognizer, lang, clips, CHANNELS[:1] if quick else CHANNELS)
        say(f"  {lang}: loading the NLU model and parsing ...")
        parse_all(inst, lang, results[lang], noise[lang])
    return report(results, noise, engines, quick, time.monotonic() - started)


# --- the report --------------------------------------------------------------------------

def accuracy(pairs: Sequence[Tuple[str, Optional[str]]]) -> float:
    return sum(truth == got for truth, got in pairs) / len(pairs) if pairs else float("nan")


def figures(results: List[Result]) -> str:
    """WER, intent accuracy from speech and from the text, share with no words, n."""
    speech = accuracy([(r.case.intent, r.speech_intent) for r in results])
    text = accuracy([(r.case.intent, r.text_intent) for r in results])
    empty = sum(not r.transcript for r in results) / len(results)
    return (f"{wer([(r.case.text, r.transcript) for r in results]):>7.1%}{speech:>9.1%}{text:>8.1%}"
            f"{empty:>9.1%}{len(results):>6}")


def condition_label(channel_name: str, snr: Optional[float]) -> str:
    return f"{channel_name} {'clean' if snr is None else f'{snr:g} dB SNR'}"


def language_lines(lang: str, results: List[Result], engine: str) -> List[str]:
    lines = [f"language {lang}: {engine}", f"  {'':<28}{'':>7}{'intent accuracy':>17}",
             f"  {'':<28}{'WER':>7}{'speech':>9}{'text':>8}{'no words':>9}{'n':>6}"]
    groups = [(condition_label(c, s), [r for r in results if (r.case.channel, r.case.snr) == (c, s)])
              for c, s in dict.fromkeys((r.case.channel, r.case.snr) for r in results)]
    groups += [(f"voice {v}", [r for r in results if r.case.voice == v])
               for v in dict.fromkeys(r.case.voice for r in results)]
    groups += [(f"{w} words per minute", [r for r in results if r.case.wpm == w])
               for w in dict.fromkeys(r.case.wpm for r in results)]
    groups.append(("all", results))
    lines += [f"  {label:<28}{figures(group)}" for label, group in groups if group]
    speech_s = sum(r.speech_s for r in results)
    lines.append(f"  recogniser CPU {sum(r.cpu_s for r in results) / speech_s:.2f} s per second of speech "
                 f"(utterances {statistics.median(r.speech_s for r in results):.1f} s median); per turn "
                 f"{statistics.median(r.cpu_s for r in results):.2f} s CPU, "
                 f"{statistics.median(r.wall_s for r in results) * 1000:.0f} ms wall (medians)")
    return lines + [f"  e.g. {e}" for e in examples(results)]


def examples(results: List[Result], count: int = 3) -> List[str]:
    """A few clean-condition transcripts next to what was said, to show what the errors are like."""
    clean = [r for r in results if r.case.snr is None] or results
    return [f"{r.case.text!r} -> {r.transcript!r} ({r.speech_intent or 'no intent'})"
            for r in spread(clean, count)]


def noise_lines(noise: Dict[str, List[NoiseResult]]) -> List[str]:
    langs = list(noise)
    clips = [c for lang in langs for c in noise[lang]]
    kinds = list(dict.fromkeys(c.kind for c in clips))
    lines = ["noise-only clips: share that produced an intent (not nothing or the fallback), per language "
             f"({', '.join(dict.fromkeys(c.channel for c in clips))})",
             f"  {'':<32}" + "".join(f"{lang:>8}" for lang in langs)]
    for kind in kinds:
        shares = [[is_understood(c.intent) for c in noise[lang] if c.kind == kind] for lang in langs]
        lines.append(f"  {kind:<32}" + "".join(f"{sum(s)}/{len(s)}".rjust(8) for s in shares))
    hits = [[is_understood(c.intent) for c in noise[lang]] for lang in langs]
    lines.append(f"  {'all':<32}" + "".join(f"{sum(h) / len(h):>8.1%}" for h in hits))
    worded = [c for c in clips if c.transcript]
    lines.append(f"  clips with any words: {len(worded)} of {len(clips)}")
    return lines + [f"    {c.lang} {c.kind} ({c.channel}): {c.transcript!r} -> {c.intent or 'no intent'}"
                    for c in worded[:8]]


def summary_lines(results: Dict[str, List[Result]]) -> List[str]:
    lines = ["summary (all conditions)", f"  {'':<6}{'WER':>7}{'speech':>9}{'text':>8}{'no words':>9}{'n':>6}"
             f"{'CPU s/s':>9}"]
    for lang, rs in results.items():
        lines.append(f"  {lang:<6}{figures(rs)}{sum(r.cpu_s for r in rs) / sum(r.speech_s for r in rs):>9.2f}")
    return lines


def report(results: Dict[str, List[Result]], noise: Dict[str, List[NoiseResult]], engines: Dict[str, str],
           quick: bool, seconds: float) -> List[str]:
    any_lang = next(iter(results.values()))
    conds = ", ".join(dict.fromkeys(condition_label(r.case.channel, r.case.snr) for r in any_lang))
    per_cond = len({(r.case.intent, r.case.text) for r in any_lang})
    head = [
        ("QUICK smoke run: a sample only. " if quick else "")
        + "Held-out utterances (heldout/<lang>.yml) spoken by espeak-ng, each language's voice and "
        f"its {VARIANT} variant at {' and '.join(map(str, SPEEDS))} words per minute,",
        f"{PAD_MS} ms silence around; conditions: {conds}.",
        f"Each condition hears the same {per_cond} utterances per language once, the 4 voice/speed styles rotated "
        "over them (sampled: not every style x condition x utterance).",
        "Noise: pink, added before the channel; G.711: 8 kHz mu-law; G.722-like: 16 kHz band-limited 50-7000 Hz.",
        "WER: word edits over reference words after lower-casing and dropping punctuation (digits are not "
        "spelled out); intents from the line's trained Rasa model,",
        "on the transcript (speech) and on the written utterance (text); no words: the recogniser's guards "
        "left nothing. Recogniser CPU: all threads, per second of speech.",
        ""]
    body: List[str] = []
    for lang, rs in results.items():
        body += language_lines(lang, rs, engines[lang]) + [""]
    return head + body + summary_lines(results) + [""] + noise_lines(noise) + [
        "", f"run took {seconds / 60:.1f} min (recognition and parsing, one process)"]
