"""The operators' and trainers' web pages, served by `voicebot serve` under /dashboard."""
