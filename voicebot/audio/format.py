"""The one audio format inside the bot: what calls are bridged at, what the VAD and the
recognisers are fed, what prompts are rendered at for the line. pjsua converts each codec
(G.711 at 8 kHz, G.722 at 16 kHz) to and from it."""

RATE = 16000  # samples a second, 16-bit signed little-endian mono
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
