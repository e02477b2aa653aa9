"""Clients of one Redis for a test: fakeredis always, the real server too when the run has one."""
from __future__ import annotations

from tests.helpers.environment import REDIS_URL, redis_params, unavailable


class RedisClients:
    """Clients of one Redis — fakeredis, or the real server (the Redis suite): each call is another
    connection, as another process would hold. Flushed when made and when closed."""

    def __init__(self, kind: str):
        self.kind = kind
        self.made = []
        if kind == "fakeredis":
            import fakeredis

            self._server = fakeredis.FakeServer()
        first = self()
        if kind == "redis":
            try:
                first.ping()
            except Exception as exc:  # pragma: no cover
                unavailable("Redis", exc)
        first.flushdb()

    def __call__(self):
        if self.kind == "fakeredis":
            import fakeredis

            self.made.append(fakeredis.FakeRedis(server=self._server))
        else:
            import redis

            self.made.append(redis.Redis.from_url(REDIS_URL))
        return self.made[-1]

    def close(self) -> None:
        self.made[0].flushdb()
        for client in self.made:
            client.close()


def redis_kinds() -> list[str]:
    return redis_params()
