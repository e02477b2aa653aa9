"""Blocking sliding-log rate limiters shared by every process that talks to amoCRM.

amoCRM allows 7 requests per second and answers repeated 429s with a 403 block of the account, so
the guarantee we need is strict: **at most `limit` grants in ANY interval of `window_ms`**, across
all processes. A per-wall-clock-second bucket (dramatiq's `WindowRateLimiter`) does not give that:
it can grant `limit` at the end of one second and `limit` again at the start of the next.

amoCRM counts a call when it ARRIVES, some time after we granted it (a new TLS connection, a far
network, a thread starved on a busy machine), so a log of grant times can see a slot free while
amoCRM still counts the late call. A call arrives before it is answered, so a slot is held while its
call is in flight and counts a whole window from its answer: the grant stamps it `hold_ms` ahead
(the longest a call can take), `answered` stamps it again at the answer. Our log then stays a
superset of amoCRM's whatever the delay, a call slower than a window included; a process that dies
mid-call frees its slot `hold_ms` later.

`RedisSlidingWindowLimiter` keeps, per key, a sorted set of slot timestamps taken from Redis `TIME`
(one clock for every process) and decides in a single Lua script, so check-and-add is atomic.
`LocalSlidingWindowLimiter` is the in-process equivalent for the single-process embedded mode.

Both support `penalise(key, seconds)`: after amoCRM answered 429 with Retry-After, nobody gets a slot
for that key until the penalty is over.
"""
from __future__ import annotations

import bisect
import contextlib
import hashlib
import hmac
import ipaddress
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Protocol

KEY_PREFIX = "chatsource:rl:"


class RateLimitTimeout(Exception):
    """No slot could be had before the deadline."""

    def __init__(self, key: str, waited_s: float, retry_after_s: float | None = None):
        self.key = key
        self.waited_s = waited_s
        self.retry_after_s = retry_after_s
        hint = f"; next slot in about {retry_after_s:.1f}s" if retry_after_s is not None else ""
        super().__init__(f"rate limit {key!r}: no slot after waiting {waited_s:.1f}s{hint}")


@dataclass(frozen=True)
class Grant:
    """One granted slot: `member` names it in the log, `granted_at` is on the limiter's clock."""

    key: str
    member: str
    granted_at: float


class RateLimiter(Protocol):
    def acquire(self, key: str, deadline_s: float = 60) -> Grant:
        """Block until a slot for `key` is granted; raise `RateLimitTimeout` past `deadline_s`."""

    def answered(self, grant: Grant) -> None:
        """The granted call was answered (or failed): its slot counts a whole window from now."""

    def penalise(self, key: str, seconds: float) -> None:
        """No slot for `key` is granted to anyone until `seconds` from now (extends, never shortens)."""

    def wait_until_free(self, key: str, slots: int, deadline_s: float = 5) -> None:
        """Sleep until `slots` grants would be given at once, granting none (at most `deadline_s`)."""


class _BlockingMixin:
    """`acquire` on top of `try_acquire(key, member) -> (granted, value)`.

    `value` is the grant time (seconds, on the limiter's clock) when granted, else the seconds to
    wait before a slot can be free; `member` names the slot in the log (a new one when None)."""

    _sleep: Callable[[float], None]

    def try_acquire(self, key: str, member: str | None = None) -> tuple[bool, float]:  # pragma: no cover
        raise NotImplementedError

    def acquire(self, key: str, deadline_s: float = 60) -> Grant:
        start = time.monotonic()
        member = uuid.uuid4().hex
        while True:
            granted, value = self.try_acquire(key, member)
            if granted:
                return Grant(key, member, value)
            waited = time.monotonic() - start
            remaining = deadline_s - waited
            if value > remaining:
                # Sleeping until the deadline would not help: say so now.
                raise RateLimitTimeout(key, waited, value)
            # A little jitter so that waiters released together do not stampede in lockstep.
            self._sleep(value + random.uniform(0, 0.005))

    def seconds_until_free(self, key: str, slots: int) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def wait_until_free(self, key: str, slots: int, deadline_s: float = 5) -> None:
        """Sleep until `slots` grants for `key` would be given at once, taking none (at most `deadline_s`).
        core.inbox.talk_processing waits here before it claims a batch, so the talks that arrive during the
        wait are in the batch instead of waiting for the next one."""
        slots = max(1, min(int(slots), self.limit))
        start = time.monotonic()
        while True:
            wait = self.seconds_until_free(key, slots)
            remaining = deadline_s - (time.monotonic() - start)
            if wait <= 0 or remaining <= 0:
                return
            self._sleep(min(wait, remaining))


# KEYS[1]: the log (ZSET of slot times in µs: a call's answer, or for a call in flight its grant +
# hold, ahead of now), KEYS[2]: the penalty marker (expires with PX).
# ARGV[1]: limit, ARGV[2]: window in ms, ARGV[3]: a unique id for this attempt, ARGV[4]: hold in ms.
# Returns {0, grant_time_us} when granted, else {1, ms_to_wait}.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local penalty = redis.call('PTTL', KEYS[2])
if penalty > 0 then
  return {1, penalty}
end
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local window = window_ms * 1000
local hold_ms = tonumber(ARGV[4])
-- An entry exactly one window old no longer counts: grants are then >= window apart.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now + hold_ms * 1000, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window_ms + hold_ms + 1000)
  return {0, now}
end
-- The first slot to leave is the oldest answered one; a slot in flight leaves a window after its answer.
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait_us = math.min(tonumber(oldest[2]), now) + window - now
local wait_ms = math.floor((wait_us + 999) / 1000)
if wait_ms < 1 then wait_ms = 1 end
return {1, wait_ms}
"""

# The same keys; ARGV[1]: limit, ARGV[2]: window in ms, ARGV[3]: slots wanted. Grants nothing:
# returns the ms until that many grants would be given at once (0: now).
_PEEK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local penalty = redis.call('PTTL', KEYS[2])
if penalty > 0 then
  return penalty
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * 1000
local wanted = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local over = count + wanted - limit
if over <= 0 then
  return 0
end
local entry = redis.call('ZRANGE', KEYS[1], over - 1, over - 1, 'WITHSCORES')
local wait_ms = math.floor((math.min(tonumber(entry[2]), now) + window - now + 999) / 1000)
if wait_ms < 1 then wait_ms = 1 end
return wait_ms
"""

# KEYS[1]: the log. ARGV[1]: the slot's member, ARGV[2]: window in ms. The slot counts from now (it is
# added again if it already left the log: the call was on its way longer than the hold).
_ANSWERED_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) + 1000 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
end
return now
"""

# KEYS[1]: the penalty marker. ARGV[1]: penalty in ms. Only ever lengthens the penalty.
_PENALISE_LUA = """
local ms = tonumber(ARGV[1])
local current = redis.call('PTTL', KEYS[1])
if current < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
  return 1
end
return 0
"""


class RedisSlidingWindowLimiter(_BlockingMixin):
    """At most `limit` calls per key in any `window_ms`, shared through Redis by every process.

    A granted slot is held until its call is answered, at most `hold_ms` (0: it counts from the grant)."""

    def __init__(self, redis_client, limit: int, window_ms: int, sleep: Callable[[float], None] = time.sleep,
                 hold_ms: int = 0):
        if limit < 1 or window_ms < 1 or hold_ms < 0:
            raise ValueError("limit and window_ms must be positive, hold_ms not negative")
        self.redis = redis_client
        self.limit = int(limit)
        self.window_ms = int(window_ms)
        self.hold_ms = int(hold_ms)
        self._sleep = sleep
        self._acquire_script = redis_client.register_script(_ACQUIRE_LUA)
        self._penalise_script = redis_client.register_script(_PENALISE_LUA)
        self._peek_script = redis_client.register_script(_PEEK_LUA)
        self._answered_script = redis_client.register_script(_ANSWERED_LUA)

    @staticmethod
    def log_key(key: str) -> str:
        return f"{KEY_PREFIX}{key}"

    @staticmethod
    def penalty_key(key: str) -> str:
        return f"{KEY_PREFIX}{key}:penalty"

    def try_acquire(self, key: str, member: str | None = None) -> tuple[bool, float]:
        status, value = self._acquire_script(
            keys=[self.log_key(key), self.penalty_key(key)],
            args=[self.limit, self.window_ms, member or uuid.uuid4().hex, self.hold_ms],
        )
        if isinstance(value, bytes):
            value = value.decode()
        if int(status) == 0:
            return True, int(value) / 1_000_000
        return False, int(value) / 1000

    def answered(self, grant: Grant) -> None:
        self._answered_script(keys=[self.log_key(grant.key)], args=[grant.member, self.window_ms])

    def seconds_until_free(self, key: str, slots: int) -> float:
        ms = self._peek_script(keys=[self.log_key(key), self.penalty_key(key)], args=[self.limit, self.window_ms, slots])
        return int(ms) / 1000

    def penalise(self, key: str, seconds: float) -> None:
        ms = int(seconds * 1000)
        if ms <= 0:
            return
        self._penalise_script(keys=[self.penalty_key(key)], args=[ms])


class LocalSlidingWindowLimiter(_BlockingMixin):
    """The same guarantee inside one process (threads), on `time.monotonic`."""

    def __init__(
        self,
        limit: int,
        window_ms: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        hold_ms: int = 0,
    ):
        if limit < 1 or window_ms < 1 or hold_ms < 0:
            raise ValueError("limit and window_ms must be positive, hold_ms not negative")
        self.limit = int(limit)
        self.window_ms = int(window_ms)
        self._window = window_ms / 1000
        self._hold = hold_ms / 1000
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # Per key, slot times in order: answers, and for calls in flight their grant + hold (ahead of now).
        self._logs: dict[str, list[float]] = {}
        self._penalties: dict[str, float] = {}

    def _live_log(self, key: str, now: float) -> list[float]:
        log = self._logs.setdefault(key, [])
        del log[:bisect.bisect_right(log, now - self._window)]
        return log

    def try_acquire(self, key: str, member: str | None = None) -> tuple[bool, float]:
        key = f"{KEY_PREFIX}{key}"
        with self._lock:
            now = self._clock()
            until = self._penalties.get(key)
            if until is not None:
                if until > now:
                    return False, until - now
                del self._penalties[key]
            log = self._live_log(key, now)
            if len(log) < self.limit:
                bisect.insort(log, now + self._hold)
                return True, now
            return False, max(min(log[0], now) + self._window - now, 0.001)

    def answered(self, grant: Grant) -> None:
        key = f"{KEY_PREFIX}{grant.key}"
        with self._lock:
            log = self._logs.setdefault(key, [])
            with contextlib.suppress(ValueError):  # gone: the call took longer than the hold
                log.remove(grant.granted_at + self._hold)
            bisect.insort(log, self._clock())

    def seconds_until_free(self, key: str, slots: int) -> float:
        key = f"{KEY_PREFIX}{key}"
        with self._lock:
            now = self._clock()
            until = self._penalties.get(key)
            if until is not None and until > now:
                return until - now
            log = self._live_log(key, now)
            over = len(log) + slots - self.limit
            return 0.0 if over <= 0 else max(min(log[over - 1], now) + self._window - now, 0.001)

    def penalise(self, key: str, seconds: float) -> None:
        if seconds <= 0:
            return
        key = f"{KEY_PREFIX}{key}"
        with self._lock:
            until = self._clock() + seconds
            if until > self._penalties.get(key, 0.0):
                self._penalties[key] = until


# --------------------------------------------------------------------------- quotas on public endpoints
#
# The limiters above wait for a slot (amoCRM must never see an 8th call); the public endpoints must
# instead answer at once: admitted, or 429 with how long to wait. They take thousands of hits per
# second, so a quota keeps two counters per key (this window and the previous one) instead of a log
# of every hit, and estimates the sliding-window count as `previous × the part of it still inside the
# window + current` — Cloudflare's "sliding window counter": O(1) memory per key, exact at a steady
# rate, and never more than the limit over any window when traffic is even. Every quota of a request
# is checked and counted in ONE Redis round trip (one Lua script); a refused request counts nowhere,
# so nothing refused eats the allowance of what comes after it.


class QuotaExceeded(Exception):
    """Over a quota: `name` says which, `retry_after` is whole seconds (at least 1)."""

    def __init__(self, name: str, retry_after: int):
        super().__init__(f"over the {name} quota; retry after {retry_after}s")
        self.name = name
        self.retry_after = retry_after


class Quota:
    """At most `limit` events per `window_s` seconds for one key; `name` is for the refusal."""

    __slots__ = ("name", "key", "limit", "window_ms")

    def __init__(self, name: str, key: str, limit: int, window_s: float):
        if limit < 1 or window_s <= 0:
            raise ValueError("limit and window must be positive")
        self.name, self.key, self.limit, self.window_ms = name, key, int(limit), int(window_s * 1000)


def _wait_ms(previous: float, current: float, limit: int, window_ms: int, elapsed_ms: int) -> int:
    """How long until one more event fits (the same arithmetic as the Lua script)."""
    if current + 1 > limit:  # this window alone is full: wait for the next one, then for its weight
        return window_ms - elapsed_ms + _wait_ms(current, 0, limit, window_ms, 0)
    if previous <= 0:
        return 1
    needed = window_ms * (1 - (limit - 1 - current) / previous)  # elapsed at which the estimate fits
    return max(int(needed) - elapsed_ms + 1, 1)


# KEYS[i]: the quota's key prefix. ARGV: for each key, its limit and window in ms.
# Returns {0} when admitted (every counter incremented), else {i, ms_to_wait} for the first quota over.
_QUOTA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local current_keys = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local slot = math.floor(now / window)
  local elapsed = now - slot * window
  local current_key = KEYS[i] .. ':' .. slot
  local current = tonumber(redis.call('GET', current_key) or '0')
  local previous = tonumber(redis.call('GET', KEYS[i] .. ':' .. (slot - 1)) or '0')
  if previous * (window - elapsed) / window + current + 1 > limit then
    local wait
    if current + 1 > limit then
      wait = window - elapsed + math.max(math.floor(window * (1 - (limit - 1) / current)) + 1, 1)
    else
      wait = math.max(math.floor(window * (1 - (limit - 1 - current) / previous)) - elapsed + 1, 1)
    end
    return {i, wait}
  end
  current_keys[i] = current_key
end
for i = 1, #KEYS do
  redis.call('INCR', current_keys[i])
  redis.call('PEXPIRE', current_keys[i], 2 * tonumber(ARGV[2 * i]) + 1000)
end
return {0}
"""


class RedisQuotas:
    """Quotas shared by every web process through Redis."""

    def __init__(self, redis_client):
        self.redis = redis_client
        self._script = redis_client.register_script(_QUOTA_LUA)

    def admit(self, *quotas: Quota) -> None:
        """Count one event against every quota, or raise `QuotaExceeded` and count nothing."""
        if not quotas:
            return
        args: list[int] = []
        for q in quotas:
            args += [q.limit, q.window_ms]
        result = self._script(keys=[f"{KEY_PREFIX}q:{q.key}" for q in quotas], args=args)
        if int(result[0]):
            raise QuotaExceeded(quotas[int(result[0]) - 1].name, -(-int(result[1]) // 1000))


class LocalQuotas:
    """The same quotas inside one process (the embedded mode), on `time.monotonic`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}
        self._next_prune = 0.0

    def admit(self, *quotas: Quota) -> None:
        with self._lock:
            now = int(self._clock() * 1000)
            slots = []
            for q in quotas:
                slot, elapsed = divmod(now, q.window_ms)
                current = self._counts.get((q.key, slot), 0)
                previous = self._counts.get((q.key, slot - 1), 0)
                if previous * (q.window_ms - elapsed) / q.window_ms + current + 1 > q.limit:
                    raise QuotaExceeded(q.name, -(-_wait_ms(previous, current, q.limit, q.window_ms, elapsed) // 1000))
                slots.append((q.key, slot))
            for key in slots:
                self._counts[key] = self._counts.get(key, 0) + 1
            if now >= self._next_prune:  # forget windows older than the previous one of any quota
                self._prune(now, quotas)

    def _prune(self, now: int, quotas) -> None:
        longest = max((q.window_ms for q in quotas), default=60_000)
        self._next_prune = now + longest
        windows = {q.key: q.window_ms for q in quotas}
        self._counts = {(k, s): n for (k, s), n in self._counts.items()
                        if k not in windows or s >= now // windows[k] - 1}


def client_bucket(ip: str | None, salt: str) -> str:
    """The key part for "per client IP": an HMAC (no raw address in Redis, as in visitor sessions),
    of the whole address for IPv4 and of its /64 for IPv6 (one subscriber gets a /64 or more, so a
    per-address limit would not hold anyone back)."""
    text = (ip or "").strip()
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return "unknown"
    if isinstance(addr, ipaddress.IPv6Address):
        addr = addr.ipv4_mapped or ipaddress.ip_network(f"{addr}/64", strict=False)
    return hmac.new(salt.encode(), str(addr).encode(), hashlib.sha256).hexdigest()[:32]
