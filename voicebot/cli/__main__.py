"""`python -m voicebot.cli`: how tests, `voicebot demo` and the cluster start the command."""

from voicebot.cli import main

main()
