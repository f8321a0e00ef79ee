import re
from pathlib import Path
from typing import Sequence, Union

import pydantic


class ConfigError(Exception):
    """A configuration file is invalid; the message names the file and the key."""


def key_path(loc: Sequence[Union[str, int]]) -> str:
    path = ""
    for part in loc:
        if part == "__root__":
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _line(path: Path, error: dict) -> str:
    key, message = key_path(error["loc"]), error["msg"]
    # Cross-field checks run on the whole object and put the key they mean first.
    named = re.match(r"^([a-z_][\w.]*): (.*)$", message, re.S)
    if named and key_path([p for p in error["loc"] if p != "__root__"]) == "(top level)":
        key, message = named.groups()
    return f"{path}: {key}: {message}"


def config_error(path: Path, error: pydantic.ValidationError) -> ConfigError:
    lines = [_line(path, e) for e in error.errors()]
    return ConfigError("invalid configuration\n  " + "\n  ".join(lines))
