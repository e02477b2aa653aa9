"""The Dramatiq broker: the one recipe (`make_broker`, middleware listed explicitly in polar's
`_broker.py` style) and the process's broker (`build`).

Each process builds its broker once: the Procfile's worker through `workers.broker:broker`, from
REDIS_URL; the web app in `web.create_app`, from its services' Redis client (or, in the embedded
shape, a StubBroker its own worker thread drives). Sending needs no actor (workers/outbox.py sends
by name); the actors are declared on the broker a worker consumes.
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

from workers import actors, outbox, runtime, sweeper

log = logging.getLogger(__name__)
NAMESPACE = "chatsource"
# How long an idle consumer sleeps at most between two looks at its Redis queue. Dramatiq's default
# (1,000 ms, backing off from 5 ms with jitter) put ~0.3 s on average between a webhook's enqueue and
# the worker taking it at a few closes a second (bench.latency, docs/benchmarks.md); 100 ms costs an
# idle worker at most ten cheap Redis fetches a second per queue. `dramatiq_worker_timeout` (Dramatiq's
# own variable) still wins when set.
IDLE_POLL_MS = 100


class WorkerServices(dramatiq.Middleware):
    """Builds the process's engine and Redis client after fork; starts the inbox sweeper."""

    def before_worker_boot(self, broker, worker):
        if "dramatiq_worker_timeout" not in os.environ:
            worker.worker_timeout = IDLE_POLL_MS  # read when the consumers start, right after this hook
        runtime.services()

    def after_worker_boot(self, broker, worker):
        sweeper.start_sweeper_thread(runtime.services(), broker=broker)

    def after_worker_shutdown(self, broker, worker):
        sweeper.stop_sweeper_threads()  # the sweeper (and its maintenance tick) lives only as long as its worker
        runtime.dispose()


class OutboxMiddleware(dramatiq.Middleware):
    """Each job's outbox (workers/outbox.py): opened before the actor runs, sent when it returned,
    dropped when it raised. Runs in the worker thread that runs the actor, so contexts never mix.
    The context token is kept here by message id, never in the message: a message retried or
    dead-lettered is encoded again, options and all."""

    def __init__(self):
        self._tokens: dict[str, object] = {}

    def before_process_message(self, broker, message):
        self._tokens[message.message_id] = outbox.open_outbox(broker)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        token = self._tokens.pop(message.message_id, None)
        if token is not None:
            outbox.close_outbox(token, send_jobs=exception is None)

    def after_skip_message(self, broker, message):
        token = self._tokens.pop(message.message_id, None)
        if token is not None:
            outbox.close_outbox(token, send_jobs=False)


def middleware(with_worker_services: bool) -> list:
    stack = [
        AgeLimit(),
        TimeLimit(time_limit=120_000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=0, min_backoff=10_000, max_backoff=600_000),  # an actor that wants retries says so
        CurrentMessage(),
        OutboxMiddleware(),
    ]
    if with_worker_services:
        stack.append(WorkerServices())
    return stack


def make_broker(redis_url: str | None = None, redis_client=None, with_worker_services: bool = False) -> dramatiq.Broker:
    if redis_client is not None or redis_url:
        from dramatiq.brokers.redis import RedisBroker

        from core.platform.redis_connect import redis_client as connect_redis

        # Our own client, not `url=`: RedisBroker builds its pool from the bare url and drops any
        # connection option beside it, so TLS settings must travel in the client.
        client = redis_client if redis_client is not None else connect_redis(redis_url)
        broker = RedisBroker(namespace=NAMESPACE, middleware=middleware(with_worker_services), dead_message_ttl=3_600_000,
                             client=client)
    else:
        broker = StubBroker(middleware=middleware(with_worker_services))
    outbox.declare_queues(broker)
    return broker


def build(redis_url: str | None = None, redis_client=None) -> dramatiq.Broker:
    """The process's broker, with our actors declared on it, made dramatiq's global (so a send
    outside any request or job reaches it). Called once per process: by the worker CLI below, by
    `web.create_app` for the web process (its embedded worker, or tests, consume it)."""
    broker = make_broker(redis_url, redis_client, with_worker_services=True)
    actors.declare(broker)
    dramatiq.set_broker(broker)
    return broker


def __getattr__(name: str):
    """`broker`, built on first use: the Procfile's worker names it (`dramatiq workers.broker:broker
    workers.actors`), from REDIS_URL. Nothing else touches it, so importing this module builds nothing."""
    global _process_broker
    if name != "broker":
        raise AttributeError(name)
    if _process_broker is None:
        _process_broker = build((os.environ.get("REDIS_URL") or "").strip() or None)
    return _process_broker


_process_broker: dramatiq.Broker | None = None
