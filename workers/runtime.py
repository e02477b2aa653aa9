"""The process's `Services` for actors. Worker processes build it at boot (an engine per process,
never inherited across a fork); the embedded mode hands in the web app's."""
from __future__ import annotations

import logging

from core.platform.services import Services

log = logging.getLogger(__name__)
_services: Services | None = None


def set_services(services: Services | None) -> None:
    global _services
    _services = services


def services() -> Services:
    if _services is None:
        _services_from_env()
    return _services


def _services_from_env() -> None:
    from core.platform.db import create_engine, session_factory
    from core.platform.redis_connect import redis_client
    from core.platform.services import build_services
    from core.platform.settings import Settings

    settings = Settings.from_env()
    engine = create_engine(settings.database_url)
    client = redis_client(settings.redis_url, settings.redis_ssl_cert_reqs, socket_timeout=10, socket_connect_timeout=5,
                          health_check_interval=30) if settings.redis_url else None
    set_services(build_services(settings, session_factory(engine), client))
    log.info("worker services ready (database %s, redis %s)", engine.url.get_backend_name(), bool(client))


def dispose() -> None:
    """A worker shut down: close its database connections (the engine stays usable)."""
    if _services is not None:
        _services.session_factory.kw["bind"].dispose()
