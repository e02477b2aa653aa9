"""The one way our processes open Redis: `rediss://` verifies the server's certificate.

redis-py verifies by default, but the broker used to turn it off for every `rediss://` url (Heroku
Redis presents a self-signed chain), which lets anyone on the path read and forge our queue. Now the
check is off only when the operator sets REDIS_SSL_CERT_REQS=none; the web app, the worker's
services and the Dramatiq broker all build their connections from here."""
from __future__ import annotations

import os

CERT_REQS_ENV = "REDIS_SSL_CERT_REQS"


def ssl_options(url: str | None, cert_reqs: str | None = None) -> dict:
    """Connection keyword arguments for `url`; empty for plain redis:// and unix:// urls."""
    if not url or not url.startswith("rediss://"):
        return {}
    cert_reqs = (cert_reqs or os.environ.get(CERT_REQS_ENV) or "required").strip().lower()
    return {"ssl_cert_reqs": "none" if cert_reqs == "none" else "required"}


def redis_client(url: str, cert_reqs: str | None = None, **options):
    import redis

    return redis.Redis.from_url(url, **ssl_options(url, cert_reqs), **options)
