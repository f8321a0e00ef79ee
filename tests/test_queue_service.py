"""The queue's own rules, without SIP: who rings next, what a missed ring does, the wait estimate.
The ringing itself is the telephony side's (tests/test_agent_queue.py rings real softphones)."""

import asyncio

from voicebot.config.settings import Settings
from voicebot.queue.local import LocalQueue
from voicebot.queue.model import AgentState, RingResult, Waiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service(strategy: str = "longest_idle") -> LocalQueue:
    settings = Settings.parse_obj({
        "queues": {"q": {"name": "Q", "strategy": strategy, "wrap_up_s": 0}},
        "agents": {name: {"name": name, "uri": f"sip:{name}@192.0.2.1", "queues": ["q"]} for name in ("a", "b", "c")}})
    return LocalQueue(settings, Clock())


def answered_by(name: str):
    """A caller whose phone line connects them to `name` if rung, and notes who was rung."""
    rung = []

    async def ring(agents, timeout):
        rung.append(sorted(a.id for a in agents))
        chosen = next((a for a in agents if a.id == name), None)
        return RingResult(chosen, [(a, "no answer") for a in agents if a is not chosen])
    return ring, rung


def test_longest_idle_agent_rings_first_and_one_who_misses_is_paused():
    async def scenario():
        queues = service()
        queues.agents["b"].since -= 30  # b has been idle longest, then a, then c
        queues.agents["a"].since -= 20
        ring, rung = answered_by("a")
        waiter = Waiter("call-1", "city", "q", ring)
        queues.join(waiter)
        while waiter.answered_by is None:
            await asyncio.sleep(0)
        assert rung == [["b"], ["a"]]
        assert queues.agents["b"].state == AgentState.PAUSED and queues.agents["b"].reason == "no answer"
        assert queues.agents["a"].state == AgentState.BUSY and queues.agents["c"].state == AgentState.AVAILABLE
        queues.finished(queues.agents["a"])
        await asyncio.sleep(0.01)  # wrap-up 0 s
        assert queues.agents["a"].state == AgentState.AVAILABLE
    asyncio.run(scenario())


def test_ring_all_rings_every_free_agent_and_only_missed_ones_are_paused():
    async def scenario():
        queues = service("ring_all")
        queues.set_presence("c", "paused")
        ring, rung = answered_by("b")
        waiter = Waiter("call-1", "city", "q", ring)
        queues.join(waiter)
        while waiter.answered_by is None:
            await asyncio.sleep(0)
        assert rung == [["a", "b"]] and queues.agents["b"].state == AgentState.BUSY
        assert queues.agents["c"].reason == "by request"
    asyncio.run(scenario())


def test_the_wait_estimate_is_an_exponential_average_of_hold_times_less_time_waited():
    async def scenario():
        queues = service()
        for agent in queues.agents.values():
            agent.state = AgentState.BUSY  # nobody free: callers wait
        clock = queues.clock
        waiters = [Waiter(f"call-{i}", "city", "q", answered_by("a")[0]) for i in range(3)]
        for waiter in waiters:
            queues.join(waiter)
        assert queues.expected_wait_s(waiters[0]) is None  # nobody answered yet: no estimate
        clock.now += 100
        queues.leave(waiters[0], "answered")
        assert queues.expected_wait_s(waiters[1]) == 0.0  # it has waited 100 s, the average is 100 s
        clock.now += 20
        queues.leave(waiters[1], "answered")  # waited 120 s: 100 + (120 - 100) / 4 = 105
        assert queues.hold_time_s["q"] == 105.0
        assert queues.position(waiters[2]) == 1
        queues.leave(waiters[2], "abandoned")
        stats = queues.stats["q", "city"].as_dict()
        assert (stats["answered"], stats["abandoned"], stats["abandon_rate"]) == (2, 1, 0.333)
        assert stats["service_level"] == 0.0  # none within 60 s
    asyncio.run(scenario())


def test_a_queue_with_nobody_logged_in_or_full_refuses_callers():
    async def scenario():
        queues = service()
        for name in "abc":
            queues.set_presence(name, "paused")
        assert queues.refusal("q") == "no_agents"
        queues.set_presence("a", "available")
        queues.agents["a"].state = AgentState.BUSY
        for i in range(queues.queue("q").max_waiting):
            queues.join(Waiter(f"call-{i}", "city", "q", answered_by("a")[0]))
        assert queues.refusal("q") == "full"
    asyncio.run(scenario())
