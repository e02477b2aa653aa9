"""tests/unit holds tests without servers (tests/README.md): in-process code, SQLite in a temp file,
fakeredis, `responses` mocks. A test here that asks for a server fixture or opens a network socket fails;
its place is tests/core, tests/web, tests/integration or another server suite."""
from __future__ import annotations

import socket

import pytest

SERVER_FIXTURES = {"database_url", "db_url", "app", "live", "amo", "redis_clients", "any_redis"}
NETWORK_FAMILIES = {socket.AF_INET, socket.AF_INET6}


def _refuse(what: str):
    def refused(sock, address, *args, **kwargs):
        if sock.family in NETWORK_FAMILIES:
            pytest.fail(f"a unit test may not {what} a network socket ({address!r}): move it to a server suite",
                        pytrace=False)
        return original[what](sock, address, *args, **kwargs)

    return refused


original = {"connect": socket.socket.connect, "connect_ex": socket.socket.connect_ex, "bind": socket.socket.bind}


@pytest.fixture(autouse=True)
def _no_servers(request, monkeypatch):
    asked = SERVER_FIXTURES & set(request.fixturenames)
    if asked:
        pytest.fail(f"a unit test may not use the server fixtures {sorted(asked)}: move it to a server suite",
                    pytrace=False)
    for what in original:
        monkeypatch.setattr(socket.socket, what, _refuse(what))
