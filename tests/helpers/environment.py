"""This run's services and the settings every test app starts from.

Imported by tests/conftest.py before any test, so the proxy variables are gone and the run's own
PostgreSQL database / Redis db number are claimed (tests/helpers/run_services.py) once, here.
With REQUIRE_SERVICES=1 (CI, `.ci/run`) an unreachable PostgreSQL or Redis fails the run instead of skipping.
"""
from __future__ import annotations

import os

import pytest

from core.platform.settings import Settings
from tests.helpers import run_services

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
# Test traffic is loopback only: no proxy variable of the machine may route it (nor requests' netrc).
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "*"
RUN_SERVICES = run_services.claim(wanted_pg=REQUIRE, wanted_redis=REQUIRE)
PG_URL = RUN_SERVICES.pg_url
REDIS_URL = RUN_SERVICES.redis_url
TEST_CLIENT_ID = "chatsource-test"
TEST_CLIENT_SECRET = "chatsource-test-secret"


def db_params() -> list[str]:
    return ["sqlite"] + (["postgresql"] if PG_URL or REQUIRE else [])


def redis_params() -> list[str]:
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
