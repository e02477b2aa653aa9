"""What the domain needs from the outside world, bundled once per process.

`web/` and `workers/` build one `Services` at start (tests build their own with fakeredis or a real
Redis); core functions take it alongside a SQLAlchemy session and ids. With a Redis client the rate
limiter and the locks are shared by every process; without one (the embedded single-process mode)
they are in-process equivalents with the same behaviour.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import requests
from sqlalchemy.orm import Session, sessionmaker

from core.platform.crypto import SecretBox
from core.platform.locks import LocalLocks, LockProvider, RedisLocks
from core.platform.ratelimit import (
    LocalQuotas,
    LocalSlidingWindowLimiter,
    RateLimiter,
    RedisQuotas,
    RedisSlidingWindowLimiter,
)
from core.platform.settings import Settings


@dataclass
class Services:
    settings: Settings
    secrets: SecretBox
    session_factory: sessionmaker[Session]
    limiter: RateLimiter
    locks: LockProvider
    http: requests.Session = field(default_factory=requests.Session)
    redis: object | None = None
    sleep: Callable[[float], None] = time.sleep
    # Per-IP and per-site quotas of the public endpoints (tracking, sign-in): see core.platform.ratelimit.
    quotas: RedisQuotas | LocalQuotas = field(default_factory=LocalQuotas)

    @property
    def redirect_uri(self) -> str:
        return self.settings.public("/oauth/amocrm/callback")

    def webhook_url(self, webhook_token: str) -> str:
        """With a trailing slash: Kommo's webhook form refuses a url without one ("Invalid URL"),
        amoCRM's accepts both, and the endpoint answers both forms (seen on live accounts)."""
        return self.settings.public(f"/webhooks/amocrm/{webhook_token}/")


def build_services(settings: Settings, session_factory: sessionmaker[Session], redis_client=None) -> Services:
    # A slot is held while its call is in flight, at most the connect + read timeouts of one call.
    hold_ms = int(settings.amocrm_timeout_seconds * 2000)
    if redis_client is not None:
        limiter: RateLimiter = RedisSlidingWindowLimiter(
            redis_client, settings.amocrm_rate_limit, settings.amocrm_rate_window_ms, hold_ms=hold_ms
        )
        locks: LockProvider = RedisLocks(redis_client)
        quotas: RedisQuotas | LocalQuotas = RedisQuotas(redis_client)
    else:
        limiter = LocalSlidingWindowLimiter(settings.amocrm_rate_limit, settings.amocrm_rate_window_ms, hold_ms=hold_ms)
        locks = LocalLocks()
        quotas = LocalQuotas()
    http = requests.Session()
    http.headers["User-Agent"] = "Chatsource/1.0 (+amoCRM integration)"
    return Services(
        settings=settings,
        secrets=SecretBox(settings.token_encryption_keys),
        session_factory=session_factory,
        limiter=limiter,
        locks=locks,
        http=http,
        redis=redis_client,
        quotas=quotas,
    )
