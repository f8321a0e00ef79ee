"""Where a test run's time goes: every module- and session-scoped fixture's set-up time (bot
processes, private servers, trained models) is written by each process of the run (xdist
workers too) to var/test-times/, and the run ends with the ten slowest, beside pytest's own
--durations. `.ci/run` prints both."""

import json
import os
import time
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1] / "var" / "test-times"


def _worker(config) -> str:
    return getattr(config, "workerinput", {}).get("workerid", "main")


def pytest_configure(config):
    if _worker(config) == "main":  # the run's first process: a fresh report
        FOLDER.mkdir(parents=True, exist_ok=True)
        for old in FOLDER.glob("fixtures-*.jsonl"):
            old.unlink()


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    started = time.monotonic()
    yield
    if fixturedef.scope in ("module", "session"):
        entry = {"fixture": fixturedef.argname, "scope": fixturedef.scope, "s": round(time.monotonic() - started, 1),
                 "for": request.node.nodeid, "worker": _worker(request.config)}
        with open(FOLDER / f"fixtures-{entry['worker']}-{os.getpid()}.jsonl", "a") as out:
            out.write(json.dumps(entry) + "\n")


def pytest_terminal_summary(terminalreporter, config):
    if _worker(config) != "main":
        return
    entries = [json.loads(line) for path in FOLDER.glob("fixtures-*.jsonl") for line in path.read_text().splitlines()]
    if not entries:
        return
    terminalreporter.section("slowest fixture set-ups (module and session scope)")
    for entry in sorted(entries, key=lambda e: -e["s"])[:10]:
        terminalreporter.write_line(f"{entry['s']:7.1f}s {entry['scope']:8} {entry['fixture']:20} "
                                    f"[{entry['worker']}] for {entry['for']}")
    terminalreporter.write_line(f"{sum(e['s'] for e in entries):7.1f}s in all, {len(entries)} set-ups")
