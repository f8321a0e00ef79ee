"""The intents built into the code, shared by every language. Every other intent is a topic:
data in topics.yml (voicebot.config.topics), answered as each line says."""

SMALL_TALK = ("greet", "goodbye", "thank", "affirm", "deny", "chitchat")
# Answered from the line's offices (real logic, not canned text).
OFFICE_INTENTS = ("opening_hours", "office_location")
BUILT_IN_INTENTS = SMALL_TALK + OFFICE_INTENTS + ("request_agent", "callback_request", "out_of_scope")
