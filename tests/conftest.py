"""Shared fixtures (fixtures only: the code they share lives in tests/helpers/).

Database tests run on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set; Redis tests run
on fakeredis always and on the real server when TEST_REDIS_URL is set. With REQUIRE_SERVICES=1 (CI,
`.ci/run`) an unreachable PostgreSQL or Redis fails the run instead of skipping.
"""
from __future__ import annotations

import pytest

from tests.helpers import run_services
from tests.helpers.apps import api_headers_for, dispose, make_app
from tests.helpers.databases import ensure_pg_database, migrate, truncate
from tests.helpers.environment import (
    PG_URL,
    RUN_SERVICES,
    TEST_CLIENT_ID,
    TEST_CLIENT_SECRET,
    db_params,
    redis_params,
    unavailable,
)
from tests.helpers.live_server import LiveServer
from tests.helpers.redis_clients import RedisClients


def pytest_sessionfinish(session, exitstatus):
    run_services.release(RUN_SERVICES)


@pytest.fixture(scope="session", params=db_params())
def database_url(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"db-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp}/chatsource-test.db"
    else:
        from core.platform.settings import normalise_database_url

        url = normalise_database_url(PG_URL)
        try:
            ensure_pg_database(url)
        except Exception as exc:  # pragma: no cover - depends on the machine
            unavailable("PostgreSQL", exc)
    migrate(url, tmp)
    return url


@pytest.fixture
def db_url(database_url):
    truncate(database_url)
    yield database_url


@pytest.fixture
def fake_redis():
    import fakeredis

    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    yield client
    client.close()


@pytest.fixture(params=redis_params())
def redis_clients(request):
    clients = RedisClients(request.param)
    yield clients
    clients.close()


@pytest.fixture
def any_redis(redis_clients):
    """One client of fakeredis, and of the real Redis server when configured."""
    return redis_clients()


@pytest.fixture
def live():
    server = LiveServer()
    yield server
    server.stop()


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
    from core.access.accounts import ensure_first_account

    with app.extensions["chatsource.services"].session_factory() as session:
        account = ensure_first_account(session)
        session.commit()
        return account.id


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
