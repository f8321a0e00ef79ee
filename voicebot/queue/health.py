"""How each queue stands against its thresholds (voicebot.yml, queues.<id>.alert_when): for the
operators' wallboard, live, and as Prometheus alert rules on the bot's own metrics."""

from typing import List, Optional

from prometheus_client.utils import floatToGoString

from voicebot.config.settings import Settings
from voicebot.metrics import WAIT_BUCKETS


def queue_health(settings: Settings, snapshot: dict) -> List[dict]:
    """Per queue: callers waiting, the longest wait, the service level since start-up, the
    thresholds, and what is over them now."""
    rows = []
    for queue in snapshot["queues"]:
        config = settings.queues[queue["id"]]
        limits = config.alert_when
        waits = [w["waited_s"] for w in queue["waiting"]]
        stats = queue["stats"].values()
        in_time, done = (sum(s["answered_in_time"] for s in stats),
                         sum(s["answered"] + s["abandoned"] for s in stats))
        level = round(in_time / done, 3) if done else None
        over = []
        if limits.callers_waiting is not None and len(waits) >= limits.callers_waiting:
            over.append(f"{len(waits)} waiting (alert at {limits.callers_waiting})")
        if limits.longest_wait_s is not None and waits and max(waits) >= limits.longest_wait_s:
            over.append(f"a caller has waited {max(waits):.0f} s (alert at {limits.longest_wait_s:.0f} s)")
        if limits.service_level is not None and level is not None and level < limits.service_level:
            over.append(f"service level {level:.0%} (alert below {limits.service_level:.0%})")
        rows.append({"id": queue["id"], "name": queue["name"], "waiting": len(waits),
                     "longest_wait_s": max(waits, default=0), "service_level": level,
                     "limits": limits.dict(), "over": over})
    return rows


def alert_rules(settings: Settings) -> dict:
    """A Prometheus rule file with each queue's thresholds, on the metrics GET /metrics serves."""
    rules = []
    for queue_id, queue in settings.queues.items():
        limits, label = queue.alert_when, f'queue="{queue_id}"'
        if limits.callers_waiting is not None:
            rules.append(_rule("VoicebotCallersWaiting", queue_id, queue.name,
                               f"sum(voicebot_queue_callers{{{label}}}) >= {limits.callers_waiting}",
                               f"{limits.callers_waiting} or more callers waiting"))
        if limits.longest_wait_s is not None:
            rules.append(_rule("VoicebotLongWait", queue_id, queue.name,
                               f"max(voicebot_queue_oldest_wait_seconds{{{label}}}) >= {limits.longest_wait_s:g}",
                               f"a caller waiting {limits.longest_wait_s:g} s or longer"))
        bucket = _bucket_within(queue.service_level_s)
        if limits.service_level is not None and bucket is not None:
            answered = f'voicebot_queue_wait_seconds_bucket{{{label},result="answered",le="{floatToGoString(bucket)}"}}'
            done = f"voicebot_queue_wait_seconds_count{{{label}}}"
            rules.append(_rule("VoicebotServiceLevel", queue_id, queue.name,
                               f"sum(increase({answered}[1h])) / sum(increase({done}[1h])) < {limits.service_level:g}",
                               f"under {limits.service_level:.0%} answered within {bucket:g} s over the last hour"))
    return {"groups": [{"name": "voicebot-queues", "rules": rules}]}


def _rule(alert: str, queue_id: str, name: str, expr: str, summary: str) -> dict:
    return {"alert": alert, "expr": expr, "for": "1m", "labels": {"severity": "warning", "queue": queue_id},
            "annotations": {"summary": f"{name}: {summary}"}}


def _bucket_within(seconds: float) -> Optional[float]:
    """The wait histogram's largest bucket within the service level time (its buckets are fixed)."""
    return max((b for b in WAIT_BUCKETS if b <= seconds), default=None)
