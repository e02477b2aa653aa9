"""Fixtures for the amoCRM sandbox tests (all servers on 127.0.0.1, random ports).

No ``__init__.py`` here on purpose: with one, pytest would import these tests
as a package named ``sandbox`` and shadow the real one.  Helpers live in
``tests/helpers/sandbox_helpers.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.server import SandboxServer
from tests.helpers import http as loopback  # loopback only: never through a proxy
from tests.helpers.sandbox_helpers import CLIENT, Api, Receiver, authorize


@pytest.fixture
def http() -> Any:
    s = loopback.loopback_session()
    s.trust_env = False
    yield s
    s.close()


@pytest.fixture
def amo() -> Any:
    """A sandbox with auto-approve and the rate limit OFF (functional tests)."""
    with SandboxServer(auto_approve=True, rate_limit=0, client_name="Chatsource", **CLIENT) as server:
        yield server


@pytest.fixture
def amo_strict() -> Any:
    """A sandbox with amo's default limits (7 requests per sliding second)."""
    with SandboxServer(auto_approve=True, client_name="Chatsource", **CLIENT) as server:
        yield server


@pytest.fixture
def api(amo: SandboxServer, http: requests.Session) -> Api:
    return Api(amo, http, authorize(amo, http))


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.stop()
