"""HTTP for tests: loopback only, never through a proxy the machine's environment names."""
from __future__ import annotations

import requests


def loopback_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # ignore HTTP(S)_PROXY, NO_PROXY and netrc
    return session


_shared = loopback_session()


def get(url: str, **kwargs) -> requests.Response:
    return _shared.get(url, **kwargs)


def post(url: str, **kwargs) -> requests.Response:
    return _shared.post(url, **kwargs)
