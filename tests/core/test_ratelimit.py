import os
import threading
import time
import uuid

import fakeredis
import pytest
import redis

from core.platform.ratelimit import (
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

        def try_acquire(key, member=None):
            granted, value = original(key, member)
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


# -- waiting for free slots without taking them (core.inbox.talk_processing waits here before a claim) ----

def _wait_until_free(limiter):
    key = unique_key()
    assert limiter.seconds_until_free(key, 2) == 0
    for _ in range(LIMIT - 1):
        limiter.acquire(key)
    assert limiter.seconds_until_free(key, 1) == 0  # one slot is still free
    wait = limiter.seconds_until_free(key, 2)  # two are free once the oldest grant leaves the window
    assert 0 < wait <= WINDOW_MS / 1000
    limiter.wait_until_free(key, 2, deadline_s=5)
    assert limiter.seconds_until_free(key, 2) == 0
    # Asking grants nothing: both slots are there for the calls that follow.
    limiter.acquire(key, deadline_s=0.001)
    limiter.acquire(key, deadline_s=0.001)
    assert limiter.seconds_until_free(key, LIMIT) > 0  # the two just taken count


def test_local_limiter_tells_when_slots_are_free_without_taking_them():
    _wait_until_free(LocalSlidingWindowLimiter(LIMIT, WINDOW_MS))


def test_fakeredis_limiter_tells_when_slots_are_free_without_taking_them():
    _wait_until_free(RedisSlidingWindowLimiter(fakeredis.FakeRedis(server=fakeredis.FakeServer()), LIMIT, WINDOW_MS))


def test_real_redis_limiter_tells_when_slots_are_free_without_taking_them(real_redis_clients):
    _wait_until_free(RedisSlidingWindowLimiter(real_redis_clients[0], LIMIT, WINDOW_MS))


# -- a slot counts from the call's answer, not from its grant ---------------------------------------
#
# amoCRM counts a call when it arrives, which is some time after we granted it: a new TLS connection,
# a slow network or a starved thread between the grant and the send. A log of grant times then sees a
# slot free while amoCRM still counts the late call, and the next call earns a 429 (seen on CI: the
# code exchange of a connect reached the sandbox late, the worker's first call right after got a 429).
# A call arrives before it is answered, so re-stamping its slot at the answer keeps our log a superset
# of amoCRM's, whatever the delay.

def test_local_slot_of_a_late_call_counts_from_its_answer():
    now = [100.0]
    limiter = LocalSlidingWindowLimiter(2, 1000, clock=lambda: now[0], sleep=lambda s: None)
    late = limiter.acquire("k")  # granted at 100.0; reaches amoCRM at about 100.5
    now[0] = 100.6
    limiter.answered(late)  # answered at 100.6: amoCRM counts it until at most 101.6
    limiter.answered(limiter.acquire("k"))
    now[0] = 101.2  # a log of grant times would have a slot free again here
    granted, wait = limiter.try_acquire("k")
    assert not granted and wait == pytest.approx(0.4)
    now[0] = 101.6
    assert limiter.try_acquire("k")[0]


def test_local_slot_answered_after_its_window_passed_is_counted_again():
    # A call in flight longer than the window dropped out of the log; once answered it counts again.
    now = [0.0]
    limiter = LocalSlidingWindowLimiter(1, 1000, clock=lambda: now[0], sleep=lambda s: None)
    slow = limiter.acquire("k")
    now[0] = 2.5
    limiter.answered(slow)
    now[0] = 3.0
    granted, wait = limiter.try_acquire("k")
    assert not granted and wait == pytest.approx(0.5)


def _redis_late_answer(client):
    window_s = 1.0  # long beside the sleeps: a busy machine oversleeping does not change the verdict
    limiter = RedisSlidingWindowLimiter(client, 1, int(window_s * 1000))
    key = unique_key()
    grant = limiter.acquire(key)
    time.sleep(0.15)  # the call is on its way for 150 ms
    answer_started = time.monotonic()
    limiter.answered(grant)
    answer_ended = time.monotonic()
    time.sleep(0.1)
    asked = time.monotonic()
    granted, wait = limiter.try_acquire(key)
    answered_by = time.monotonic()
    assert not granted
    # A window from the answer (a grant-time log would wait 150 ms less), read off our own clock.
    assert answer_started + window_s - answered_by - 0.002 <= wait <= answer_ended + window_s - asked + 0.002, wait
    assert client.zcard(f"{KEY_PREFIX}{key}") == 1  # re-stamped, not added twice


def test_fakeredis_slot_of_a_late_call_counts_from_its_answer():
    _redis_late_answer(fakeredis.FakeRedis(server=fakeredis.FakeServer()))


def test_real_redis_slot_of_a_late_call_counts_from_its_answer(real_redis_clients):
    _redis_late_answer(real_redis_clients[0])


# -- a slot is held while its call is in flight ----------------------------------------------------
#
# Stamps at the grant and at the answer are not enough when a call is on its way longer than a window
# (a thread starved on a busy machine, a slow connect): between the two its slot looked free, seven calls
# beside it were granted, it arrived among them and amoCRM saw eight in a second. With `hold_ms` the
# grant counts as "now" until the call is answered (at most `hold_ms`, for a process that died mid-call).

def test_local_slot_of_a_call_in_flight_is_held_until_its_answer():
    now = [0.0]
    limiter = LocalSlidingWindowLimiter(1, 1000, clock=lambda: now[0], sleep=lambda s: None, hold_ms=30_000)
    slow = limiter.acquire("k")
    now[0] = 2.0  # two windows later, still on its way
    granted, wait = limiter.try_acquire("k")
    assert not granted and wait == pytest.approx(1.0)  # a window after an answer that has not come yet
    assert limiter.seconds_until_free("k", 1) == pytest.approx(1.0)
    now[0] = 2.5
    limiter.answered(slow)
    now[0] = 3.0
    granted, wait = limiter.try_acquire("k")
    assert not granted and wait == pytest.approx(0.5)
    now[0] = 3.5
    assert limiter.try_acquire("k")[0]


def test_local_slot_of_a_call_never_answered_is_freed_after_the_hold():
    now = [0.0]
    limiter = LocalSlidingWindowLimiter(2, 1000, clock=lambda: now[0], sleep=lambda s: None, hold_ms=5_000)
    limiter.acquire("k")  # its thread died mid-call
    limiter.answered(limiter.acquire("k"))
    now[0] = 5.5
    assert limiter.try_acquire("k")[0] and not limiter.try_acquire("k")[0]
    now[0] = 6.0
    assert limiter.try_acquire("k")[0]


def _redis_in_flight(client):
    limiter = RedisSlidingWindowLimiter(client, 2, WINDOW_MS, hold_ms=60_000)
    key = unique_key()
    slow = limiter.acquire(key)
    limiter.answered(limiter.acquire(key))
    time.sleep(WINDOW_MS / 1000 + 0.05)  # the answered one left the window, the slow one is in flight
    assert limiter.try_acquire(key)[0]
    granted, wait = limiter.try_acquire(key)
    assert not granted and wait == pytest.approx(WINDOW_MS / 1000, abs=0.002)  # a window after its answer
    assert limiter.seconds_until_free(key, 2) == pytest.approx(WINDOW_MS / 1000, abs=0.002)
    limiter.answered(slow)
    assert client.zcard(f"{KEY_PREFIX}{key}") == 2  # re-stamped, not added twice
    assert client.pttl(f"{KEY_PREFIX}{key}") > 50_000  # one answer does not cut the others' hold short


def test_fakeredis_slot_of_a_call_in_flight_is_held_until_its_answer():
    _redis_in_flight(fakeredis.FakeRedis(server=fakeredis.FakeServer()))


def test_real_redis_slot_of_a_call_in_flight_is_held_until_its_answer(real_redis_clients):
    _redis_in_flight(real_redis_clients[0])


def test_real_redis_slot_of_a_call_never_answered_is_freed_after_the_hold(real_redis_clients):
    limiter = RedisSlidingWindowLimiter(real_redis_clients[0], 1, WINDOW_MS, hold_ms=100)
    key = unique_key()
    limiter.acquire(key)  # its process died mid-call
    assert not limiter.try_acquire(key)[0]
    time.sleep((100 + WINDOW_MS) / 1000 + 0.05)
    assert limiter.try_acquire(key)[0]

