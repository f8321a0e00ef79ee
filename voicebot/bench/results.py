"""Benchmark results file: one section per benchmark, replaced on each run, with its command."""

import datetime as dt
import os
import platform
import re
from pathlib import Path
from typing import List

HEADER = "# Benchmark results\n\nWritten by the commands named in each section; figures from one run.\n"


def record(path: Path, section: str, command: str, lines: List[str]) -> Path:
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    body = (f"## {section}\n\nCommand: `{command}`  \nRun: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
            f" on {machine}\n\n```\n" + "\n".join(lines).rstrip() + "\n```\n")
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: body + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
