"""The benchmarks behind `voicebot bench ...`, one module each, and the results file they write
(results: benchmarks/RESULTS.md)."""
