"""Privacy: personal identifiers redacted before anything about a call is stored or logged."""

from voicebot.privacy.redaction import RedactingFilter, redact, redact_event_dict, redact_value

__all__ = ["RedactingFilter", "redact", "redact_event_dict", "redact_value"]
