"""Dramatiq actors: thin adapters that call core/ with the process's services.

Actor and queue names live in workers/outbox.py (messages are sent by name). Messages carry ids only.
The functions are plain; `declare(broker)` makes them actors of the broker a process builds
(workers/broker.py `build`), so importing this module builds and binds nothing.
What an actor asks to send next goes through the job's outbox (`OutboxMiddleware`): sent when the
actor returns, dropped when it raises.

Retries of inbox events have one owner, the database: `attempts` and `next_attempt_at` set by
core.inbox.talk_processing, and a delayed re-send of the same message by name to match. Dramatiq's own
retries are off for these actors (`max_retries=0`); a crash nobody planned leaves the row received
or processing, and the sweeper sends it again.
"""
from __future__ import annotations

import logging

import dramatiq

from core.inbox import reconciliation, repeat_requests, talk_processing
from core.integrations import maintenance
from workers import outbox, runtime
from workers.outbox import enqueue_talk_events  # noqa: F401  (what tests and the sweeper's callers send)

log = logging.getLogger(__name__)


def process_talk_event(event_id: int):
    services = runtime.services()
    outcome = talk_processing.process_event(services, event_id)
    # "busy": another worker holds this integration's batch lock and takes this event too.
    outbox.enqueue_talk_events(outcome.to_enqueue)
    if outcome.status == "retry":
        # The database holds the schedule (next_attempt_at); this message comes back when it is due.
        outbox.enqueue_talk_event_retry(event_id, outcome.retry_in_seconds or talk_processing.RETRY_BASE_SECONDS)
        log.warning("talk event %s: amoCRM not available (%s); again in %.0f s", event_id, outcome.error,
                    outcome.retry_in_seconds or talk_processing.RETRY_BASE_SECONDS)
        return
    log.info("talk event %s: %s (%s recorded)", event_id, outcome.status, outcome.processed)


def run_maintenance():
    """Every 30 minutes (the sweeper sends it): refresh idle tokens ahead of amoCRM's three-month limit
    and read every webhook back from amoCRM (disabled or deleted there shows on the dashboard)."""
    summary = maintenance.run_periodic(runtime.services())
    log.info("maintenance: %s", summary)


def reconcile_integration(integration_id: int):
    """Read amoCRM's event log for talks closed since the last run that no webhook reported, and
    queue them for recording (core.inbox.reconciliation). A failed run keeps its cursor: the next retries."""
    outcome = reconciliation.reconcile_integration(runtime.services(), integration_id)
    outbox.enqueue_talk_events(outcome.to_enqueue[:1])  # the worker that takes it drains the integration's backlog
    log.info("reconciliation of integration %s: %s %s", integration_id, outcome.result, outcome.counts.to_dict())


def backfill_failed(message_data, retry_info):
    with runtime.services().session_factory() as session:
        reconciliation.fail_backfill(session, message_data["args"][0], "the worker gave up on this backfill; start it again")
        session.commit()


def run_backfill(run_id: int):
    """A backfill of a chosen period (admin or API). While the integration's periodic reconciliation
    (or another backfill) runs, it waits and tries again: a backfill has no inbox row, so this wait
    is the one place Dramatiq's retries count (and `backfill_failed` marks the run when they run out)."""
    outcome = reconciliation.run_backfill(runtime.services(), run_id)
    outbox.enqueue_talk_events(outcome.to_enqueue[:1])
    if outcome.result == "busy":
        raise dramatiq.Retry("another reconciliation of this integration is running", delay=15_000)
    log.info("backfill %s: %s", run_id, outcome.result)


def repeat_recompute_failed(message_data, retry_info):
    with runtime.services().session_factory() as session:
        repeat_requests.fail_recompute(session, message_data["args"][0], "the worker gave up; save the repeat window again")
        session.commit()


def recompute_repeat_requests(run_id: int):
    """The account's repeat window changed: recompute every contact's repeat flags (a retry goes on
    from the last contact finished; the result does not depend on how often it runs). It has no inbox
    row to hold a schedule, so, like a backfill, Dramatiq's retries count here."""
    outcome = repeat_requests.run_recompute(runtime.services().session_factory, run_id)
    log.info("repeat recompute %s: %s (%s changed)", run_id, outcome.result, outcome.changed)


# Each actor's options: Dramatiq's retries stay off (max_retries=0) but for the jobs without an inbox row
# (a backfill's wait, a repeat recompute).
ACTORS = (
    (process_talk_event, outbox.PROCESS_TALK_EVENT, dict(max_retries=0, time_limit=120_000)),
    (run_maintenance, outbox.RUN_MAINTENANCE, dict(max_retries=0, time_limit=600_000)),
    (reconcile_integration, outbox.RECONCILE_INTEGRATION, dict(max_retries=0, time_limit=30 * 60_000)),
    (backfill_failed, outbox.BACKFILL_FAILED, dict(max_retries=0)),
    (run_backfill, outbox.RUN_BACKFILL, dict(max_retries=20, min_backoff=15_000, max_backoff=120_000,
                                             time_limit=60 * 60_000, on_retry_exhausted=outbox.BACKFILL_FAILED)),
    (repeat_recompute_failed, outbox.REPEAT_RECOMPUTE_FAILED, dict(max_retries=0)),
    (recompute_repeat_requests, outbox.RECOMPUTE_REPEAT_REQUESTS,
     dict(max_retries=5, min_backoff=5_000, max_backoff=60_000, time_limit=60 * 60_000,
          on_retry_exhausted=outbox.REPEAT_RECOMPUTE_FAILED)),
)


def declare(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor]:
    """Our actors on `broker` (its queues from workers/outbox.py); returns them by name."""
    return {
        name: dramatiq.actor(fn, broker=broker, actor_name=name, queue_name=outbox.ACTOR_QUEUES[name], **options)
        for fn, name, options in ACTORS
    }
