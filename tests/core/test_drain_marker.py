"""core.inbox.drain_marker: one waiting message per integration, on fakeredis and the real Redis."""
from __future__ import annotations

from core.inbox import drain_marker


def test_one_message_waits_per_integration_until_a_worker_takes_it(any_redis):
    assert drain_marker.should_send(any_redis, 7) is True
    assert drain_marker.should_send(any_redis, 7) is False  # one is waiting
    assert drain_marker.should_send(any_redis, 8) is True  # another integration's is its own
    drain_marker.taken(any_redis, 7)
    assert drain_marker.should_send(any_redis, 7) is True
    assert 0 < any_redis.ttl(f"{drain_marker.KEY_PREFIX}7") <= drain_marker.PENDING_TTL_S  # never forever


class BrokenRedis:
    def set(self, *args, **kwargs):
        raise ConnectionError("Redis is down")

    delete = set


def test_without_redis_or_with_a_broken_one_every_webhook_sends_its_message():
    assert drain_marker.should_send(None, 7) is True
    assert drain_marker.should_send(BrokenRedis(), 7) is True
    drain_marker.taken(BrokenRedis(), 7)  # no error escapes: the key would expire by itself
    drain_marker.taken(None, 7)
