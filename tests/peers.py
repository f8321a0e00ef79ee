"""Callers no one here wrote: SIPp (Debian's sip-tester) running a scenario from tests/sipp, and
the baresip softphone."""

import subprocess
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

from voicebot.audio.tts import Speech
from voicebot.ports import free_port

SCENARIOS = Path(__file__).resolve().parent / "sipp"
DTMF_PCAP = "/usr/share/sip-tester/dtmf_2833_{digit}.pcap"


@dataclass
class SippRun:
    call_id: str
    returncode: int
    output: str


def run_sipp(sip_port: int, number: str, scenario: str, workdir: Path, timeout: int = 60,
             local_ip: str = "127.0.0.1", extra: tuple = (), **fill) -> SippRun:
    """One call from SIPp on local_ip to the bot on 127.0.0.1:sip_port. `fill` replaces @KEY@
    placeholders in the scenario (pause lengths and media actions cannot be SIPp keywords);
    `extra` are more SIPp options."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = (SCENARIOS / scenario).read_text()
    for key, value in fill.items():
        text = text.replace(f"@{key.upper()}@", str(value))
    path = workdir / scenario.replace(".in", "")
    path.write_text(text)
    for _ in range(3):  # free_port() checks TCP; SIPp's UDP ports may be taken (errno 98): new ones
        tag = f"sipp-{uuid.uuid4()}"
        errors = workdir / "sipp_errors.log"
        errors.unlink(missing_ok=True)
        done = subprocess.run(
            ["sipp", f"127.0.0.1:{sip_port}", "-sf", str(path), "-s", number, "-cid_str", f"{tag}-%u@%s",
             "-i", local_ip, "-p", str(free_port()), "-mi", local_ip, "-mp", str(free_port()),
             "-m", "1", "-nostdin", "-timeout", f"{timeout}s", "-timeout_error", "-trace_err",
             "-error_file", str(errors), *extra],
            cwd=workdir, capture_output=True, text=True, timeout=timeout + 30)
        output = done.stdout[-3000:] + done.stderr[-3000:] + (errors.read_text()[-3000:] if errors.exists() else "")
        if "errno = 98" not in output:
            break
    return SippRun(f"{tag}-1@{local_ip}", done.returncode, output)


BARESIP_CONFIG = """\
poll_method epoll
sip_listen 127.0.0.1:{port}
audio_source aufile,{source}
audio_player aubridge,ear
audio_alert aubridge,ear
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app account.so
module_app menu.so
snd_path {workdir}
"""


def baresip_call(uri: str, speech: bytes, rate: int, seconds: int, workdir: Path) -> Path:
    """baresip dials uri, speaks `speech` (16-bit PCM at `rate`) as its microphone, hangs up
    after `seconds`; returns the WAV of what it heard (its sndfile module's decoder dump)."""
    source = workdir / "microphone.wav"
    # Silence after the speech: baresip 1.0 ends the call when its audio file ends.
    source.write_bytes(Speech(speech.ljust(rate * 2 * seconds, b"\0"), rate).wav_bytes())
    (workdir / "config").write_text(BARESIP_CONFIG.format(port=free_port(), source=source, workdir=workdir))
    (workdir / "accounts").write_text("<sip:baresip@127.0.0.1>;regint=0\n")
    done = subprocess.run(["baresip", "-f", str(workdir), "-e", f"/dial {uri}", "-t", str(seconds)],
                          capture_output=True, text=True, timeout=seconds + 30)
    heard = sorted(workdir.glob("dump-*-dec.wav"))
    assert done.returncode == 0 and heard, done.stdout[-3000:] + done.stderr[-3000:]
    return heard[-1]


def wav_samples(path: Path):
    import numpy as np

    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float32), wav.getframerate()
