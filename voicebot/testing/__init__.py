"""The test harness, not the product: the test phone that dials the bot (phone), test lines'
installations (lines; the Korean line, korean, with its data in data/korean), baresip softphones
as agents and the demo installation with agents (agents), fakes for a call's edges (call_edges).
Used by the tests, `voicebot call`, `voicebot demo` and the benchmarks (voicebot/bench); nothing
in the running bot imports it."""
