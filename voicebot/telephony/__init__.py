"""The phone line: a pjsua2 SIP endpoint, per-call media, the bot's calls and a test caller."""
