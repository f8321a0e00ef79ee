"""RedisQueue: the agent queue shared by several bot workers through Redis (`queue_redis_url`).

A caller held on one worker can be bridged to an agent who registered through another. What
is shared, under the prefix voicebot:queue: in Redis:

- agent:<id>     a hash per agent: state, since (wall clock), reason, answered, contact (where a
                 softphone registered), signed_off ('1': logged out by request, whatever the
                 softphone does), reg_worker (whose registrar holds that registration),
                 owner (the worker whose caller rings it, talks to it, or whose wrap-up it is),
                 uri (a fixed address from configuration) and queues;
- waiting:<q>    per queue, the callers waiting: a sorted set, score = wall-clock time entered;
- waiters        call id -> "worker|queue", so a dead worker's callers can be swept away;
- engaged        callers who are being rung or are typing a callback number (not to be rung);
- calls:<id>     the worker's calls in progress (JSON: "calls" for operators, "rung": those that
                 rang an agent, with the caller's number and events, for the agent's desk on
                 whichever worker it is open), for any worker's dashboard; it expires with the
                 heartbeat;
- worker:<id>    a heartbeat with a time to live: a worker that stops beating is dead, its
                 callers are dropped and its agents freed (registrations through it: logged out);
- channel "voicebot:queue:dispatch": "look again", published when an agent frees up or a
                 caller leaves; every worker also looks once a second.

Each worker keeps its own callers (they hold its SIP calls) and a mirror of every agent's state
(for the synchronous questions: may a caller queue, where to ring). An agent goes to a caller
only through one atomic Lua claim: it moves AVAILABLE agents to RINGING for the claiming worker's
caller only if no older caller who is not already ringing waits in any queue the agent serves,
so the oldest caller across all workers goes first and two workers never ring one agent.

Redis unavailable: the worker says so once in its log, `snapshot()["shared"]` turns false, and it
runs the in-memory queue (QueueBase's, as LocalQueue does) with what it knows itself (its own
callers, agents registered through its own registrar, fixed-address agents). It tries again every
second; when Redis is back it publishes again what it holds (its registrations, its callers with
their original places, the agents its calls use) and is shared again.

All Redis traffic runs in one task, one operation after another, so a worker's writes arrive in
the order it made them; the asyncio loop (which also runs the calls' audio) never blocks on it.
The in-memory state and rules are QueueBase's; this module adds, through its `_on_...` hooks, the
Redis write that mirrors each change, and its own dispatch, places and queue lengths.
"""

import asyncio
import collections
import json
import logging
import os
import re
import secrets
import socket
import time
from typing import Awaitable, Callable, Deque, Dict, List, Optional, Set

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from voicebot.config.settings import Settings
from voicebot.queue.base import QueueBase
from voicebot.queue.model import AgentState, AgentStatus, Waiter

logger = logging.getLogger(__name__)

PREFIX = "voicebot:queue:"
CHANNEL = PREFIX + "dispatch"
TICK_S = 1.0
HEARTBEAT_MS = 10000  # a worker silent this long is dead (its loop must not stall that long)
OWNED = (AgentState.RINGING, AgentState.BUSY, AgentState.WRAP_UP)

_LUA_DEAD = """
local function dead(w)
  return w ~= nil and w ~= false and w ~= '' and redis.call('EXISTS', P .. 'worker:' .. w) == 0
end
"""

# ARGV: prefix, now, then (agent id, fixed uri or '', comma-separated queues) per agent.
INIT = """
local P, now = ARGV[1], ARGV[2]
for i = 3, #ARGV, 3 do
  local key = P .. 'agent:' .. ARGV[i]
  if redis.call('HEXISTS', key, 'state') == 0 then
    local state = 'logged_out'
    if ARGV[i + 1] ~= '' then state = 'available' end
    redis.call('HSET', key, 'state', state, 'since', now, 'reason', '', 'answered', 0, 'contact', '',
               'reg_worker', '', 'owner', '', 'signed_off', '')
  end
  redis.call('HSET', key, 'uri', ARGV[i + 1], 'queues', ARGV[i + 2])
end
return 1
"""

# A softphone registered (contact) or is gone (''), through this worker's registrar.
# ARGV: prefix, now, agent id, worker, contact.
REGISTER = """
local P, now, key, me, contact = ARGV[1], ARGV[2], ARGV[1] .. 'agent:' .. ARGV[3], ARGV[4], ARGV[5]
local state, signed_off = unpack(redis.call('HMGET', key, 'state', 'signed_off'))
if contact ~= '' then
  redis.call('HSET', key, 'contact', contact, 'reg_worker', me)
  if (state == 'logged_out' or not state) and signed_off ~= '1' then
    redis.call('HSET', key, 'state', 'available', 'since', now, 'reason', '', 'owner', '')
  end
  return 1
end
if redis.call('HGET', key, 'reg_worker') ~= me then return 0 end  -- registered again elsewhere since
redis.call('HSET', key, 'contact', '', 'reg_worker', '', 'owner', '', 'reason', '')
if state ~= 'logged_out' then redis.call('HSET', key, 'state', 'logged_out', 'since', now) end
return 1
"""

# Resume ('available'), pause (with a reason) or sign off ('logged_out'), as QueueBase.set_presence.
# ARGV: prefix, now, agent id, presence, reason.
PRESENCE = """
local P, now, key, presence = ARGV[1], ARGV[2], ARGV[1] .. 'agent:' .. ARGV[3], ARGV[4]
local a = redis.call('HMGET', key, 'state', 'uri', 'contact')
local resting = a[1] == 'available' or a[1] == 'paused' or a[1] == 'wrap_up' or a[1] == 'logged_out'
local reachable = (a[2] or '') ~= '' or (a[3] or '') ~= ''
local signed_off, state, reason = '', 'logged_out', ''
if presence == 'logged_out' then signed_off, reason = '1', 'signed off' end
redis.call('HSET', key, 'signed_off', signed_off)
if not resting then return 1 end
if presence == 'paused' then
  if not reachable then return 1 end
  state, reason = 'paused', ARGV[5]
elseif reachable and signed_off == '' then
  state = 'available'
end
if a[1] ~= state then redis.call('HSET', key, 'state', state, 'since', now) end
redis.call('HSET', key, 'reason', reason, 'owner', '')
return 1
"""

# The owner moves its agent on (ringing -> available/paused/busy, busy -> wrap_up, wrap_up ->
# available) if it still is in the state the owner left it in.
# ARGV: prefix, now, agent id, worker, expected state, new state, reason, '1' counts an answer,
# '1' keeps since (a missed ring leaves the agent the longest idle).
SET_STATE = """
local P, now, key, me = ARGV[1], ARGV[2], ARGV[1] .. 'agent:' .. ARGV[3], ARGV[4]
local a = redis.call('HMGET', key, 'state', 'owner', 'uri', 'contact', 'signed_off')
if a[1] ~= ARGV[5] or a[2] ~= me then return 0 end
local state, reason = ARGV[6], ARGV[7]
if state == 'available' and a[5] == '1' then state, reason = 'logged_out', 'signed off' end
if state == 'available' and (a[3] or '') == '' and (a[4] or '') == '' then state = 'logged_out' end
local owner = ''
if state == 'ringing' or state == 'busy' or state == 'wrap_up' then owner = me end
redis.call('HSET', key, 'state', state, 'reason', reason, 'owner', owner)
if ARGV[9] ~= '1' then redis.call('HSET', key, 'since', now) end
if ARGV[8] == '1' then redis.call('HINCRBY', key, 'answered', 1) end
return 1
"""

# A caller's ring is over: the caller may be rung again, and each agent it rang moves on (as
# SET_STATE), in one step, so no other worker sees the agent free while the caller still looks
# engaged. ARGV: prefix, now, worker, call id, then (agent id, new state, reason, '1' counts an
# answer, '1' keeps since) per agent.
RING_OVER = """
local P, now, me = ARGV[1], ARGV[2], ARGV[3]
redis.call('SREM', P .. 'engaged', ARGV[4])
for i = 5, #ARGV, 5 do
  local key = P .. 'agent:' .. ARGV[i]
  local a = redis.call('HMGET', key, 'state', 'owner', 'uri', 'contact', 'signed_off')
  if a[1] == 'ringing' and a[2] == me then
    local state, reason, keep_since = ARGV[i + 1], ARGV[i + 2], ARGV[i + 4]
    if state == 'available' and a[5] == '1' then state, reason, keep_since = 'logged_out', 'signed off', '0' end
    if state == 'available' and (a[3] or '') == '' and (a[4] or '') == '' then state = 'logged_out' end
    local owner = ''
    if state == 'busy' then owner = me end
    redis.call('HSET', key, 'state', state, 'reason', reason, 'owner', owner)
    if keep_since ~= '1' then redis.call('HSET', key, 'since', now) end
    if ARGV[i + 3] == '1' then redis.call('HINCRBY', key, 'answered', 1) end
  end
end
return 1
"""

# The claim. ARGV: prefix, worker, call id, queue, strategy, then the ids of the agents who
# serve the queue. Returns (agent id, address) pairs now RINGING for this caller, or nothing.
CLAIM = """
local P, me, call, queue = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
""" + _LUA_DEAD + """
local score = redis.call('ZSCORE', P .. 'waiting:' .. queue, call)
if not score or redis.call('SISMEMBER', P .. 'engaged', call) == 1 then return {} end
local function older_waits(queues)
  for q in string.gmatch(queues, '[^,]+') do
    for _, other in ipairs(redis.call('ZRANGEBYSCORE', P .. 'waiting:' .. q, '-inf', '(' .. score)) do
      if redis.call('SISMEMBER', P .. 'engaged', other) == 0 then
        local held_by = redis.call('HGET', P .. 'waiters', other)
        if held_by and not dead(string.match(held_by, '^(.*)|')) then return true end
      end
    end
  end
  return false
end
local free = {}
for i = 6, #ARGV do
  local a = redis.call('HMGET', P .. 'agent:' .. ARGV[i], 'state', 'since', 'uri', 'contact', 'queues')
  local address = a[3] or ''
  if address == '' then address = a[4] or '' end
  if a[1] == 'available' and address ~= '' and not older_waits(a[5] or queue) then
    table.insert(free, {ARGV[i], tonumber(a[2]) or 0, address})
  end
end
if #free == 0 then return {} end
table.sort(free, function(x, y) return x[2] < y[2] end)  -- the longest idle first
if ARGV[5] ~= 'ring_all' then free = {free[1]} end
local out = {}
for _, f in ipairs(free) do
  redis.call('HSET', P .. 'agent:' .. f[1], 'state', 'ringing', 'owner', me)
  table.insert(out, f[1])
  table.insert(out, f[3])
end
redis.call('SADD', P .. 'engaged', call)
return out
"""

# Dead workers' leftovers: their callers leave, their agents are freed, registrations through
# them are gone. ARGV: prefix, now, agent ids.
REAP = """
local P, now = ARGV[1], ARGV[2]
""" + _LUA_DEAD + """
for i = 3, #ARGV do
  local key = P .. 'agent:' .. ARGV[i]
  local a = redis.call('HMGET', key, 'state', 'owner', 'reg_worker', 'uri', 'contact', 'signed_off')
  local contact = a[5] or ''
  if dead(a[3]) then
    redis.call('HSET', key, 'contact', '', 'reg_worker', '')
    contact = ''
  end
  local reachable = ((a[4] or '') ~= '' or contact ~= '') and a[6] ~= '1'
  local owned = a[1] == 'ringing' or a[1] == 'busy' or a[1] == 'wrap_up'
  if owned and ((a[2] or '') == '' or dead(a[2])) then
    local state = 'logged_out'
    if reachable then state = 'available' end
    redis.call('HSET', key, 'state', state, 'since', now, 'reason', '', 'owner', '')
  elseif a[1] == 'available' and not reachable then
    redis.call('HSET', key, 'state', 'logged_out', 'since', now, 'reason', '')
  end
end
local waiters = redis.call('HGETALL', P .. 'waiters')
for i = 1, #waiters, 2 do
  local worker, queue = string.match(waiters[i + 1], '^(.*)|(.*)$')
  if dead(worker) then
    redis.call('ZREM', P .. 'waiting:' .. queue, waiters[i])
    redis.call('HDEL', P .. 'waiters', waiters[i])
    redis.call('SREM', P .. 'engaged', waiters[i])
  end
end
return 1
"""


def safe_url(url: str) -> str:
    """The URL without a password, for logs and pages."""
    return re.sub(r"//[^@/]*@", "//", url)


class RedisQueue(QueueBase):
    def __init__(self, settings: Settings, url: str, clock: Callable[[], float] = time.monotonic,
                 worker: Optional[str] = None, live_calls: Callable[[], List[dict]] = list,
                 rung_calls: Callable[[], List[dict]] = list):
        super().__init__(settings, clock, live_calls, rung_calls)
        self.url = url
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.shared = False
        self.redis = aioredis.from_url(url, decode_responses=True, socket_connect_timeout=1, socket_timeout=2)
        self._listener_redis = aioredis.from_url(url, decode_responses=True, socket_connect_timeout=1)
        self._scripts = {name: self.redis.register_script(lua) for name, lua in
                         (("init", INIT), ("register", REGISTER), ("presence", PRESENCE), ("set_state", SET_STATE),
                          ("claim", CLAIM), ("ring_over", RING_OVER), ("reap", REAP))}
        self._ops: Deque[Callable[[], Awaitable]] = collections.deque()
        self._wake: Optional[asyncio.Event] = None
        self._dispatch_wanted = self._refresh_wanted = False
        self._next_tick = 0.0
        self._version = 0  # bumped by every local change, so a mirror read from before it is not applied
        self._mine: Set[str] = set()  # agents rung by, talking to, or wrapping up after a caller here
        self._local_contacts: Dict[str, str] = {}  # username -> contact, from this worker's registrar
        self._ranks: Dict[str, int] = {}  # call id -> place among all workers' callers in its queue
        self._lengths: Dict[str, int] = {}  # queue -> callers waiting on all workers
        self._tasks: List[asyncio.Task] = []
        self._told_local = False
        self._stopping = False

    # -- life
    def start(self) -> None:
        self._wake = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._run()), asyncio.ensure_future(self._listen())]

    def stop(self) -> None:
        self._stopping = True  # redis-py may swallow a cancellation in the middle of a command
        for task in self._tasks:
            task.cancel()

    async def close(self) -> None:
        """For tests: stop, and take this worker's heartbeat away (as if it died)."""
        self.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.redis.delete(PREFIX + "worker:" + self.worker)
        except (RedisError, OSError):
            pass
        await self.redis.close()
        await self._listener_redis.close()

    def _later(self, op: Callable[[], Awaitable], publish: bool = False) -> None:
        """Queue a Redis write (in order); `publish`: then tell the other workers to look again."""
        if not self.shared:
            return
        self._version += 1
        self._ops.append(op)
        if publish:
            self._ops.append(lambda: self.redis.publish(CHANNEL, self.worker))
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            timeout = max(0.0, self._next_tick - time.monotonic())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            tick = time.monotonic() >= self._next_tick
            if tick:
                self._next_tick = time.monotonic() + TICK_S
            try:
                if not self.shared:
                    if not tick:
                        continue
                    await self._join_redis()
                while self._ops:
                    await self._ops.popleft()()
                if tick:
                    beat = await self.redis.set(PREFIX + "worker:" + self.worker, "1", px=HEARTBEAT_MS, get=True)
                    if beat is None:  # Redis lost what it had (restarted), or took this worker for dead
                        await self._join_redis()
                    await self._script("reap", time.time(), *self.agents)
                if tick or self._refresh_wanted:
                    self._refresh_wanted = False
                    await self._refresh()
                if tick or self._dispatch_wanted:
                    self._dispatch_wanted = False
                    await self._dispatch_shared()
                if tick:
                    await self._share_calls()  # last: for operators, never in the way of a caller
            except (RedisError, OSError, asyncio.TimeoutError) as error:
                self._go_local(error)
            except Exception:
                logger.exception("shared queue: unexpected failure")

    async def _listen(self) -> None:
        """'Look again' from other workers (an agent freed up, a caller left)."""
        while not self._stopping:
            if not self.shared:
                await asyncio.sleep(TICK_S)
                continue
            pubsub = self._listener_redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message["type"] == "message" and message["data"] != self.worker:
                        self._refresh_wanted = self._dispatch_wanted = True
                        self._poke()
            except (RedisError, OSError):
                await asyncio.sleep(TICK_S)  # the next tick finds out and says so
            finally:
                try:
                    await pubsub.reset()
                except (RedisError, OSError):
                    pass

    def _script(self, name: str, *args):
        return self._scripts[name](keys=[], args=[PREFIX, *args])

    def _agent_key(self, agent_id: str) -> str:
        return PREFIX + "agent:" + agent_id

    # -- Redis gone, Redis back
    def _go_local(self, error: BaseException) -> None:
        self._ops.clear()
        if not self._told_local:
            logger.warning("Redis at %s unavailable (%s): queues are local to this worker until it is back",
                           safe_url(self.url), error)
            self._told_local = True
        if not self.shared:
            return  # local already (or never shared yet): what this worker knows is right as it is
        self.shared = False
        self._ranks.clear()
        self._lengths.clear()
        self.calls_elsewhere = self.rung_elsewhere = []
        self._version += 1
        for agent in self.agents.values():
            if agent.id in self._mine and agent.state in OWNED:
                continue  # rung by or talking to a caller here: that goes on
            if agent.config.username:
                agent.contact = self._local_contacts.get(agent.config.username)
            if agent.state != AgentState.PAUSED or not agent.uri:
                self._rest(agent)
        self._dispatch_here()

    async def _join_redis(self) -> None:
        """Connect (at start or when Redis is back) and publish what this worker holds."""
        now = time.time()
        await self.redis.set(PREFIX + "worker:" + self.worker, "1", px=HEARTBEAT_MS)
        args = [now]
        for agent in self.agents.values():
            args += [agent.id, agent.config.uri or "", ",".join(agent.config.queues)]
        await self._script("init", *args)
        # The agents of calls here: while local, every ringing, busy or wrapping-up agent is.
        owned = {a.id for a in self.agents.values() if a.state in OWNED
                 and (not self.shared or a.id in self._mine)}
        for agent in self.agents.values():
            key = self._agent_key(agent.id)
            if agent.id in owned:
                await self.redis.hset(key, mapping={"state": agent.state.value, "owner": self.worker,
                                                    "since": self._wall(agent.since), "reason": agent.reason})
            elif await self.redis.hget(key, "owner") == self.worker:  # left over from before a blip
                await self.redis.hset(key, mapping={"state": "available", "owner": ""})
            if agent.config.username in self._local_contacts:
                await self._script("register", now, agent.id, self.worker, self._local_contacts[agent.config.username])
        local = {w.call_id for ws in self.waiting.values() for w in ws}
        for call_id, value in (await self.redis.hgetall(PREFIX + "waiters")).items():
            if value.startswith(self.worker + "|") and call_id not in local:
                await self._forget_waiter(call_id, value.rpartition("|")[2])
        await self._publish_waiters()
        self._mine = owned
        self.shared = True
        self._version += 1
        if self._told_local:
            logger.warning("Redis at %s is back: queues are shared with the other workers again", safe_url(self.url))
        else:
            logger.info("queues shared through Redis at %s (worker %s)", safe_url(self.url), self.worker)
        self._told_local = False
        await self.redis.publish(CHANNEL, self.worker)

    async def _publish_waiters(self) -> None:
        """Every caller here in its place, marked engaged while rung or typing a number (idempotent:
        run before each dispatch, so a place lost anyhow is restored)."""
        waiters = [w for ws in self.waiting.values() for w in ws]
        if not waiters:
            return
        pipe = self.redis.pipeline(transaction=True)
        for waiter in waiters:
            score = waiter.entered_wall or self._wall(waiter.entered_at)
            pipe.zadd(PREFIX + "waiting:" + waiter.queue, {waiter.call_id: score})
            pipe.hset(PREFIX + "waiters", waiter.call_id, f"{self.worker}|{waiter.queue}")
            if waiter.ringing is not None or waiter.hold:
                pipe.sadd(PREFIX + "engaged", waiter.call_id)
            else:
                pipe.srem(PREFIX + "engaged", waiter.call_id)
        await pipe.execute()

    async def _forget_waiter(self, call_id: str, queue_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(PREFIX + "waiting:" + queue_id, call_id)
        pipe.hdel(PREFIX + "waiters", call_id)
        pipe.srem(PREFIX + "engaged", call_id)
        await pipe.execute()

    def _wall(self, monotonic: float) -> float:
        return time.time() - (self.clock() - monotonic)

    def _monotonic(self, wall: float) -> float:
        return self.clock() - (time.time() - wall)

    # -- the mirror of everyone's agents
    async def _refresh(self) -> None:
        version = self._version
        pipe = self.redis.pipeline(transaction=False)
        ids, queues = list(self.agents), list(self.waiting)
        waiters = [w for ws in self.waiting.values() for w in ws]
        for agent_id in ids:
            pipe.hgetall(self._agent_key(agent_id))
        for queue_id in queues:
            pipe.zcard(PREFIX + "waiting:" + queue_id)
        for waiter in waiters:
            pipe.zrank(PREFIX + "waiting:" + waiter.queue, waiter.call_id)
        results = await pipe.execute()
        if version != self._version or not self.shared:
            self._refresh_wanted = True  # changed here meanwhile: read again rather than undo it
            self._poke()
            return
        for agent_id, data in zip(ids, results):
            agent = self.agents[agent_id]
            if agent_id in self._mine:
                if agent.state in OWNED:
                    continue  # this worker knows best
                self._mine.discard(agent_id)
            if not data.get("state"):
                continue
            agent.state, agent.reason = AgentState(data["state"]), data.get("reason", "")
            agent.since = self._monotonic(float(data.get("since") or time.time()))
            agent.answered = int(data.get("answered") or 0)
            agent.signed_off = data.get("signed_off") == "1"
            if agent.config.username:
                agent.contact = data.get("contact") or None
        self._lengths = dict(zip(queues, results[len(ids):len(ids) + len(queues)]))
        self._ranks = {w.call_id: rank for w, rank in zip(waiters, results[len(ids) + len(queues):])
                       if rank is not None}

    async def _share_calls(self) -> None:
        """Publish this worker's calls in progress and read the other workers'."""
        mine = PREFIX + "calls:" + self.worker
        await self.redis.set(mine, json.dumps({"calls": [{**call, "worker": self.worker} for call in self.live_calls()],
                                               "rung": self.rung_calls()}), px=HEARTBEAT_MS)
        keys = [key async for key in self.redis.scan_iter(match=PREFIX + "calls:*") if key != mine]
        shared = [json.loads(value) for value in (await self.redis.mget(keys) if keys else []) if value]
        self.calls_elsewhere = [call for worker in shared for call in worker["calls"]]
        self.rung_elsewhere = [call for worker in shared for call in worker["rung"]]

    # -- who rings next, across workers
    def dispatch(self) -> None:
        if not self.shared:
            self._dispatch_here()
            return
        self._dispatch_wanted = True
        self._poke()

    async def _dispatch_shared(self) -> None:
        await self._publish_waiters()
        waiters = sorted((w for ws in self.waiting.values() for w in ws), key=lambda w: w.entered_wall)
        for waiter in waiters:
            if waiter.ringing is not None or waiter.hold or not self.is_waiting(waiter):
                continue
            queue = self.queue(waiter.queue)
            serving = [a.id for a in self.agents.values() if waiter.queue in a.config.queues]
            if not serving:
                continue
            got = await self._script("claim", self.worker, waiter.call_id, waiter.queue, queue.strategy, *serving)
            if not got:
                continue
            chosen: List[AgentStatus] = []
            for agent_id, address in zip(got[::2], got[1::2]):
                agent = self.agents[agent_id]
                if not agent.config.uri:
                    agent.contact = address  # registered through whichever worker: ring it there
                agent.state = AgentState.RINGING  # keeps `since`: still the longest idle if missed
                self._mine.add(agent_id)
                chosen.append(agent)
            self._version += 1
            if waiter.ringing is not None or waiter.hold or not self.is_waiting(waiter):
                await self._give_back(waiter, chosen)  # changed while the claim was on its way
                continue
            waiter.ringing = asyncio.ensure_future(self._ring(waiter, chosen, queue.ring_timeout_s))

    async def _give_back(self, waiter: Waiter, agents: List[AgentStatus]) -> None:
        for agent in agents:
            agent.state = AgentState.AVAILABLE
            self._mine.discard(agent.id)
            await self._script("set_state", time.time(), agent.id, self.worker, "ringing", "available", "", "0", "1")
        if waiter.ringing is None and not waiter.hold:
            await self.redis.srem(PREFIX + "engaged", waiter.call_id)
        await self.redis.publish(CHANNEL, self.worker)

    def _on_ring_over(self, waiter: Waiter, agents: List[AgentStatus]) -> None:
        args = []
        for agent in agents:
            answered = waiter.answered_by is agent
            if not answered:
                self._mine.discard(agent.id)
            if agent.state in (AgentState.AVAILABLE, AgentState.PAUSED, AgentState.BUSY, AgentState.LOGGED_OUT):
                args += [agent.id, agent.state.value, agent.reason, "1" if answered else "0",
                         "1" if agent.state == AgentState.AVAILABLE else "0"]
        self._later(lambda: self._script("ring_over", time.time(), self.worker, waiter.call_id, *args), publish=True)

    # -- agents: each change here, written to Redis too
    def _on_registered(self, username: str, agent: Optional[AgentStatus], contact: Optional[str]) -> None:
        if contact is None:
            self._local_contacts.pop(username, None)
        else:
            self._local_contacts[username] = contact
        if agent is not None:
            self._later(lambda: self._script("register", time.time(), agent.id, self.worker, contact or ""),
                        publish=True)

    def _on_presence(self, agent: AgentStatus, presence: str, reason: str) -> None:
        self._later(lambda: self._script("presence", time.time(), agent.id, presence, reason), publish=True)

    def _on_wrap_up(self, agent: AgentStatus) -> None:
        self._later(lambda: self._script("set_state", time.time(), agent.id, self.worker, "busy", "wrap_up",
                                         "", "0", "0"))

    def _on_wrapped_up(self, agent: AgentStatus, was_wrapping_up: bool) -> None:
        self._mine.discard(agent.id)
        if was_wrapping_up:
            self._later(lambda: self._script("set_state", time.time(), agent.id, self.worker, "wrap_up",
                                             "available", "", "0", "0"), publish=True)

    # -- callers: places and lengths across workers
    def _on_joined(self, waiter: Waiter) -> None:
        self._later(lambda: self._publish_waiters())

    def _on_left(self, waiter: Waiter) -> None:
        self._ranks.pop(waiter.call_id, None)
        self._later(lambda: self._forget_waiter(waiter.call_id, waiter.queue), publish=True)

    def _waiting_count(self, queue_id: str) -> int:
        if not self.shared:
            return super()._waiting_count(queue_id)
        return max(self._lengths.get(queue_id, 0), len(self.waiting[queue_id]))

    def position(self, waiter: Waiter) -> int:
        """Among all workers' callers while shared; else among this worker's."""
        local = super().position(waiter)
        if not self.shared or not local:
            return local
        if waiter.call_id in self._ranks:
            return self._ranks[waiter.call_id] + 1
        return max(local, self._lengths.get(waiter.queue, 0) + 1)  # not counted yet: behind all others

    # -- for operators
    def snapshot(self) -> dict:
        state = super().snapshot()
        state.update(shared=self.shared, redis=safe_url(self.url), worker=self.worker)
        if self.shared:
            for queue in state["queues"]:
                queue["waiting_all_workers"] = self._lengths.get(queue["id"], len(queue["waiting"]))
        return state
