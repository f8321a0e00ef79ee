"""Checking an action server's reply once per reply, not the schema as well.

Rasa 3.6 checks every reply of the action server with `jsonschema.validate`, which first checks
the reply schema itself against JSON Schema's metaschema: with jsonschema 4.17 that was about 90%
of the turn's Rasa time under a profiler (Korean line: 93 of 121 ms per turn). The schema never
changes, so it is checked once here and its validator kept; a reply it finds wrong goes to
Rasa's own check, which raises Rasa's error as before."""

import functools


def use_compiled_reply_check() -> None:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    if getattr(RemoteAction._validate_action_result, "compiled", False):
        return
    rasa_check = RemoteAction._validate_action_result
    schema = RemoteAction.action_response_format_spec()
    kind = validator_for(schema)
    kind.check_schema(schema)
    validator = kind(schema)

    @functools.wraps(rasa_check)
    def check(self, result) -> bool:
        return validator.is_valid(result) or rasa_check(self, result)

    check.compiled = True
    RemoteAction._validate_action_result = check
