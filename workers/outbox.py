"""The one way anything is enqueued: by actor NAME, buffered, sent after the work that made it real.

A web request or a worker job opens an outbox (web/outbox.py's request hooks; `OutboxMiddleware` in
workers/broker.py). Code that has committed a row calls `enqueue(actor_name, *ids)`; the outbox
sends when the request produced its response or the job returned, and drops what it holds when the
request or job failed (the rows it named are still in the database: the sweeper sends them again).
Outside a request or job — the sweeper's thread, the CLI, a test — there is no outbox and `enqueue`
sends at once, to the process's broker.

Messages are built by name (`dramatiq.Message`), so nothing here imports the actors and a web
process in the Redis shape declares none (polar's server/polar/worker/_enqueue.py does the same:
a per-context job list flushed after the session commits). A broker that is down loses nothing:
the committed row is the source of truth and the sweeper finds it.
"""
from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field

import dramatiq

log = logging.getLogger(__name__)

TALK_QUEUE = "talks"
MAINTENANCE_QUEUE = "maintenance"
QUEUES = (TALK_QUEUE, MAINTENANCE_QUEUE)

# Actor names are explicit so a rename never orphans queued messages; each one's queue.
PROCESS_TALK_EVENT = "chatsource.process_talk_event"
RUN_MAINTENANCE = "chatsource.run_maintenance"
RECONCILE_INTEGRATION = "chatsource.reconcile_integration"
RUN_BACKFILL = "chatsource.run_backfill"
BACKFILL_FAILED = "chatsource.backfill_failed"
RECOMPUTE_REPEAT_REQUESTS = "chatsource.recompute_repeat_requests"
REPEAT_RECOMPUTE_FAILED = "chatsource.repeat_recompute_failed"
ACTOR_QUEUES = {
    PROCESS_TALK_EVENT: TALK_QUEUE,
    RUN_MAINTENANCE: MAINTENANCE_QUEUE,
    RECONCILE_INTEGRATION: MAINTENANCE_QUEUE,
    RUN_BACKFILL: MAINTENANCE_QUEUE,
    BACKFILL_FAILED: MAINTENANCE_QUEUE,
    RECOMPUTE_REPEAT_REQUESTS: MAINTENANCE_QUEUE,
    REPEAT_RECOMPUTE_FAILED: MAINTENANCE_QUEUE,
}


@dataclass(frozen=True)
class Job:
    actor_name: str
    args: tuple
    delay_ms: int | None = None


@dataclass
class Outbox:
    """What one request or job asked to send, in order."""

    broker: dramatiq.Broker
    jobs: list[Job] = field(default_factory=list)

    def flush(self) -> int:
        """Send everything held; returns how many went. Stops at the first failure (a broker that is
        down fails the rest the same way; the sweeper sends them)."""
        jobs, self.jobs = self.jobs, []
        sent = 0
        for job in jobs:
            if not send(job, self.broker):
                break
            sent += 1
        return sent

    def discard(self) -> None:
        if self.jobs:
            log.warning("dropped %s unsent messages of a failed request or job; the sweeper sends them",
                        len(self.jobs))
        self.jobs = []


_current: contextvars.ContextVar[Outbox | None] = contextvars.ContextVar("chatsource.outbox", default=None)


def open_outbox(broker: dramatiq.Broker) -> contextvars.Token:
    """Start buffering for this request or job; pass the token to `close_outbox`."""
    return _current.set(Outbox(broker))


def close_outbox(token: contextvars.Token, *, send_jobs: bool) -> int:
    """End this request's or job's outbox: send what it holds (success) or drop it (failure)."""
    outbox = _current.get()
    _current.reset(token)
    if outbox is None:
        return 0
    if send_jobs:
        return outbox.flush()
    outbox.discard()
    return 0


def enqueue(actor_name: str, *args, delay_ms: int | None = None) -> bool:
    """Ask for `actor_name(*args)`: buffered in the open outbox, or sent now when there is none.
    Returns False only when an immediate send failed."""
    if actor_name not in ACTOR_QUEUES:
        raise ValueError(f"unknown actor {actor_name!r}")
    job = Job(actor_name, args, delay_ms)
    outbox = _current.get()
    if outbox is not None:
        outbox.jobs.append(job)
        return True
    return send(job, dramatiq.get_broker())


def send(job: Job, broker: dramatiq.Broker) -> bool:
    message = dramatiq.Message(queue_name=ACTOR_QUEUES[job.actor_name], actor_name=job.actor_name,
                               args=job.args, kwargs={}, options={})
    try:
        broker.enqueue(message, delay=job.delay_ms)
        return True
    except Exception:  # the broker is down: the committed row is the source of truth
        log.warning("could not enqueue %s%s; the sweeper will pick it up", job.actor_name, job.args, exc_info=True)
        return False


def declare_queues(broker: dramatiq.Broker) -> None:
    """A broker that only sends (the web in the Redis shape) declares our queues, not the actors."""
    for queue in QUEUES:
        broker.declare_queue(queue)


# --- what the code enqueues -----------------------------------------------------------------------

def enqueue_talk_events(event_ids) -> int:
    """Inbox rows to process (the worker that takes one drains its integration's backlog)."""
    queued = 0
    for event_id in event_ids:
        if not enqueue(PROCESS_TALK_EVENT, event_id):
            break
        queued += 1
    return queued


def enqueue_talk_event_retry(event_id: int, delay_seconds: float) -> bool:
    """The re-send our schedule owns: `next_attempt_at` in the database, this delayed message to match."""
    return enqueue(PROCESS_TALK_EVENT, event_id, delay_ms=max(int(delay_seconds * 1000), 1))


def enqueue_reconcile(integration_id: int) -> bool:
    """A reconnect, a webhook registered again, the sweeper's interval: read amoCRM's event log."""
    return enqueue(RECONCILE_INTEGRATION, integration_id)


def enqueue_backfill(run_id: int) -> bool:
    return enqueue(RUN_BACKFILL, run_id)


def enqueue_repeat_recompute(run_id: int) -> bool:
    """The account's repeat window changed: recompute the repeat flags in the background."""
    return enqueue(RECOMPUTE_REPEAT_REQUESTS, run_id)


def enqueue_maintenance() -> bool:
    return enqueue(RUN_MAINTENANCE)
