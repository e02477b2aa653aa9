"""The embedded mode of local runs (no REDIS_URL): a StubBroker and a Dramatiq worker thread inside the
web process. Durable through the inbox: a restart loses in-memory messages, never events, because
the sweeper re-enqueues every row still waiting."""
from __future__ import annotations

import logging

import dramatiq

from workers import sweeper

log = logging.getLogger(__name__)


class EmbeddedWorker:
    def __init__(self, broker: dramatiq.Broker, threads: int = 2):
        self.broker = broker
        self.worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)

    def start(self) -> "EmbeddedWorker":
        self.broker.emit_after("process_boot")
        self.worker.start()
        log.info("embedded worker started (in-process broker)")
        return self

    def stop(self) -> None:
        sweeper.stop_sweeper_threads()
        self.worker.stop(timeout=5000)
