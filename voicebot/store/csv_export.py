"""The operators' figures and the calls of a period as CSV, for a spreadsheet: the same numbers
as the report (`voicebot report`, the operations page), and the calls as they are stored (the
caller's last digits only). A text cell that a spreadsheet would run as a formula (a Call-ID is
whatever the caller's phone sent) is kept as text with a leading apostrophe."""

import csv
import io
from typing import Iterable

from voicebot.dialogue.payloads import HANDOFF_REASONS
from voicebot.store.models import Call
from voicebot.store.report import Figures, Report

FIGURE_COLUMNS = ("scope", "name", "calls", "ended", "settled", "handoff", "containment", "handoff_rate",
                  *(f"handoff_{reason}" for reason in HANDOFF_REASONS), "queued", "answered", "service_level",
                  "abandoned", "abandon_rate", "average_wait_s", "since", "until")
CALL_COLUMNS = ("id", "channel", "line", "municipality", "started_at", "ended_at", "outcome", "topic",
                "handoff_reason", "queue", "queue_result", "waited_s", "turns", "caller_ending")


def figures_csv(report: Report) -> str:
    """One row for all calls, then one per channel (phone, text), line, municipality (shared lines)
    and topic."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIGURE_COLUMNS)
    scopes = [("all", {"all": report.total}), ("channel", report.by_channel), ("line", report.by_line),
              ("municipality", report.by_municipality), ("topic", report.by_topic)]
    for scope, named in scopes:
        for name, figures in named.items():
            writer.writerow([scope, _text(name), *_figures(figures), report.since.isoformat(), report.until.isoformat()])
    return out.getvalue()


def _figures(f: Figures) -> list:
    return [f.calls, f.ended, f.outcomes["settled"], f.outcomes["handoff"], _blank(f.containment),
            _blank(f.handoff_rate), *(f.handoff_reasons[reason] for reason in HANDOFF_REASONS), f.queued, f.answered,
            _blank(f.service_level), f.abandoned, _blank(f.abandon_rate), _blank(f.average_wait_s)]


def calls_csv(calls: Iterable[Call]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CALL_COLUMNS)
    for call in calls:
        writer.writerow([_text(call.id), call.channel, call.tenant, _text(call.municipality), _time(call.started_at),
                         _time(call.ended_at), _text(call.outcome), _text(call.topic), _text(call.handoff_reason),
                         _text(call.queue), _text(call.queue_result), _blank(call.waited_s), call.turns,
                         _text(call.caller_ending)])
    return out.getvalue()


def _text(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _blank(value) -> str:
    return "" if value is None else str(value)


def _time(moment) -> str:
    return "" if moment is None else moment.isoformat(timespec="seconds") + "Z"
