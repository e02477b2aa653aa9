"""Fixtures of the fault suite: a private redis-server, a private PostgreSQL cluster, the Procfile's worker as a subprocess, and the app wired to them.

The suite runs with `make test` like everything else. Under REQUIRE_SERVICES=1 (CI) a missing
redis-server or PostgreSQL binary fails the run instead of skipping it.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers.apps import dispose, make_app
from tests.helpers.environment import TEST_CLIENT_ID, TEST_CLIENT_SECRET, unavailable
from tests.helpers.fault_helpers import PrivatePostgres, PrivateRedis, ServiceMissing, WorkerProcess


@pytest.fixture
def private_redis(tmp_path):
    try:
        server = PrivateRedis(tmp_path / "redis")
    except ServiceMissing as exc:
        unavailable("redis-server", exc)
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def private_pg():
    try:
        cluster = PrivatePostgres()
    except ServiceMissing as exc:
        unavailable("PostgreSQL binaries", exc)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def worker_env(app, db_url: str, redis_url: str, public_url: str) -> dict:
    """The environment of a worker process sharing the test app's database, broker and secrets."""
    settings = app.extensions["chatsource.settings"]
    env = dict(os.environ)
    env.update({
        "APP_ENV": "test",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "INSTANCE_DIR": settings.instance_dir,
        "SECRET_KEY": settings.secret_key,
        "TOKEN_ENCRYPTION_KEYS": ",".join(settings.token_encryption_keys),
        "AMOCRM_ALLOWED_HOSTS": ",".join(settings.amocrm_allowed_hosts),
        "AMOCRM_CLIENT_ID": TEST_CLIENT_ID,
        "AMOCRM_CLIENT_SECRET": TEST_CLIENT_SECRET,
        "AMOCRM_TIMEOUT_SECONDS": "5",
        "PUBLIC_URL": public_url,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def redis_app(db_url, tmp_path, live, private_redis):
    """The app on the private Redis (broker, limiter, locks), served on `live` for the sandbox."""
    import redis

    client = redis.Redis.from_url(private_redis.url, socket_timeout=5, socket_connect_timeout=2)
    app = make_app(db_url, tmp_path, redis_client=client, public_url=live.url)
    live.app = app
    yield app
    dispose(app)
    client.close()


@pytest.fixture
def worker_factory(redis_app, db_url, private_redis, live, tmp_path):
    """Start the Procfile's worker against the test database and the private Redis."""
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(worker_env(redis_app, db_url, private_redis.url, live.url), tmp_path / "worker.log")
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
