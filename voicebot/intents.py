"""Intent names shared by every language, grouped by what the bot does with them."""

SMALL_TALK = ("greet", "goodbye", "thank", "affirm", "deny", "chitchat")
# Answered from the tenant's guidance text.
GUIDANCE_INTENTS = (
    "book_appointment", "passport", "driving_licence", "change_address",
    "digital_id_help", "digital_self_service", "waste_collection", "childcare",
)
# Answered from the tenant's offices (real logic, not canned text).
OFFICE_INTENTS = ("opening_hours", "office_location")
ROUTINE_INTENTS = OFFICE_INTENTS + GUIDANCE_INTENTS
# Need a person: handed off with a reason.
HANDOFF_INTENTS = ("request_agent", "case_status", "complaint")
ALL_INTENTS = SMALL_TALK + ROUTINE_INTENTS + HANDOFF_INTENTS + ("callback_request", "out_of_scope")
