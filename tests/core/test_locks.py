import logging
import threading
import time

import pytest

from core.platform.locks import KEY_PREFIX, LocalLocks, LockUnavailable, RedisLocks
from tests.helpers.redis_clients import RedisClients, redis_kinds


@pytest.fixture(params=["local"] + redis_kinds())
def providers(request):
    """Two providers that must exclude each other: for Redis (fakeredis, and the real server on CI),
    two clients (= two processes)."""
    if request.param == "local":
        locks = LocalLocks()
        yield locks, locks
        return
    clients = RedisClients(request.param)
    yield RedisLocks(clients()), RedisLocks(clients())
    clients.close()


def test_mutual_exclusion_across_providers(providers):
    inside = 0
    peak = 0
    guard = threading.Lock()
    errors = []

    def work(locks):
        nonlocal inside, peak
        try:
            for _ in range(5):
                with locks.lock("job", timeout_s=5, blocking_timeout_s=5):
                    with guard:
                        inside += 1
                        peak = max(peak, inside)
                    time.sleep(0.002)
                    with guard:
                        inside -= 1
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(providers[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert peak == 1


def test_lock_unavailable_after_blocking_timeout(providers):
    a, b = providers
    with a.lock("x"):
        acquired_elsewhere = []

        def other():
            try:
                with b.lock("x", blocking_timeout_s=0.1):
                    acquired_elsewhere.append(True)
            except LockUnavailable as exc:
                acquired_elsewhere.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join(5)
        assert isinstance(acquired_elsewhere[0], LockUnavailable)
        assert "x" in str(acquired_elsewhere[0])
    # Released on exit: free again, and other names never collide.
    with b.lock("x", blocking_timeout_s=0.1):
        with a.lock("y", blocking_timeout_s=0.1):
            pass


def test_lock_released_when_body_raises(providers):
    a, b = providers
    with pytest.raises(RuntimeError):
        with a.lock("z"):
            raise RuntimeError("boom")
    with b.lock("z", blocking_timeout_s=0.1):
        pass


def test_try_lock_never_blocks(providers):
    a, b = providers
    with a.try_lock("batch:1") as got:
        assert got is True
        result = []
        t = threading.Thread(target=lambda: result.append(_try(b, "batch:1")))
        t.start()
        t.join(5)
        # Answered while the lock is still held: a blocking lock would still be waiting here.
        assert result == [False]
        assert _try(b, "batch:2") is True
    assert _try(b, "batch:1") is True


def _try(locks, name):
    with locks.try_lock(name, timeout_s=5) as got:
        return got


def test_redis_keys_are_namespaced_and_expire(any_redis):
    client = any_redis
    locks = RedisLocks(client)
    with locks.lock("oauth-refresh:7", timeout_s=30):
        assert client.exists(f"{KEY_PREFIX}oauth-refresh:7")
        assert 0 < client.pttl(f"{KEY_PREFIX}oauth-refresh:7") <= 30_000
    assert not client.exists(f"{KEY_PREFIX}oauth-refresh:7")


def test_redis_lock_that_expired_while_held_does_not_raise(caplog, redis_clients):
    a = RedisLocks(redis_clients())
    b = RedisLocks(redis_clients())
    with caplog.at_level(logging.WARNING, logger="core.platform.locks"):
        with a.lock("slow", timeout_s=0.1):
            time.sleep(0.2)
            # Expired: another process can take it now.
            with b.try_lock("slow") as got:
                assert got is True
    assert "expired" in caplog.text
