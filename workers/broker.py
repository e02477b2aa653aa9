"""The Dramatiq broker, with its middleware listed explicitly (polar's `_broker.py` style).

`dramatiq workers.broker workers.actors` (the Procfile's worker) imports this module first: with
REDIS_URL set it installs a RedisBroker; without it, the embedded StubBroker that the web process
drives with its own worker thread. `set_broker` runs before any actor module is imported.
"""
from __future__ import annotations

import logging
import os

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

log = logging.getLogger(__name__)
NAMESPACE = "chatsource"


class WorkerServices(dramatiq.Middleware):
    """Builds the process's engine and Redis client after fork; starts the inbox sweeper."""

    def before_worker_boot(self, broker, worker):
        from workers import runtime

        runtime.services()

    def after_worker_boot(self, broker, worker):
        from workers.sweeper import start_sweeper_thread
        from workers import runtime

        start_sweeper_thread(runtime.services())

    def after_worker_shutdown(self, broker, worker):
        from workers import runtime
        from workers.sweeper import stop_sweeper_threads

        stop_sweeper_threads()  # the sweeper (and its maintenance tick) lives only as long as its worker
        services = runtime._services
        if services is not None:
            services.session_factory.kw["bind"].dispose()


def middleware(with_worker_services: bool) -> list:
    stack = [
        AgeLimit(),
        TimeLimit(time_limit=120_000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=8, min_backoff=10_000, max_backoff=600_000),
        CurrentMessage(),
    ]
    if with_worker_services:
        stack.append(WorkerServices())
    return stack


def make_broker(redis_url: str | None = None, redis_client=None, with_worker_services: bool = False) -> dramatiq.Broker:
    if redis_client is not None or redis_url:
        from dramatiq.brokers.redis import RedisBroker

        from core.redis_connect import redis_client as connect_redis

        # Our own client, not `url=`: RedisBroker builds its pool from the bare url and drops any
        # connection option beside it, so TLS settings must travel in the client.
        client = redis_client if redis_client is not None else connect_redis(redis_url)
        return RedisBroker(namespace=NAMESPACE, middleware=middleware(with_worker_services), dead_message_ttl=3_600_000,
                           client=client)
    return StubBroker(middleware=middleware(with_worker_services))


def install(broker: dramatiq.Broker) -> dramatiq.Broker:
    """Make `broker` the global one and (re)declare our actors on it."""
    dramatiq.set_broker(broker)
    from workers import actors

    for actor in actors.ALL:
        actor.broker = broker
        broker.declare_actor(actor)
    return broker


def _install_from_env() -> dramatiq.Broker:
    url = (os.environ.get("REDIS_URL") or "").strip() or None
    broker = make_broker(url, with_worker_services=True)
    dramatiq.set_broker(broker)
    return broker


# Imported by the dramatiq CLI: install the process broker before workers.actors is imported.
broker = _install_from_env()
