"""The agent queue shared by several bot workers through Redis (voicebot.queue.redis_queue), against a
private real Redis: first the claim, the order across workers, a dead worker and Redis going away
and coming back, with two queue services in one process (fast); then two real bot workers, a
baresip agent registered through one and a caller on the other, with Redis and without."""

import asyncio
import re
import time

import pytest
import redis
import yaml

from conftest import AGENT_HOURS, DEMO_KOMMUNE, REPO, TextBot, events, place_call
from voicebot.config.settings import Settings
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.ports import free_port
from voicebot.queue.model import AgentState, RingResult, Waiter
from voicebot.queue.redis_queue import RedisQueue
from voicebot.queue.registrar import ha1
from voicebot.testing.agents import BaresipAgent, build_demo

PASSWORD = "anna-secret-pw"


def settings(redis_url: str, strategy: str = "longest_idle") -> Settings:
    return Settings.parse_obj({
        "queue_redis_url": redis_url,
        "queues": {"q": {"name": "Q", "strategy": strategy, "wrap_up_s": 0, "ring_timeout_s": 5}},
        "agents": {"a": {"name": "A", "uri": "sip:a@192.0.2.1", "queues": ["q"]},
                   "anna": {"name": "Anna", "username": "anna", "ha1": ha1("anna", "voicebot", "pw"),
                            "queues": ["q"]}}})


async def until(condition, timeout: float = 5.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        await asyncio.sleep(0.02)


async def workers(redis_url: str, *names: str, **options):
    services = [RedisQueue(settings(redis_url, **options), redis_url, worker=name) for name in names]
    for service in services:
        service.start()
    await until(lambda: all(s.shared for s in services), what="shared mode")
    return services


class Phone:
    """A waiting caller's phone line: remembers who was rung; answers when told to."""

    def __init__(self, name: str, log: list, answer: bool = True):
        self.name, self.log, self.answer = name, log, answer
        self.ringing = asyncio.Event()
        self.release = asyncio.Event()

    async def ring(self, agents, timeout):
        self.log.append((self.name, sorted(a.id for a in agents)))
        self.ringing.set()
        if not self.answer:
            await self.release.wait()
            return RingResult(None)
        return RingResult(agents[0])


@pytest.fixture
def clean_redis(redis_server):
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


def test_two_workers_race_for_one_agent_and_exactly_one_rings_it(clean_redis):
    async def scenario():
        one, two = await workers(clean_redis, "w1", "w2")
        try:
            log = []
            phones = [Phone("first", log, answer=False), Phone("second", log, answer=False)]
            waiters = [Waiter("call-1", "city", "q", phones[0].ring), Waiter("call-2", "city", "q", phones[1].ring)]
            one.join(waiters[0])
            two.join(waiters[1])  # both claim the only free agent (a) at once
            await until(lambda: log, what="a ring")
            await asyncio.sleep(1.5)  # both workers dispatch again at their ticks
            assert log == [("first", ["a"])]
            assert redis.Redis.from_url(clean_redis, decode_responses=True).hget(
                "voicebot:queue:agent:a", "owner") == "w1"
            # The first caller hangs up while a rings: the agent goes on to the caller on the other worker.
            one.leave(waiters[0], "abandoned")
            await until(lambda: len(log) == 2, what="the second caller's ring")
            assert log[1] == ("second", ["a"])
            phones[1].release.set()
        finally:
            await asyncio.gather(one.close(), two.close())
    asyncio.run(scenario())


def test_the_oldest_caller_across_workers_is_answered_first(clean_redis):
    async def scenario():
        one, two = await workers(clean_redis, "w1", "w2")
        try:
            one.set_presence("a", "paused")
            await until(lambda: two.agents["a"].state == AgentState.PAUSED, what="a paused on w2")
            log = []
            waiters = [(two, Waiter("call-1", "city", "q", Phone("oldest on w2", log).ring)),
                       (one, Waiter("call-2", "city", "q", Phone("next on w1", log).ring)),
                       (two, Waiter("call-3", "city", "q", Phone("last on w2", log).ring))]
            for service, waiter in waiters:
                service.join(waiter)
                await asyncio.sleep(0.05)
            await until(lambda: one.position(waiters[1][1]) == 2 and two.position(waiters[2][1]) == 3,
                        what="places across workers")
            one.set_presence("a", "available")  # on w1, yet w2's older caller goes first
            for turn in range(3):
                await until(lambda: len(log) > turn, what=f"ring {turn + 1}")
                service, waiter = waiters[turn]
                await until(lambda: waiter.answered_by is not None, what="answered")
                assert service.agents["a"].state == AgentState.BUSY
                service.finished(service.agents["a"])  # wrap-up 0 s, then the next caller
            assert [name for name, _ in log] == ["oldest on w2", "next on w1", "last on w2"]
            await until(lambda: one.agents["a"].state == two.agents["a"].state == AgentState.AVAILABLE)
            assert one.agents["a"].answered == 3 and one.snapshot()["shared"] is True
        finally:
            await asyncio.gather(one.close(), two.close())
    asyncio.run(scenario())


def test_an_agent_registered_through_one_worker_is_rung_by_the_other_and_a_dead_worker_lets_go(clean_redis):
    async def scenario():
        one, two = await workers(clean_redis, "w1", "w2")
        try:
            one.set_presence("a", "paused")
            two.registered("anna", "sip:anna@127.0.0.1:5999")
            await until(lambda: one.agents["anna"].state == AgentState.AVAILABLE, what="anna on w1")
            assert one.refusal("q") is None
            log = []
            phone = Phone("caller on w1", log, answer=False)
            waiter = Waiter("call-1", "city", "q", phone.ring)
            one.join(waiter)
            await until(lambda: log, what="anna rung")
            assert log == [("caller on w1", ["anna"])] and one.agents["anna"].uri == "sip:anna@127.0.0.1:5999"
            # w2 dies (its heartbeat stops): anna's registration through it goes with it; the ring
            # already on its way goes on, and when it ends unanswered anna is logged out.
            two.stop()
            await asyncio.get_running_loop().run_in_executor(
                None, redis.Redis.from_url(clean_redis).delete, "voicebot:queue:worker:w2")
            await asyncio.sleep(1.5)
            assert one.agents["anna"].state == AgentState.RINGING
            phone.release.set()
            await until(lambda: one.agents["anna"].state == AgentState.LOGGED_OUT, what="anna gone")
            assert one.refusal("q") == "no_agents" and len(log) == 1
        finally:
            await asyncio.gather(one.close(), two.close())
    asyncio.run(scenario())


def test_each_workers_calls_in_progress_are_seen_from_every_other_worker(clean_redis):
    async def scenario():
        one, two = await workers(clean_redis, "w1", "w2")
        try:
            call = {"id": "call-1", "tenant": "city", "state": "queued", "intent": "talk_to_human", "seconds": 40,
                    "waited_s": 12.5}
            rung = {"call_id": "call-1", "caller": "+4512345678", "events": [{"event": "agent_ringing", "agent": "anna"}]}
            one.live_calls, one.rung_calls = lambda: [call], lambda: [rung]
            await until(lambda: two.calls_elsewhere, what="w1's call seen on w2")
            assert two.calls_elsewhere == [{**call, "worker": "w1"}] and one.calls_elsewhere == []
            assert two.rung_elsewhere == [rung] and one.rung_elsewhere == []  # for anna's desk on w2
            one.live_calls = one.rung_calls = list  # the call is over
            await until(lambda: not two.calls_elsewhere and not two.rung_elsewhere, what="the call gone on w2")
        finally:
            await asyncio.gather(one.close(), two.close())
    asyncio.run(scenario())


def test_without_redis_each_worker_queues_locally_and_says_so_then_shares_again(redis_server, clean_redis, caplog):
    async def scenario():
        one, two = await workers(clean_redis, "w1", "w2")
        try:
            two.registered("anna", "sip:anna@127.0.0.1:5999")
            one.set_presence("a", "paused")
            await until(lambda: one.agents["anna"].state == AgentState.AVAILABLE, what="anna on w1")
            redis_server.stop()  # on this thread: the server dies with the thread that starts it
            await until(lambda: not one.shared and not two.shared, what="local mode")
            assert one.snapshot()["shared"] is False
            # w1 knows no agent now: anna registered through w2, and a is paused.
            assert one.refusal("q") == "no_agents" and two.refusal("q") is None
            log = []
            local = Waiter("call-1", "city", "q", Phone("caller on w2", log).ring)
            two.join(local)  # w2 still rings its own agent
            await until(lambda: local.answered_by is not None, what="answered locally")
            two.finished(two.agents["anna"])
            redis_server.start()  # empty again
            await until(lambda: one.shared and two.shared, timeout=8, what="shared again")
            # w2 published its registration again: w1 sees anna (a's pause was lost with Redis).
            await until(lambda: one.agents["anna"].state == AgentState.AVAILABLE, what="anna on w1 again")
        finally:
            await asyncio.gather(one.close(), two.close())
    asyncio.run(scenario())
    said = [r.getMessage() for r in caplog.records if r.name == "voicebot.queue.redis_queue"]
    assert any("unavailable" in m and "local to this worker" in m for m in said), said
    assert any("is back" in m for m in said), said


# -- two real bot workers sharing one Redis

@pytest.fixture(scope="module")
def two_workers(trained, tmp_path_factory, redis_server):
    """Workers A and B on one configuration (the Danish demo line, agent anna, queue_redis_url set),
    each with its own SIP line, agents' registrar and store, started side by side."""
    from concurrent.futures import ThreadPoolExecutor

    redis.Redis.from_url(redis_server.url).flushall()
    root = tmp_path_factory.mktemp("shared-queue")
    config = build_demo(root, {"anna": PASSWORD}, ring_timeout_s=4, wrap_up_s=1, announce_every_s=6)
    settings = yaml.safe_load(config.read_text())
    (root / "tenants").mkdir()  # the Danish line only: one model to load per worker, not three
    (root / "tenants" / "demo-kommune.yml").symlink_to(REPO / "tenants" / "demo-kommune.yml")
    config.write_text(yaml.safe_dump({**settings, "queue_redis_url": redis_server.url,
                                      "tenants_dir": str(root / "tenants")}, allow_unicode=True))

    def worker(name: str) -> TextBot:
        registrar_port = free_port()
        # Each its own store: two processes creating one SQLite schema at once trip over each other.
        bot = TextBot(AGENT_HOURS, f"sqlite:///{root / name}.sqlite3", sip=True, config=config,
                      log=root / f"{name}.log", extra_args=("--registrar-port", str(registrar_port)))
        bot.registrar_port, bot.log_path = registrar_port, root / f"{name}.log"
        return bot
    # The pool's threads live as long as the workers: a worker dies with the thread that started it
    # (procs.start).
    pool = ThreadPoolExecutor(2)
    try:
        a, b = pool.map(worker, ("a", "b"))
        yield a, b
        a.stop()
        b.stop()
    finally:
        pool.shutdown()


def queues(bot: TextBot) -> dict:
    return bot.request("GET", "/queues")[1]


def wait_for(bot: TextBot, condition, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while not condition(queues(bot)):
        assert time.monotonic() < deadline, queues(bot)
        time.sleep(0.2)


def anna(state: str):
    return lambda q: next(a["state"] for a in q["agents"] if a["id"] == "anna") == state


def test_a_caller_on_one_worker_reaches_an_agent_registered_through_another_and_without_redis_hears_why_not(
        two_workers, redis_server, tmp_path, page):
    """And her desk, open on B, pops the caller who is on A and follows the call to its end."""
    from concurrent.futures import ThreadPoolExecutor
    from playwright.sync_api import expect

    a, b = two_workers
    assert queues(a)["shared"] and queues(b)["shared"]
    b.add_login("anna", "agent", PASSWORD)
    page.goto(b.url + "/dashboard/login")
    page.fill("input[name=name]", "anna")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("My desk")
    with BaresipAgent(b.registrar_port, "anna", PASSWORD, tmp_path / "anna") as phone:
        wait_for(a, anna("available"))  # registered through B, known on A
        with ThreadPoolExecutor(1) as pool:
            calling = pool.submit(place_call, a.sip_uri(DEMO_KOMMUNE), "--from", "+4512345678", "--dtmf", "0",
                                  "--wait", "12", timeout=40)
            pop = page.locator("#pop")
            expect(pop).to_have_attribute("data-phase", "connected", timeout=25_000)  # the call is on A
            expect(page.locator("#pop-number a.tel")).to_have_attribute("href", "tel:+4512345678")
            expect(page.locator("#pop-conversation .caller")).to_contain_text(["(key 0)"])
            expect(pop).to_have_attribute("data-phase", re.compile("wrap-up|ended"), timeout=25_000)
            timeline = calling.result()
        assert pop.get_attribute("data-call") == timeline["call_id"]
        record = a.call_record(timeline["call_id"])
        assert [e["agent"] for e in events(record, "queue_answered")] == ["anna"], record["events"]
        assert events(record, "bridged") and not events(record, "agent_lost"), record["events"]
        assert f"X-Voicebot-Conversation: {timeline['call_id']}" in phone.log.read_text()  # A rang her
        wait_for(b, anna("available"))  # the call and the wrap-up are over, on B too
        assert next(x for x in queues(b)["agents"] if x["id"] == "anna")["answered"] == 1

        redis_server.stop()
        try:
            wait_for(a, lambda q: q["shared"] is False and anna("logged_out")(q), timeout=10)
            assert "voicebot_queue_shared 0.0" in a.text("/metrics")
            timeline = place_call(a.sip_uri(DEMO_KOMMUNE), "--dtmf", "0", timeout=40)
            record = a.call_record(timeline["call_id"])
            da = phrasebook("da")
            assert events(record, "bot")[-1]["texts"] == [da.say("agents_busy"), da.say("callback_offer_now")]
            assert not events(record, "queue_entered")
            assert anna("available")(queues(b)) and queues(b)["shared"] is False  # B still has her
        finally:
            redis_server.start()
        wait_for(a, lambda q: q["shared"] and anna("available")(q), timeout=10)  # B published her again
    said = a.log_path.read_text()
    assert "queues are local to this worker until it is back" in said and "is back: queues are shared" in said
