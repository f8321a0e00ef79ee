"""The phone line: a pjsua2 SIP endpoint, per-call media and the bot's calls (the test phone that
calls it is voicebot/testing/phone.py)."""
