"""Speech for SIPp's rtp_stream, shared by the SIPp tests (tests/peers.py) and bench cluster."""

import audioop
from pathlib import Path

from voicebot.audio.format import FRAME_MS

PACKET_BYTES = 8 * FRAME_MS  # one 20 ms G.711 packet at 8 kHz


def ulaw_speech(text: str, lang: str, path: Path) -> int:
    """Writes text spoken by espeak-ng as raw G.711 mu-law at 8 kHz to path; returns its length
    in ms. The speech is padded with silence to whole packets: SIPp fills a last short packet
    with stale bytes, a click that the bot's packet-loss concealment stretches, once the stream
    stops, into a sound it hears as one more turn."""
    from voicebot.audio.tts import Synthesizer

    pcm = Synthesizer(lang).render(text, 8000).pcm
    pcm += bytes(-len(pcm) % (2 * PACKET_BYTES))
    path.write_bytes(audioop.lin2ulaw(pcm, 2))
    return len(pcm) // 2 // 8
