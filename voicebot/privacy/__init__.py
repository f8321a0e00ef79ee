"""Privacy: personal identifiers redacted before anything about a call is stored or logged."""

from voicebot.privacy.redaction import (RedactingFilter, ends_in_number, redact, redact_across, redact_event_dict,
                                        redact_value)

__all__ = ["RedactingFilter", "ends_in_number", "redact", "redact_across", "redact_event_dict", "redact_value"]
