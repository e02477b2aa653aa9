import os
import threading
import time
import uuid

import fakeredis
import pytest
import redis

from core.ratelimit import (
    KEY_PREFIX,
    LocalSlidingWindowLimiter,
    RateLimitTimeout,
    RedisSlidingWindowLimiter,
)

LIMIT = 3
WINDOW_MS = 200


class Recorder:
    """Collects grant times as the limiter itself saw them (Redis TIME / monotonic), so the check
    does not depend on thread scheduling after the grant."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times: list[float] = []

    def wrap(self, limiter):
        original = limiter.try_acquire

        def try_acquire(key):
            granted, value = original(key)
            if granted:
                with self.lock:
                    self.times.append(value)
            return granted, value

        limiter.try_acquire = try_acquire
        return limiter


def assert_sliding_invariant(times, limit, window_s):
    times = sorted(times)
    for i in range(len(times) - limit):
        gap = times[i + limit] - times[i]
        assert gap >= window_s - 1e-6, (
            f"{limit + 1} grants within {gap * 1000:.3f} ms (window {window_s * 1000:.0f} ms): {times[i:i + limit + 1]}"
        )


def hammer(limiters, key, threads=4, per_thread=3):
    errors = []
    barrier = threading.Barrier(threads)

    def run(limiter):
        try:
            barrier.wait()
            for _ in range(per_thread):
                limiter.acquire(key, deadline_s=10)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(limiters[i % len(limiters)],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert not errors, errors


def unique_key():
    return f"test-{uuid.uuid4().hex}"


# -- in-process ------------------------------------------------------------------------------------

def test_local_limiter_never_exceeds_limit_in_any_window():
    rec = Recorder()
    limiter = rec.wrap(LocalSlidingWindowLimiter(LIMIT, WINDOW_MS))
    hammer([limiter], "k", threads=4, per_thread=3)
    assert len(rec.times) == 12
    assert_sliding_invariant(rec.times, LIMIT, WINDOW_MS / 1000)


def test_local_limiter_is_sliding_not_a_per_second_bucket():
    # dramatiq's WindowRateLimiter grants 7 at x.999 and 7 more at (x+1).001; a sliding log must not.
    now = [10.999]
    limiter = LocalSlidingWindowLimiter(7, 1000, clock=lambda: now[0], sleep=lambda s: None)
    assert all(limiter.try_acquire("k")[0] for _ in range(7))
    now[0] = 11.001
    granted, wait = limiter.try_acquire("k")
    assert not granted and wait == pytest.approx(0.998)
    now[0] = 11.999
    assert limiter.try_acquire("k")[0]
    # Keys are independent.
    assert limiter.try_acquire("other")[0]


def test_local_penalty_blocks_everyone_until_it_passes():
    rec = Recorder()
    limiter = rec.wrap(LocalSlidingWindowLimiter(LIMIT, WINDOW_MS))
    before = time.monotonic()
    limiter.penalise("k", 0.3)
    hammer([limiter], "k", threads=3, per_thread=1)
    assert len(rec.times) == 3
    assert min(rec.times) >= before + 0.3
    # A shorter penalty never shortens a longer one.
    limiter.penalise("j", 5)
    limiter.penalise("j", 0.01)
    granted, wait = limiter.try_acquire("j")
    assert not granted and wait > 4


def test_local_deadline_raises():
    limiter = LocalSlidingWindowLimiter(1, 1000)
    limiter.acquire("k")
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("k", deadline_s=0.05)


# -- Redis -----------------------------------------------------------------------------------------

def _redis_invariant(clients):
    rec = Recorder()
    limiters = [rec.wrap(RedisSlidingWindowLimiter(c, LIMIT, WINDOW_MS)) for c in clients]
    key = unique_key()
    hammer(limiters, key, threads=4, per_thread=3)
    assert len(rec.times) == 12
    assert_sliding_invariant(rec.times, LIMIT, WINDOW_MS / 1000)
    keys = {k.decode() for k in clients[0].keys(f"{KEY_PREFIX}{key}*")}
    assert keys == {f"{KEY_PREFIX}{key}"}
    assert 0 < clients[0].pttl(f"{KEY_PREFIX}{key}") <= WINDOW_MS + 1000


def _redis_penalty(clients):
    rec = Recorder()
    limiters = [rec.wrap(RedisSlidingWindowLimiter(c, LIMIT, WINDOW_MS)) for c in clients]
    key = unique_key()
    sec, usec = clients[0].time()
    before = sec + usec / 1e6
    limiters[0].penalise(key, 0.3)
    # Every instance (= every process) is held back, not only the one that saw the 429.
    for limiter in limiters:
        granted, wait = limiter.try_acquire(key)
        assert not granted and 0 < wait <= 0.3
    hammer(limiters, key, threads=2, per_thread=1)
    assert len(rec.times) == 2
    assert min(rec.times) >= before + 0.3 - 0.002  # PTTL has millisecond resolution
    # Never shortened; and a deadline shorter than the penalty fails at once.
    limiters[1].penalise(key, 5)
    limiters[0].penalise(key, 0.01)
    granted, wait = limiters[0].try_acquire(key)
    assert not granted and wait > 4
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout):
        limiters[1].acquire(key, deadline_s=3)
    assert time.monotonic() - started < 3  # gave up at once: waiting could not end before the deadline


def test_fakeredis_two_instances_share_the_window():
    server = fakeredis.FakeServer()
    clients = [fakeredis.FakeRedis(server=server), fakeredis.FakeRedis(server=server)]
    _redis_invariant(clients)


def test_fakeredis_penalty_blocks_every_instance():
    server = fakeredis.FakeServer()
    _redis_penalty([fakeredis.FakeRedis(server=server), fakeredis.FakeRedis(server=server)])


@pytest.fixture
def real_redis_clients():
    url = os.environ.get("TEST_REDIS_URL")
    required = os.environ.get("REQUIRE_SERVICES") == "1"
    if not url and not required:
        pytest.skip("real Redis not requested (set TEST_REDIS_URL or REQUIRE_SERVICES=1)")
    url = url or "redis://127.0.0.1:6379/15"
    clients = [redis.Redis.from_url(url), redis.Redis.from_url(url)]
    try:
        clients[0].ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is unreachable: {exc}")
    yield clients
    for key in clients[0].scan_iter(f"{KEY_PREFIX}test-*"):
        clients[0].delete(key)
    for c in clients:
        c.close()


def test_real_redis_two_instances_share_the_window(real_redis_clients):
    _redis_invariant(real_redis_clients)


def test_real_redis_penalty_blocks_every_instance(real_redis_clients):
    _redis_penalty(real_redis_clients)
