"""Both queue backends are the QueueBackend the phone line uses: the same caller's story (join,
place, still waiting?, leave, an agent answers) told to LocalQueue and to RedisQueue on a private
Redis. The rules themselves: tests/test_queue_service.py; across workers: tests/test_shared_queue.py."""

import asyncio
import inspect
import time

import pytest
import redis

from voicebot.config.settings import Settings
from voicebot.queue.backend import QueueBackend
from voicebot.queue.factory import queue_service
from voicebot.queue.local import LocalQueue
from voicebot.queue.model import AgentState, RingResult, Waiter
from voicebot.queue.redis_queue import PREFIX, RedisQueue

# What the rest of the bot calls (voicebot/telephony, channels/http.py, dashboard, cli/).
SURFACE = {"start", "stop", "queue", "registered", "set_presence", "finished", "refusal", "join", "is_waiting",
           "position", "waited_s", "expected_wait_s", "leave", "dispatch", "snapshot"}
ATTRIBUTES = {"agents", "clock", "live_calls", "calls_elsewhere", "rung_calls", "rung_elsewhere"}


def settings(redis_url=None, wrap_up_s=0, softphone=False) -> Settings:
    agent = {"username": "a", "ha1": "0" * 32} if softphone else {"uri": "sip:a@192.0.2.1"}
    return Settings.parse_obj({
        "queue_redis_url": redis_url,
        "queues": {"q": {"name": "Q", "wrap_up_s": wrap_up_s, "ring_timeout_s": 5}},
        "agents": {"a": {"name": "A", "queues": ["q"], **agent}}})


async def until(condition, timeout: float = 5.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        await asyncio.sleep(0.02)


@pytest.fixture(params=["local", "redis"])
def make_backend(request):
    """A function that builds the backend (on the running loop) and says when it is ready."""
    if request.param == "local":
        return lambda **options: queue_service(settings(**options))
    url = request.getfixturevalue("redis_server").url
    redis.Redis.from_url(url).flushall()
    return lambda **options: queue_service(settings(url, **options))


def test_the_interface_is_what_the_application_uses_and_both_backends_implement_it():
    assert QueueBackend.__abstractmethods__ == SURFACE
    assert ATTRIBUTES <= set(QueueBackend.__annotations__)
    for backend in (LocalQueue, RedisQueue):
        assert issubclass(backend, QueueBackend) and not inspect.isabstract(backend)
        for name in SURFACE:  # same arguments as the interface says
            assert inspect.signature(getattr(backend, name)).parameters.keys() == \
                inspect.signature(getattr(QueueBackend, name)).parameters.keys(), (backend, name)


def test_a_callers_story_is_the_same_on_either_backend(make_backend):
    async def scenario():
        queues = make_backend()
        assert isinstance(queues, QueueBackend)
        assert all(hasattr(queues, name) for name in ATTRIBUTES)
        queues.start()
        try:
            if isinstance(queues, RedisQueue):
                await until(lambda: queues.shared, what="shared mode")
            queues.set_presence("a", "paused")
            assert queues.refusal("q") == "no_agents"
            queues.set_presence("a", "available")
            assert queues.refusal("q") is None
            queues.set_presence("a", "paused")  # a takes a break: these callers wait
            rung = []

            async def ring(agents, timeout):
                rung.append([a.id for a in agents])
                return RingResult(agents[0])
            first, second = Waiter("call-1", "city", "q", ring), Waiter("call-2", "city", "q", ring)
            assert queues.join(first) == 1
            assert queues.join(second) == 2
            assert queues.is_waiting(first) and queues.is_waiting(second)
            await until(lambda: queues.position(second) == 2, what="second in place")
            assert queues.waited_s(first) >= 0 and queues.expected_wait_s(first) is None

            assert queues.leave(first, "abandoned") >= 0
            assert not queues.is_waiting(first) and queues.position(first) == 0
            assert queues.leave(first, "abandoned") == 0.0  # once only
            await until(lambda: queues.position(second) == 1, what="second moved up")

            queues.set_presence("a", "available")  # back: rings the one caller left
            await until(lambda: second.answered_by is not None, what="second answered")
            assert rung == [["a"]] and not queues.is_waiting(second) and queues.position(second) == 0
            assert queues.agents["a"].state == AgentState.BUSY
            queues.finished(queues.agents["a"])
            await until(lambda: queues.agents["a"].state == AgentState.AVAILABLE, what="wrap-up over")
            figures = queues.snapshot()["queues"][0]["stats"]["city"]
            assert (figures["entered"], figures["answered"], figures["abandoned"]) == (2, 1, 1)
            if isinstance(queues, RedisQueue):  # told through Redis all along, not queued locally
                assert queues.snapshot()["shared"] and queues.agents["a"].answered == 1
        finally:
            queues.stop()
            if isinstance(queues, RedisQueue):
                await queues.close()
    asyncio.run(scenario())


def test_an_agent_pauses_with_a_reason_and_ends_a_wrap_up_early_on_either_backend(make_backend):
    async def scenario():
        queues = make_backend(wrap_up_s=60)  # a long wrap-up, which the agent ends sooner
        queues.start()
        try:
            if isinstance(queues, RedisQueue):
                await until(lambda: queues.shared, what="shared mode")
            agent = queues.agents["a"]
            queues.set_presence("a", "paused", "meeting")
            assert (agent.state, agent.reason) == (AgentState.PAUSED, "meeting")
            queues.set_presence("a", "paused", "break")  # still paused, for another reason
            assert (agent.state, agent.reason) == (AgentState.PAUSED, "break")
            if isinstance(queues, RedisQueue):  # the other workers read the same
                stored = redis.Redis.from_url(queues.url, decode_responses=True)
                await until(lambda: stored.hget(f"{PREFIX}agent:a", "reason") == "break", what="reason shared")
            queues.set_presence("a", "available")
            assert agent.state == AgentState.AVAILABLE and agent.reason == ""


            async def ring(agents, timeout):
                return RingResult(agents[0])
            caller = Waiter("call-1", "city", "q", ring)
            queues.join(caller)
            await until(lambda: agent.state == AgentState.BUSY, what="answered")
            if isinstance(queues, RedisQueue):
                await until(lambda: stored.hget(f"{PREFIX}agent:a", "state") == "busy", what="busy shared")
            queues.finished(agent)
            assert agent.state == AgentState.WRAP_UP
            if isinstance(queues, RedisQueue):
                await until(lambda: stored.hget(f"{PREFIX}agent:a", "state") == "wrap_up", what="wrap-up shared")
            queues.set_presence("a", "available")
            assert agent.state == AgentState.AVAILABLE
            if isinstance(queues, RedisQueue):
                await until(lambda: stored.hget(f"{PREFIX}agent:a", "state") == "available", what="shared")
        finally:
            queues.stop()
            if isinstance(queues, RedisQueue):
                await queues.close()
    asyncio.run(scenario())


def test_an_agent_who_logs_out_stays_out_through_softphone_refreshes_and_a_call_on_either_backend(make_backend):
    async def scenario():
        queues = make_backend(wrap_up_s=60, softphone=True)
        queues.start()
        stored = None
        try:
            if isinstance(queues, RedisQueue):
                await until(lambda: queues.shared, what="shared mode")
                stored = redis.Redis.from_url(queues.url, decode_responses=True)

            async def shared(state, reason=""):  # what the other workers read
                if stored is not None:
                    await until(lambda: (stored.hget(f"{PREFIX}agent:a", "state"),
                                         stored.hget(f"{PREFIX}agent:a", "reason")) == (state, reason),
                                what=f"{state} shared")
            agent = queues.agents["a"]
            queues.registered("a", "sip:a@192.0.2.1:5060")
            assert agent.state == AgentState.AVAILABLE
            await shared("available")

            async def ring(agents, timeout):
                return RingResult(agents[0])
            queues.join(Waiter("call-1", "city", "q", ring))
            await until(lambda: agent.state == AgentState.BUSY, what="answered")
            await shared("busy")
            queues.set_presence("a", "logged_out")  # during the call: the call goes on
            assert agent.state == AgentState.BUSY
            queues.finished(agent)
            queues.set_presence("a", "logged_out")  # during the wrap-up: out at once
            assert (agent.state, agent.reason) == (AgentState.LOGGED_OUT, "signed off")
            await shared("logged_out", "signed off")
            queues.registered("a", "sip:a@192.0.2.1:5062")  # the softphone registers again (a new port)
            assert agent.state == AgentState.LOGGED_OUT
            if stored is not None:  # the registration reached Redis, and did not bring the agent back
                await until(lambda: stored.hget(f"{PREFIX}agent:a", "contact") == "sip:a@192.0.2.1:5062")
            await shared("logged_out", "signed off")
            assert queues.refusal("q") == "no_agents"  # callers hear that nobody is there
            queues.set_presence("a", "paused", "break")  # back, but not yet for callers
            assert (agent.state, agent.reason) == (AgentState.PAUSED, "break")
            await shared("paused", "break")
            queues.set_presence("a", "available")
            assert (agent.state, agent.reason) == (AgentState.AVAILABLE, "")
            await shared("available")
        finally:
            queues.stop()
            if isinstance(queues, RedisQueue):
                await queues.close()
    asyncio.run(scenario())
