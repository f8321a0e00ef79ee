"""Prometheus metrics (GET /metrics): calls, outcomes, handoffs by reason, turn latency, the
recogniser's real-time factor, queues and agents. Labels are only configured names (lines,
queues, intents, reasons), never anything a caller said, so no identifier can reach them."""

from typing import Callable, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from voicebot.timeline import Kind

LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)
WAIT_BUCKETS = (5, 10, 20, 30, 60, 120, 300, 600, 1800)
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


class Metrics:
    """`queue_snapshot`: the queue's state, read at each scrape for queue length and agent states."""

    def __init__(self, queue_snapshot: Optional[Callable[[], dict]] = None):
        self.registry = CollectorRegistry()
        r = self.registry
        self.calls = Counter("voicebot_calls", "Calls and text conversations started", ["tenant", "channel"], registry=r)
        self.ended = Counter("voicebot_calls_ended", "Calls ended, by outcome", ["tenant", "channel", "outcome"],
                             registry=r)
        self.turns = Counter("voicebot_turns", "Turns, by intent understood", ["tenant", "intent"], registry=r)
        self.handoffs = Counter("voicebot_handoffs", "Handoffs to a person, by reason, topic and municipality "
                                "(on a shared line)", ["tenant", "reason", "topic", "municipality"],
                                registry=r)
        self.turn_latency = Histogram("voicebot_turn_latency_seconds", "End of the caller's speech to the bot's "
                                      "first audio", ["tenant"], buckets=LATENCY_BUCKETS, registry=r)
        self.dialogue_latency = Histogram("voicebot_dialogue_latency_seconds", "NLU and dialogue time per turn",
                                          ["tenant"], buckets=LATENCY_BUCKETS, registry=r)
        self.asr_rtf = Histogram("voicebot_asr_real_time_factor", "Recogniser time over speech time per utterance",
                                 ["language"], buckets=RTF_BUCKETS, registry=r)
        self.queue_wait = Histogram("voicebot_queue_wait_seconds", "Time callers waited in the queue, by result",
                                    ["queue", "result"], buckets=WAIT_BUCKETS, registry=r)
        if queue_snapshot:
            r.register(_QueueCollector(queue_snapshot))

    def observe(self, record, event: dict) -> None:
        """One call record event (see voicebot.store.record)."""
        tenant, kind = record.tenant, Kind(event["event"])
        if kind == Kind.BOT:
            self.turns.labels(tenant, event.get("intent") or "none").inc()
            if event.get("dialogue_ms") is not None:
                self.dialogue_latency.labels(tenant).observe(event["dialogue_ms"] / 1000)
            if event.get("handoff"):  # topics and municipalities come from the configuration: few values
                handoff = event["handoff"]
                self.handoffs.labels(tenant, handoff.get("reason") or "unknown", (handoff.get("topics") or ["none"])[-1],
                                     handoff.get("municipality") or "").inc()
        elif kind == Kind.PLAYING and event.get("turn_ms") is not None:
            self.turn_latency.labels(tenant).observe(event["turn_ms"] / 1000)
        elif kind == Kind.HEARD and event.get("speech_ms") and event.get("asr_busy_ms") is not None:
            self.asr_rtf.labels(record.language).observe(event["asr_busy_ms"] / event["speech_ms"])
        elif kind in (Kind.QUEUE_ANSWERED, Kind.QUEUE_ABANDONED) and event.get("waited_s") is not None:
            self.queue_wait.labels(event.get("queue", ""), kind.value.split("_")[1]).observe(event["waited_s"])

    def started(self, record) -> None:
        self.calls.labels(record.tenant, record.channel).inc()

    def ended_call(self, record, outcome: Optional[str]) -> None:
        self.ended.labels(record.tenant, record.channel, outcome or "unknown").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _QueueCollector:
    def __init__(self, snapshot: Callable[[], dict]):
        self.snapshot = snapshot

    def collect(self):
        state = self.snapshot()
        waiting = GaugeMetricFamily("voicebot_queue_callers", "Callers waiting now", labels=["queue"])
        oldest = GaugeMetricFamily("voicebot_queue_oldest_wait_seconds", "Longest current wait", labels=["queue"])
        for queue in state["queues"]:
            waiting.add_metric([queue["id"]], len(queue["waiting"]))
            oldest.add_metric([queue["id"]], max((w["waited_s"] for w in queue["waiting"]), default=0))
        agents = GaugeMetricFamily("voicebot_agents", "Agents by state", labels=["state"])
        for state_name in ("logged_out", "available", "ringing", "busy", "wrap_up", "paused"):
            agents.add_metric([state_name], sum(a["state"] == state_name for a in state["agents"]))
        if "shared" not in state:
            return [waiting, oldest, agents]
        shared = GaugeMetricFamily("voicebot_queue_shared", "1 while queue and agent state is shared with the "
                                   "other workers through Redis, 0 while this worker queues on its own")
        shared.add_metric([], 1 if state["shared"] else 0)
        return [waiting, oldest, agents, shared]
