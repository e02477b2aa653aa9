"""Shared fixtures.

Database tests run on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set; Redis tests run
on fakeredis always and on the real server when TEST_REDIS_URL is set. With REQUIRE_SERVICES=1 (CI,
`.ci/run`) an unreachable PostgreSQL or Redis fails the run instead of skipping.
"""
from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from core.settings import Settings
from tests.helpers import run_services

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
# Test traffic is loopback only: no proxy variable of the machine may route it (nor requests' netrc).
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "*"
# This run's own PostgreSQL database and Redis database number (tests/helpers/run_services.py).
RUN_SERVICES = run_services.claim(wanted_pg=REQUIRE, wanted_redis=REQUIRE)
PG_URL = RUN_SERVICES.pg_url
REDIS_URL = RUN_SERVICES.redis_url
TEST_CLIENT_ID = "chatsource-test"
TEST_CLIENT_SECRET = "chatsource-test-secret"


def pytest_sessionfinish(session, exitstatus):
    run_services.release(RUN_SERVICES)


def _db_params():
    return ["sqlite"] + (["postgresql"] if PG_URL or REQUIRE else [])


def _redis_params():
    return ["fakeredis"] + (["redis"] if REDIS_URL or REQUIRE else [])


def unavailable(what: str, exc: Exception):
    message = f"{what} is not reachable: {exc}"
    if REQUIRE:
        pytest.fail(message + " (REQUIRE_SERVICES=1: the PostgreSQL and Redis suites must run)", pytrace=False)
    pytest.skip(message)


def settings_for(database_url: str, tmp_path, **overrides) -> Settings:
    env = {
        "APP_ENV": "test",
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "AMOCRM_ALLOWED_HOSTS": "*.amocrm.ru,*.amocrm.com,*.kommo.com,127.0.0.1,localhost",
        "AMOCRM_CLIENT_ID": TEST_CLIENT_ID,
        "AMOCRM_CLIENT_SECRET": TEST_CLIENT_SECRET,
        "AMOCRM_TIMEOUT_SECONDS": "5",
    }
    return Settings.from_env(env, database_url=database_url, **overrides)


def _ensure_pg_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = url.replace(f"/{name}", "/postgres", 1)
    engine = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg2://", 1), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not conn.scalar(sa.text("select 1 from pg_database where datname = :n"), {"n": name}):
                conn.execute(sa.text(f'create database "{name}"'))
    finally:
        engine.dispose()


def _migrate(url: str, tmp_path) -> None:
    """Build the schema with the real migrations (exercising them), from scratch."""
    import flask_migrate

    from core.db import Base
    from web import create_app

    app = create_app(settings_for(url, tmp_path))
    with app.app_context():
        from web.extensions import db

        if url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(sa.text("drop schema public cascade; create schema public"))
        flask_migrate.upgrade()
        db.engine.dispose()
    assert Base.metadata.tables


@pytest.fixture(scope="session", params=_db_params())
def database_url(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"db-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp}/chatsource-test.db"
    else:
        from core.settings import normalise_database_url

        url = normalise_database_url(PG_URL)
        try:
            _ensure_pg_database(url)
        except Exception as exc:  # pragma: no cover - depends on the machine
            unavailable("PostgreSQL", exc)
    _migrate(url, tmp)
    return url


def _truncate(url: str) -> None:
    from core.db import Base

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
            if url.startswith("postgresql"):
                conn.execute(sa.text("truncate " + ", ".join(tables) + " restart identity cascade"))
            else:
                for table in tables:
                    conn.execute(sa.text(f"delete from {table}"))
    finally:
        engine.dispose()


@pytest.fixture
def db_url(database_url):
    _truncate(database_url)
    yield database_url


@pytest.fixture
def fake_redis():
    import fakeredis

    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    yield client
    client.close()


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
    return _redis_params()


@pytest.fixture(params=_redis_params())
def redis_clients(request):
    clients = RedisClients(request.param)
    yield clients
    clients.close()


@pytest.fixture
def any_redis(redis_clients):
    """One client of fakeredis, and of the real Redis server when configured."""
    return redis_clients()


class LiveServer:
    """Our app served on 127.0.0.1 in a thread, so the sandbox can post webhooks and redirect to it."""

    def __init__(self):
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *a, **k):
                pass

        self.app = None
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _dispatch(self, environ, start_response):
        return self.app(environ, start_response)

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def live():
    server = LiveServer()
    yield server
    server.stop()


def make_app(db_url, tmp_path, *, redis_client=None, public_url="http://127.0.0.1:5000", **overrides):
    from web import create_app

    settings = settings_for(db_url, tmp_path, public_url=public_url, **overrides)
    return create_app(settings, redis_client=redis_client)


def dispose(app):
    from web.extensions import db

    worker = app.extensions.get("chatsource.embedded_worker")
    if worker is not None:
        worker.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["chatsource.services"].session_factory.kw["bind"].dispose()


@pytest.fixture
def app(db_url, tmp_path, live):
    app = make_app(db_url, tmp_path, public_url=live.url)
    live.app = app
    yield app
    dispose(app)


@pytest.fixture
def services(app):
    return app.extensions["chatsource.services"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def account_id(app):
    from core.accounts import ensure_first_account

    with app.extensions["chatsource.services"].session_factory() as session:
        account = ensure_first_account(session)
        session.commit()
        return account.id


def api_headers_for(app, account_id, name="test") -> dict:
    from core.accounts import create_api_token

    with app.extensions["chatsource.services"].session_factory() as session:
        _, token = create_api_token(session, account_id, name)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(app, account_id):
    return api_headers_for(app, account_id)


@pytest.fixture
def amo(live):
    from sandbox.server import SandboxServer

    server = SandboxServer(auto_approve=True, client_id=TEST_CLIENT_ID, client_secret=TEST_CLIENT_SECRET,
                           redirect_uri=f"{live.url}/oauth/amocrm/callback")
    server.start()
    yield server
    server.stop()


def drain(app, timeout_s: float = 30.0) -> None:
    """Run a Dramatiq worker on the app's broker until the talk queues are empty."""
    import dramatiq

    broker = app.extensions["chatsource.broker"]
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        deadline = time.monotonic() + timeout_s
        for queue in ("talks", "maintenance"):
            if queue in broker.get_declared_queues():
                broker.join(queue, timeout=int(max(deadline - time.monotonic(), 1) * 1000))
        worker.join()
    finally:
        worker.stop()
