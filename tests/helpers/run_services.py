"""Each test run gets its own PostgreSQL database and Redis database number, so two runs on one machine
(two developers, CI beside a session) never truncate or flush each other's data.

- PostgreSQL: the database named in TEST_DATABASE_URL (default `chatsource_test`) gets the run's pid as a
  suffix (`chatsource_test_12345`); it is created by the fixtures and dropped when the run ends.
- Redis: a database number 1–15 leased for the run with `SET NX` on a key in database 0 (which no test
  uses), released when the run ends and expiring by itself after a crashed run.

`claim()` runs once, when tests/helpers/environment.py is imported (by tests/conftest.py), and writes the run's urls back into
TEST_DATABASE_URL / TEST_REDIS_URL so every suite that reads the environment sees the same ones.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/chatsource_test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
LEASE_KEY = "chatsource:test-run:redis-db:{n}"
LEASE_SECONDS = 3 * 3600  # longer than any run; a crashed run's lease frees itself


@dataclass
class RunServices:
    pg_url: str | None
    redis_url: str | None
    redis_db: int | None = None


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def run_pg_url(base: str, run_id: int) -> str:
    name = urlsplit(base).path.lstrip("/") or "chatsource_test"
    return _with_path(base, f"/{name}_{run_id}")


def lease_redis_db(base: str, run_id: int) -> tuple[str, int] | None:
    """The first free database number (1–15) on the server of `base`, leased for this run."""
    import redis

    admin = redis.Redis.from_url(_with_path(base, "/0"), socket_connect_timeout=2)
    try:
        for n in range(1, 16):
            if admin.set(LEASE_KEY.format(n=n), str(run_id), nx=True, ex=LEASE_SECONDS):
                return _with_path(base, f"/{n}"), n
    except redis.RedisError:
        return None  # no server: the suites report it (skip, or fail under REQUIRE_SERVICES=1)
    finally:
        admin.close()
    raise RuntimeError("all 15 Redis test databases are leased by other runs; wait for one to finish")


def release_redis_db(base: str, n: int, run_id: int) -> None:
    import redis

    admin = redis.Redis.from_url(_with_path(base, "/0"), socket_connect_timeout=2)
    try:
        key = LEASE_KEY.format(n=n)
        if admin.get(key) == str(run_id).encode():
            admin.delete(key)
    except redis.RedisError:
        pass
    finally:
        admin.close()


def drop_pg_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = _with_path(url, "/postgres")
    if admin_url.startswith("postgresql://"):
        admin_url = admin_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    except Exception:
        pass  # the server went away; nothing to clean
    finally:
        engine.dispose()


_claimed: RunServices | None = None


def claim(environ=os.environ, wanted_pg: bool = False, wanted_redis: bool = False) -> RunServices:
    """Once per process: a second call (another import path of tests/helpers/environment.py) gets the
    same lease, never a second one."""
    global _claimed
    if _claimed is not None:
        return _claimed
    run_id = os.getpid()
    pg_base = environ.get("TEST_DATABASE_URL") or (DEFAULT_PG_URL if wanted_pg else None)
    redis_base = environ.get("TEST_REDIS_URL") or (DEFAULT_REDIS_URL if wanted_redis else None)
    result = RunServices(pg_url=run_pg_url(pg_base, run_id) if pg_base else None, redis_url=redis_base)
    if redis_base:
        leased = lease_redis_db(redis_base, run_id)
        if leased is not None:
            result.redis_url, result.redis_db = leased
    if result.pg_url:
        environ["TEST_DATABASE_URL"] = result.pg_url
    if result.redis_url:
        environ["TEST_REDIS_URL"] = result.redis_url
    _claimed = result
    return result


def release(run: RunServices, environ=os.environ) -> None:
    run_id = os.getpid()
    if run.redis_db is not None and run.redis_url:
        release_redis_db(run.redis_url, run.redis_db, run_id)
    if run.pg_url:
        drop_pg_database(run.pg_url)
