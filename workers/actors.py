"""Dramatiq actors: thin adapters that call core/ with the process's services.

Actor and queue names are explicit so a rename never orphans queued messages. Messages carry ids only.
"""
from __future__ import annotations

import logging

import dramatiq

import workers.broker  # noqa: F401  (sets the broker before the actors are declared)
from core import talk_processing
from workers import runtime

log = logging.getLogger(__name__)
TALK_QUEUE = "talks"
MAINTENANCE_QUEUE = "maintenance"


@dramatiq.actor(actor_name="chatsource.talk_event_failed", queue_name=TALK_QUEUE, max_retries=3)
def talk_event_failed(message_data, retry_info):
    """Retries ran out: the event stays visible as failed, with its last error, for a replay."""
    event_id = message_data["args"][0]
    services = runtime.services()
    with services.session_factory() as session:
        talk_processing.mark_failed(session, event_id, "")  # keeps the last error the attempt recorded
        session.commit()
    log.error("talk event %s failed after %s retries", event_id, retry_info.get("retries"))


@dramatiq.actor(
    actor_name="chatsource.process_talk_event",
    queue_name=TALK_QUEUE,
    max_retries=talk_processing.MAX_ATTEMPTS,
    min_backoff=10_000,
    max_backoff=600_000,
    time_limit=120_000,
    on_retry_exhausted="chatsource.talk_event_failed",
)
def process_talk_event(event_id: int):
    services = runtime.services()
    outcome = talk_processing.process_event(services, event_id)
    # "busy": another worker holds this integration's batch lock and takes this event too.
    enqueue_talk_events(outcome.event_ids_to_enqueue)
    if outcome.status == "retry":
        raise dramatiq.Retry(f"amoCRM not available: {outcome.error}", delay=int((outcome.retry_in_seconds or 10) * 1000))
    log.info("talk event %s: %s (%s recorded)", event_id, outcome.status, outcome.processed)


@dramatiq.actor(actor_name="chatsource.sweep_inbox", queue_name=MAINTENANCE_QUEUE, max_retries=0, time_limit=60_000)
def sweep_inbox():
    services = runtime.services()
    with services.session_factory() as session:
        ids = talk_processing.sweep_stuck(session)
        session.commit()
    enqueue_talk_events(ids)
    if ids:
        log.warning("sweeper re-enqueued %s inbox events", len(ids))


def enqueue_talk_events(event_ids) -> int:
    """Send after commit. A broker that is down loses nothing: the sweeper finds the rows later."""
    sent = 0
    for event_id in event_ids:
        try:
            process_talk_event.send(event_id)
            sent += 1
        except Exception:  # the broker is down: the committed row is the source of truth
            log.warning("could not enqueue talk event %s; the sweeper will pick it up", event_id, exc_info=True)
            break
    return sent


@dramatiq.actor(actor_name="chatsource.run_maintenance", queue_name=MAINTENANCE_QUEUE, max_retries=0, time_limit=600_000)
def run_maintenance():
    """Every 30 minutes (the sweeper sends it): refresh idle tokens ahead of amoCRM's three-month limit
    and read every webhook back from amoCRM (disabled or deleted there shows on the dashboard)."""
    from core import maintenance

    summary = maintenance.run_periodic(runtime.services())
    log.info("maintenance: %s", summary)


@dramatiq.actor(actor_name="chatsource.reconcile_integration", queue_name=MAINTENANCE_QUEUE, max_retries=0,
                time_limit=30 * 60_000)
def reconcile_integration(integration_id: int):
    """Read amoCRM's event log for talks closed since the last run that no webhook reported, and
    queue them for recording (core.reconciliation). A failed run keeps its cursor: the next retries."""
    from core import reconciliation

    outcome = reconciliation.reconcile_integration(runtime.services(), integration_id)
    enqueue_talk_events(outcome.to_enqueue[:1])  # the worker that takes it drains the integration's backlog
    log.info("reconciliation of integration %s: %s %s", integration_id, outcome.result, outcome.counts.to_dict())


@dramatiq.actor(actor_name="chatsource.backfill_failed", queue_name=MAINTENANCE_QUEUE, max_retries=0)
def backfill_failed(message_data, retry_info):
    from core import reconciliation

    with runtime.services().session_factory() as session:
        reconciliation.fail_backfill(session, message_data["args"][0], "the worker gave up on this backfill; start it again")
        session.commit()


@dramatiq.actor(actor_name="chatsource.run_backfill", queue_name=MAINTENANCE_QUEUE, max_retries=20,
                min_backoff=15_000, max_backoff=120_000, time_limit=60 * 60_000,
                on_retry_exhausted="chatsource.backfill_failed")
def run_backfill(run_id: int):
    """A backfill of a chosen period (admin or API). While the integration's periodic reconciliation
    (or another backfill) runs, it waits and tries again."""
    from core import reconciliation

    outcome = reconciliation.run_backfill(runtime.services(), run_id)
    enqueue_talk_events(outcome.to_enqueue[:1])
    if outcome.result == "busy":
        raise dramatiq.Retry("another reconciliation of this integration is running", delay=15_000)
    log.info("backfill %s: %s", run_id, outcome.result)


def enqueue_reconcile(integration_id: int) -> bool:
    """Send after commit (a reconnect, a webhook registered again). A broker that is down loses
    nothing: the sweeper sends the periodic run anyway."""
    try:
        reconcile_integration.send(integration_id)
        return True
    except Exception:
        log.warning("could not enqueue the reconciliation of integration %s", integration_id, exc_info=True)
        return False


def enqueue_backfill(run_id: int) -> bool:
    try:
        run_backfill.send(run_id)
        return True
    except Exception:
        log.warning("could not enqueue backfill %s", run_id, exc_info=True)
        return False


@dramatiq.actor(actor_name="chatsource.repeat_recompute_failed", queue_name=MAINTENANCE_QUEUE, max_retries=0)
def repeat_recompute_failed(message_data, retry_info):
    from core import repeat_requests

    with runtime.services().session_factory() as session:
        repeat_requests.fail_recompute(session, message_data["args"][0], "the worker gave up; save the repeat window again")
        session.commit()


@dramatiq.actor(actor_name="chatsource.recompute_repeat_requests", queue_name=MAINTENANCE_QUEUE, max_retries=5,
                min_backoff=5_000, max_backoff=60_000, time_limit=60 * 60_000,
                on_retry_exhausted="chatsource.repeat_recompute_failed")
def recompute_repeat_requests(run_id: int):
    """The account's repeat window changed: recompute every contact's repeat flags (a retry goes on
    from the last contact finished; the result does not depend on how often it runs)."""
    from core import repeat_requests

    outcome = repeat_requests.run_recompute(runtime.services().session_factory, run_id)
    log.info("repeat recompute %s: %s (%s changed)", run_id, outcome.result, outcome.changed)


def enqueue_repeat_recompute(run_id: int) -> bool:
    try:
        recompute_repeat_requests.send(run_id)
        return True
    except Exception:
        log.warning("could not enqueue repeat recompute %s", run_id, exc_info=True)
        return False


ALL = (talk_event_failed, process_talk_event, sweep_inbox, run_maintenance, reconcile_integration, backfill_failed,
       run_backfill, repeat_recompute_failed, recompute_repeat_requests)
