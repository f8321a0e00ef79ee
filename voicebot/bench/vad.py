"""VAD benchmark (`voicebot bench vad`): the energy and Silero detectors on the same telephone
audio. Speech is espeak-ng's, sent through G.711 (u-law at 8 kHz and back, as a PSTN call
reaches the bot), with silence around each sentence, clean and with pink noise at 20 and 10 dB
SNR; non-speech is silence, noises, mains hum, coughs, typing and the bot's own hold music.
Everything is seeded, so two runs feed the detectors the same samples."""

import audioop
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from voicebot.audio.format import FRAME_BYTES, FRAME_MS, RATE
from voicebot.audio.hold_music import hold_music
from voicebot.audio.tts import Synthesizer
from voicebot.audio.vad import CLASSIFIERS, SpeechDetector, VadSettings

SENTENCES = {
    "en-gb": ["can I renew my passport", "when are you open tomorrow",
              "I would like to speak to a person please", "my bin was not emptied this week"],
    "de": ["ich möchte meinen Reisepass verlängern", "wann haben Sie morgen geöffnet",
           "einen Mitarbeiter bitte", "meine Mülltonne wurde nicht geleert"],
    "da": ["hvornår har I åbent i morgen", "jeg vil gerne forny mit pas",
           "jeg vil gerne tale med en medarbejder", "min skraldespand er ikke blevet tømt"],
    "nb": ["når har dere åpent i morgen", "jeg vil fornye passet mitt",
           "kan jeg få snakke med en saksbehandler", "søppeldunken min ble ikke tømt"],
    "sv": ["när har ni öppet i morgon", "jag vill förnya mitt pass",
           "jag vill prata med en handläggare", "mina sopor har inte hämtats"],
}
LEAD_MS, GAP_MS = 1000, 2000  # silence before the first sentence and between sentences
NON_SPEECH_S = 30  # per kind of non-speech
NOISE_DBFS = -35.0  # steady background noise: clearly audible on a phone line
# A turn is found when "start" comes this soon after its onset (min_speech_ms is part of it)
# and "end" this soon after its offset (hangover_ms is part of it), as one turn, not split.
START_WITHIN_MS, END_WITHIN_MS = 500, 800
CALLS_AT_ONCE = 4
SNRS = [None, 20.0, 10.0]  # speech clean, and with pink noise at these SNRs (dB)


@dataclass
class Stream:
    """Audio as one call hears it (16 kHz PCM) and the spoken turns in it, in ms."""
    pcm: bytes
    turns: List[Tuple[int, int]] = field(default_factory=list)

    @property
    def minutes(self) -> float:
        return len(self.pcm) / 2 / RATE / 60

    def speechless_minutes(self) -> float:
        return self.minutes - sum(off - on for on, off in self.turns) / 60000


@dataclass
class Detected:
    turns: List[Tuple[int, Optional[int]]]  # (ms of "start", ms of "end" or None)
    cpu_s: float
    frames: int


# --- audio -------------------------------------------------------------------------------

def telephone(samples: np.ndarray) -> np.ndarray:
    """16 kHz samples through a G.711 u-law call: down to 8 kHz, u-law and back, up again."""
    pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
    narrow, _ = audioop.ratecv(pcm, 2, 1, RATE, 8000, None)
    decoded = audioop.ulaw2lin(audioop.lin2ulaw(narrow, 2), 2)
    wide, _ = audioop.ratecv(decoded, 2, 1, 8000, RATE, None)
    return np.frombuffer(wide, "<i2").astype(np.float64)


def at_dbfs(samples: np.ndarray, dbfs: float) -> np.ndarray:
    rms = np.sqrt(np.mean(samples ** 2)) or 1.0
    return samples * (32768 * 10 ** (dbfs / 20) / rms)


def coloured_noise(seconds: float, exponent: float, rng) -> np.ndarray:
    """Noise with power falling as 1/f**exponent: 0 white, 1 pink, 2 brown."""
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.normal(size=n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum *= np.where(freqs >= 20, np.maximum(freqs, 20) ** (-exponent / 2), 0.0)
    return np.fft.irfft(spectrum, n)


def mains_hum(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 9))


def coughs(seconds: float, rng) -> np.ndarray:
    """A cough every 2-4 s: 250 ms of broadband noise, sharp attack, quick decay, loud."""
    out = np.zeros(int(seconds * RATE))
    t = np.arange(int(0.25 * RATE)) / RATE
    envelope = np.minimum(1.0, t / 0.01) * np.exp(-t / 0.06)
    at = int(RATE * 1.0)
    while at + t.size < out.size:
        out[at:at + t.size] += rng.normal(0, 0.25 * 32768, t.size) * envelope
        at += int(RATE * rng.uniform(2, 4))
    return out


def typing(seconds: float, rng) -> np.ndarray:
    """Keystrokes: 4 ms clicks 80-250 ms apart, in words of 3-8 keys with pauses between."""
    out = np.zeros(int(seconds * RATE))
    t = np.arange(int(0.004 * RATE)) / RATE
    click = np.exp(-t / 0.001)
    at = RATE // 2
    while at + RATE < out.size:
        for _ in range(rng.integers(3, 9)):
            out[at:at + t.size] += rng.normal(0, 0.2 * 32768, t.size) * click
            at += int(RATE * rng.uniform(0.08, 0.25))
        at += int(RATE * rng.uniform(0.4, 1.2))
    return out


def non_speech(rng) -> Dict[str, Stream]:
    seconds = NON_SPEECH_S
    music = np.frombuffer(hold_music("tone", RATE), "<i2").astype(np.float64)
    sounds = {
        "silence": np.zeros(seconds * RATE),
        f"white noise {NOISE_DBFS:g} dBFS": at_dbfs(coloured_noise(seconds, 0, rng), NOISE_DBFS),
        f"pink noise {NOISE_DBFS:g} dBFS": at_dbfs(coloured_noise(seconds, 1, rng), NOISE_DBFS),
        f"brown noise {NOISE_DBFS:g} dBFS": at_dbfs(coloured_noise(seconds, 2, rng), NOISE_DBFS),
        "mains hum 50 Hz + harmonics -30 dBFS": at_dbfs(mains_hum(seconds), -30),
        "coughs (250 ms bursts)": coughs(seconds, rng),
        "typing clicks": typing(seconds, rng),
        "hold music": np.resize(music, seconds * RATE),
    }
    return {name: Stream(pcm16(telephone(samples))) for name, samples in sounds.items()}


def pcm16(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def voiced_span(samples: np.ndarray) -> Tuple[int, int]:
    """First and last sample of 10 ms blocks above -45 dBFS: where the sentence is said."""
    block = RATE // 100
    levels = [np.sqrt(np.mean(samples[i:i + block] ** 2)) for i in range(0, samples.size - block, block)]
    loud = [i for i, level in enumerate(levels) if level > 32768 * 10 ** (-45 / 20)]
    return loud[0] * block, (loud[-1] + 1) * block


def spoken(voice: str, sentences: List[str]) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
    """The sentences as one stretch of clean 16 kHz speech with silence around each, and
    where each is spoken (samples)."""
    synthesizer = Synthesizer(voice)
    parts, turns, at = [np.zeros(LEAD_MS * RATE // 1000)], [], LEAD_MS * RATE // 1000
    for sentence in sentences:
        samples = np.frombuffer(synthesizer.render(sentence, RATE).pcm, "<i2").astype(np.float64)
        first, last = voiced_span(samples)
        parts += [samples[first:last], np.zeros(GAP_MS * RATE // 1000)]
        turns.append((at, at + last - first))
        at += last - first + GAP_MS * RATE // 1000
    return np.concatenate(parts), turns


def speech(snrs: List[Optional[float]], rng) -> Dict[str, Stream]:
    """One stream per voice and SNR (None: clean); the noise runs through the gaps too."""
    streams = {}
    for voice, sentences in SENTENCES.items():
        clean, turns = spoken(voice, sentences)
        speech_power = np.mean(np.concatenate([clean[on:off] for on, off in turns]) ** 2)
        for snr in snrs:
            samples = clean
            if snr is not None:
                noise = coloured_noise(clean.size / RATE, 1, rng)
                noise *= np.sqrt(speech_power / 10 ** (snr / 10) / np.mean(noise ** 2))
                samples = clean + noise
            streams[(voice, snr)] = Stream(pcm16(telephone(samples)),
                                           [(on * 1000 // RATE, off * 1000 // RATE) for on, off in turns])
    return streams


# --- running and scoring ----------------------------------------------------------------

def detect(detector: SpeechDetector, pcm: bytes) -> Detected:
    turns: List[Tuple[int, Optional[int]]] = []
    frames = len(pcm) // FRAME_BYTES
    started = time.process_time()  # all threads: Silero's OpenMP workers would count too
    for index in range(frames):
        event = detector.feed(pcm[index * FRAME_BYTES:(index + 1) * FRAME_BYTES])
        if event == "start":
            turns.append(((index + 1) * FRAME_MS, None))
        elif event == "end":
            turns[-1] = (turns[-1][0], (index + 1) * FRAME_MS)
    return Detected(turns, time.process_time() - started, frames)


def score_speech(stream: Stream, detected: Detected) -> Tuple[int, List[int], List[int], int]:
    """Turns found, their start and end delays (ms), and starts outside any spoken turn."""
    found, start_delays, end_delays, claimed = 0, [], [], set()
    for onset, offset in stream.turns:
        inside = [turn for turn in detected.turns if onset - 200 <= turn[0] <= offset]
        claimed.update(inside)
        if len(inside) != 1:
            continue
        start, end = inside[0]
        start_delays.append(start - onset)
        if end is not None:
            end_delays.append(end - offset)
        if start - onset <= START_WITHIN_MS and end is not None and 0 <= end - offset <= END_WITHIN_MS:
            found += 1
    return found, start_delays, end_delays, len([t for t in detected.turns if t not in claimed])


def cpu_at_once(make_detector: Callable[[], SpeechDetector], pcm: bytes) -> float:
    """CPU µs per frame with CALLS_AT_ONCE calls fed at once, each on its own thread."""
    results: List[Detected] = []
    threads = [threading.Thread(target=lambda: results.append(detect(make_detector(), pcm)))
               for _ in range(CALLS_AT_ONCE)]
    started = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (time.process_time() - started) * 1e6 / sum(r.frames for r in results)


def creation_cost(make_detector: Callable[[], SpeechDetector]) -> Tuple[float, float]:
    """Time (ms) and memory (MB) of a new detector, the first one's imports left out."""
    make_detector()
    memory, started = resident_mb(), time.perf_counter()
    kept = [make_detector() for _ in range(10)]
    cost = (time.perf_counter() - started) * 100, (resident_mb() - memory) / len(kept)
    return cost


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def median(values: List[int]) -> str:
    return f"{statistics.median(values):.0f}" if values else "-"


def p90(values: List[int]) -> str:
    return f"{sorted(values)[int(0.9 * (len(values) - 1))]:.0f}" if values else "-"


# --- the benchmark ---------------------------------------------------------------------

def run(report: Callable[[str], None] = print, settings: VadSettings = VadSettings()) -> List[str]:
    report("rendering speech (espeak-ng) and noise ...")
    rng = np.random.default_rng(20240611)
    speech_streams, other_streams = speech(SNRS, rng), non_speech(rng)
    results = {}
    for name in CLASSIFIERS:
        report(f"{name}: feeding ...")
        results[name] = measure(detector_maker(name, settings), speech_streams, other_streams)
    rows = speech_rows(results, speech_streams) + non_speech_rows(results, other_streams)
    width = max(len(label) for label, _ in rows) + 2
    return header(settings, speech_streams) + [f"{'':{width}}" + "".join(f"{n:>12}" for n in results)] + [
        f"{label:{width}}" + "".join(f"{value:>12}" for value in values) for label, values in rows]


def detector_maker(name: str, settings: VadSettings) -> Callable[[], SpeechDetector]:
    make_classifier = CLASSIFIERS[name]
    return lambda: SpeechDetector(settings, make_classifier(settings))


def measure(make_detector: Callable[[], SpeechDetector], speech_streams: dict, other_streams: dict) -> dict:
    """One detector kind on all the audio, a new detector (call) per stream."""
    return {"speech": {key: score_speech(stream, detect(make_detector(), stream.pcm))
                       for key, stream in speech_streams.items()},
            "other": {key: detect(make_detector(), stream.pcm) for key, stream in other_streams.items()},
            "creation": creation_cost(make_detector),
            "at_once_us": cpu_at_once(make_detector, speech_streams[("en-gb", 10.0)].pcm)}


def speech_rows(results: dict, streams: dict) -> List[Tuple[str, List[str]]]:
    rows = []
    total = sum(len(streams[(voice, None)].turns) for voice in SENTENCES)
    for snr in SNRS:
        label = "clean" if snr is None else f"{snr:g} dB SNR"
        scored = {n: [s for (_, s_snr), s in r["speech"].items() if s_snr == snr] for n, r in results.items()}
        starts = [[delay for s in scores for delay in s[1]] for scores in scored.values()]
        ends = [[delay for s in scores for delay in s[2]] for scores in scored.values()]
        rows += [(f"turns found, {label}", [f"{sum(s[0] for s in scores)}/{total}" for scores in scored.values()]),
                 (f"  start delay ms, median / p90 ({label})", [f"{median(d)} / {p90(d)}" for d in starts]),
                 (f"  end delay ms, median / p90 ({label})", [f"{median(d)} / {p90(d)}" for d in ends])]
        if snr is not None:
            minutes = sum(s.speechless_minutes() for (_, s_snr), s in streams.items() if s_snr == snr)
            rows.append((f"  false starts/min between turns ({label})",
                         [f"{sum(s[3] for s in scores) / minutes:.1f}" for scores in scored.values()]))
    return rows


def non_speech_rows(results: dict, streams: dict) -> List[Tuple[str, List[str]]]:
    rows = [(f"false starts/min: {key}", [f"{len(r['other'][key].turns) / stream.minutes:.1f}"
                                           for r in results.values()]) for key, stream in streams.items()]
    minutes = sum(s.minutes for s in streams.values())
    detected = [list(r["other"].values()) for r in results.values()]
    return rows + [
        (f"false starts/min: all {minutes:.0f} min of non-speech",
         [f"{sum(len(d.turns) for d in ds) / minutes:.2f}" for ds in detected]),
        ("CPU µs per 20 ms frame, one call",
         [f"{sum(d.cpu_s for d in ds) * 1e6 / sum(d.frames for d in ds):.0f}" for ds in detected]),
        (f"CPU µs per frame, {CALLS_AT_ONCE} calls on {CALLS_AT_ONCE} threads",
         [f"{r['at_once_us']:.0f}" for r in results.values()]),
        ("new detector (one per call): ms, MB", ["{:.1f}, {:.1f}".format(*r["creation"]) for r in results.values()]),
    ]


def header(settings: VadSettings, speech_streams: dict) -> List[str]:
    total = sum(len(speech_streams[(voice, None)].turns) for voice in SENTENCES)
    return [
        f"Speech: espeak-ng {', '.join(SENTENCES)}, {total} sentences, through G.711 u-law (8 kHz);",
        f"{LEAD_MS / 1000:g} s silence before and {GAP_MS / 1000:g} s after each; noisy copies: pink noise throughout.",
        f'A turn is found: one "start" within {START_WITHIN_MS} ms of its onset, "end" within {END_WITHIN_MS} ms '
        f"of its offset",
        f"(min_speech_ms {settings.min_speech_ms}, hangover_ms {settings.hangover_ms}). Non-speech: {NON_SPEECH_S} s "
        "of each, through G.711, a new detector each.",
        "",
    ]
