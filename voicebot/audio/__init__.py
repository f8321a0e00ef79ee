"""Audio: speech out (TTS) now; VAD and ASR come with the phone line."""
