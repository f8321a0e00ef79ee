"""What every configuration model shares."""

from pydantic import BaseModel, Extra


class Strict(BaseModel):
    """Unknown keys are errors (a typo must not pass silently), and a loaded value is not changed."""

    class Config:
        extra = Extra.forbid
        allow_mutation = False
