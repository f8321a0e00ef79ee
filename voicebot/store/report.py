"""The figures operators steer by, over a period: per line and per topic, containment (settled
by the bot), handoff rate and reasons, service level, abandonment, wait, callbacks; and what the
bot most often did not understand. Aggregated in SQL, so 100,000 calls stay fast."""

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from voicebot.store.models import Call, Callback, Turn


@dataclass
class Figures:
    calls: int = 0  # started in the period
    ended: int = 0
    outcomes: Counter = field(default_factory=Counter)
    handoff_reasons: Counter = field(default_factory=Counter)
    queued: int = 0  # reached the agent queue
    answered: int = 0
    answered_in_time: int = 0  # within the queue's service_level_s
    abandoned: int = 0  # hung up while waiting
    wait_total_s: float = 0.0

    def add(self, outcome: Optional[str], reason: Optional[str], result: Optional[str], count: int,
            in_time: Optional[int], waited: Optional[float]) -> None:
        """Count `count` calls that ended so (outcome None: still going), reached the queue so."""
        self.calls += count
        if outcome:
            self.ended += count
            self.outcomes[outcome] += count
        if reason and outcome == "handoff":
            self.handoff_reasons[reason] += count
        if result in ("answered", "abandoned", "callback"):
            self.queued += count
        if result == "answered":
            self.answered += count
            self.answered_in_time += int(in_time or 0)
        if result == "abandoned":
            self.abandoned += count
        if result in ("answered", "abandoned"):
            self.wait_total_s += float(waited or 0)

    def rate(self, part: int, whole: int) -> Optional[float]:
        return round(part / whole, 3) if whole else None

    @property
    def containment(self) -> Optional[float]:
        return self.rate(self.outcomes["settled"], self.ended)

    @property
    def handoff_rate(self) -> Optional[float]:
        return self.rate(self.outcomes["handoff"], self.ended)

    @property
    def service_level(self) -> Optional[float]:
        return self.rate(self.answered_in_time, self.answered + self.abandoned)

    @property
    def abandon_rate(self) -> Optional[float]:
        return self.rate(self.abandoned, self.queued)

    @property
    def average_wait_s(self) -> Optional[float]:
        waited = self.answered + self.abandoned
        return round(self.wait_total_s / waited, 1) if waited else None

    def as_dict(self) -> dict:
        return {"calls": self.calls, "ended": self.ended, "outcomes": dict(self.outcomes),
                "containment": self.containment, "handoff_rate": self.handoff_rate,
                "handoff_reasons": dict(self.handoff_reasons), "queued": self.queued, "answered": self.answered,
                "service_level": self.service_level, "abandoned": self.abandoned,
                "abandon_rate": self.abandon_rate, "average_wait_s": self.average_wait_s}


@dataclass
class Report:
    since: dt.datetime
    until: dt.datetime
    line: Optional[str]
    total: Figures
    by_line: Dict[str, Figures]
    by_topic: Dict[str, Figures]
    callbacks_open: int
    not_understood: List[Tuple[str, int]]
    per_day: List[Tuple[str, int, int]]  # (day, calls, settled by the bot)
    by_municipality: Dict[str, Figures] = field(default_factory=dict)  # "line/municipality" on shared lines
    by_channel: Dict[str, Figures] = field(default_factory=dict)  # phone calls apart from text conversations

    def as_dict(self) -> dict:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "line": self.line,
                "total": self.total.as_dict(), "callbacks_open": self.callbacks_open,
                "by_line": {k: v.as_dict() for k, v in self.by_line.items()},
                "by_municipality": {k: v.as_dict() for k, v in self.by_municipality.items()},
                "by_topic": {k: v.as_dict() for k, v in self.by_topic.items()},
                "by_channel": {k: v.as_dict() for k, v in self.by_channel.items()},
                "not_understood": [{"text": t, "count": n} for t, n in self.not_understood],
                "per_day": [{"day": d, "calls": n, "settled": s} for d, n, s in self.per_day]}


def build_report(session: Session, since: dt.datetime, until: dt.datetime, line: Optional[str] = None,
                 service_levels: Mapping[str, float] = {}, top: int = 10) -> Report:
    """Figures for calls started in [since, until) (naive UTC); `service_levels` maps a queue to
    its service_level_s."""
    where = [Call.started_at >= since, Call.started_at < until] + ([Call.tenant == line] if line else [])
    rows = session.execute(
        sa.select(Call.channel, Call.tenant, Call.municipality, Call.topic, Call.outcome, Call.handoff_reason,
                  Call.queue_result, sa.func.count(), sa.func.sum(_answered_in_time(service_levels)),
                  sa.func.sum(Call.waited_s))
        .where(*where)
        .group_by(Call.channel, Call.tenant, Call.municipality, Call.topic, Call.outcome, Call.handoff_reason,
                  Call.queue_result))
    total, by_line, by_municipality, by_topic, by_channel = Figures(), {}, {}, {}, {}
    for channel, tenant, municipality, topic, outcome, reason, result, count, in_time_count, waited in rows:
        split = [total, by_line.setdefault(tenant, Figures()), by_topic.setdefault(topic or "(none)", Figures()),
                 by_channel.setdefault(channel, Figures())]
        if municipality:  # a shared line's calls, by the municipality the caller meant
            split.append(by_municipality.setdefault(f"{tenant}/{municipality}", Figures()))
        for figures in split:
            figures.add(outcome, reason, result, count, in_time_count, waited)
    callbacks = sa.select(sa.func.count()).select_from(Callback).where(Callback.status == "open")
    if line:
        callbacks = callbacks.where(Callback.tenant == line)
    turn_where = [Turn.intent == "nlu_fallback", Turn.text.isnot(None), Turn.at >= since, Turn.at < until]
    misses = session.execute(
        sa.select(Turn.text, sa.func.count().label("n"))
        .where(*turn_where, *([Turn.tenant == line] if line else []))
        .group_by(Turn.text).order_by(sa.desc("n"), Turn.text).limit(top))
    day = sa.func.date(Call.started_at)
    days = session.execute(sa.select(day, sa.func.count(), sa.func.sum(sa.case((Call.outcome == "settled", 1), else_=0)))
                           .where(*where).group_by(day).order_by(day))
    return Report(since, until, line, total, dict(sorted(by_line.items())),
                  dict(sorted(by_topic.items(), key=lambda kv: -kv[1].calls)),
                  session.scalar(callbacks) or 0, [(text, n) for text, n in misses],
                  [(str(d), n, int(s or 0)) for d, n, s in days], dict(sorted(by_municipality.items())),
                  dict(sorted(by_channel.items())))


def _answered_in_time(service_levels: Mapping[str, float]):
    """1 for a call an agent answered within its queue's service_level_s, else 0 (in SQL)."""
    if not service_levels:
        return sa.literal(0)
    return sa.case(*[(sa.and_(Call.queue == q, Call.waited_s <= s, Call.queue_result == "answered"), 1)
                     for q, s in service_levels.items()], else_=0)


TREND_GROUPS = {"line": Call.tenant, "topic": Call.topic, "municipality": Call.municipality}


@dataclass
class Trend:
    """Figures per hour or day (UTC), every period of [since, until) present, empty ones as zero,
    for all calls and per line, topic or municipality."""

    step: str  # "hour" or "day"
    periods: List[str]  # "2026-12-01" or "2026-12-01 14:00"
    total: List[Figures]
    by: Dict[str, List[Figures]]  # name -> figures per period


def build_trend(session: Session, since: dt.datetime, until: dt.datetime, step: str, group: str,
                line: Optional[str] = None, service_levels: Mapping[str, float] = {}) -> Trend:
    """`step` hour or day; `group` line, topic or municipality (a shared line's)."""
    periods = _periods(since, until, step)
    bucket = _bucket(session, step)
    column = TREND_GROUPS[group]
    where = [Call.started_at >= since, Call.started_at < until] + ([Call.tenant == line] if line else [])
    rows = session.execute(
        sa.select(bucket, column, Call.outcome, Call.handoff_reason, Call.queue_result, sa.func.count(),
                  sa.func.sum(_answered_in_time(service_levels)), sa.func.sum(Call.waited_s))
        .where(*where).group_by(bucket, column, Call.outcome, Call.handoff_reason, Call.queue_result))
    index = {period: i for i, period in enumerate(periods)}
    total, by = [Figures() for _ in periods], {}
    for period, name, outcome, reason, result, count, in_time_count, waited in rows:
        if period not in index:
            continue
        # A call on a line for one municipality has none: it counts in the total only.
        series = [total] + ([by.setdefault(name or "(none)", [Figures() for _ in periods])]
                            if name or group != "municipality" else [])
        for figures in series:
            figures[index[period]].add(outcome, reason, result, count, in_time_count, waited)
    return Trend(step, periods, total, dict(sorted(by.items())))


def _periods(since: dt.datetime, until: dt.datetime, step: str) -> List[str]:
    size = dt.timedelta(hours=1) if step == "hour" else dt.timedelta(days=1)
    moment = since.replace(minute=0, second=0, microsecond=0)
    if step == "day":
        moment = moment.replace(hour=0)
    periods = []
    while moment < until:
        periods.append(moment.strftime("%Y-%m-%d %H:00" if step == "hour" else "%Y-%m-%d"))
        moment += size
    return periods


def _bucket(session: Session, step: str):
    """The period a call started in, as _periods writes it, in the database's own dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(Call.started_at, "YYYY-MM-DD HH24:00" if step == "hour" else "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d %H:00" if step == "hour" else "%Y-%m-%d", Call.started_at)


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.0%}"


def format_report(report: Report) -> str:
    """The report as a terminal table."""
    head = f"{'':24} {'calls':>6} {'ended':>6} {'contained':>9} {'handoff':>8} {'service':>8} {'abandon':>8} {'wait s':>7}"

    def row(name: str, f: Figures) -> str:
        wait = "-" if f.average_wait_s is None else f"{f.average_wait_s:.0f}"
        return (f"{name[:24]:24} {f.calls:6d} {f.ended:6d} {_percent(f.containment):>9} {_percent(f.handoff_rate):>8}"
                f" {_percent(f.service_level):>8} {_percent(f.abandon_rate):>8} {wait:>7}")

    lines = [f"calls from {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
             + (f", line {report.line}" if report.line else ""), "", head, row("all", report.total), "", "by line"]
    lines += [row(name, f) for name, f in report.by_line.items()]
    if report.by_municipality:
        lines += ["", "by municipality (shared lines)"] + [row(name, f) for name, f in report.by_municipality.items()]
    lines += ["", "by topic (first intent that names it)"] + [row(name, f) for name, f in report.by_topic.items()]
    reasons = report.total.handoff_reasons
    lines += ["", "handoffs by reason: " + (", ".join(f"{r} {n}" for r, n in reasons.most_common()) or "none"),
              f"callbacks open: {report.callbacks_open}"]
    if report.not_understood:
        lines += ["", "not understood most often:"] + [f"{n:5d}  {text}" for text, n in report.not_understood]
    return "\n".join(lines)
