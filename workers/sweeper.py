"""A thread in each worker process (and in the embedded web worker) that beats the worker heartbeat
every few seconds (core/inbox/worker_health.py: /healthz knows a worker is consuming) and runs the inbox sweep every
30 s. A shared lock lets one process sweep per interval however many run. Every 30 minutes it also
sends `chatsource.run_maintenance` (tokens refreshed ahead of time, webhooks read back from amoCRM):
a Redis key with that expiry makes it once per interval across all processes and restarts. Likewise,
every RECONCILE_INTERVAL_SECONDS, one `chatsource.reconcile_integration` per connected, active
integration (amoCRM's event log read for closes no webhook reported; a key per integration)."""
from __future__ import annotations

import logging
import threading
import time

import dramatiq

from core.inbox import reconciliation, talk_processing, worker_health
from core.platform.services import Services
from workers import outbox

log = logging.getLogger(__name__)
SWEEP_INTERVAL_SECONDS = 30
MAINTENANCE_INTERVAL_SECONDS = 30 * 60
MAINTENANCE_KEY = "chatsource:maintenance:last-run"
RECONCILE_KEY = "chatsource:reconcile:{integration_id}:last-run"
# The embedded process's last run of each once-per-interval key (with Redis the key's expiry says it).
_last_local_runs: dict[str, float] = {}
_threads: list[tuple[threading.Thread, threading.Event]] = []


def sweep_once(services: Services) -> int:
    with services.locks.try_lock("inbox-sweeper", timeout_s=SWEEP_INTERVAL_SECONDS - 1) as acquired:
        if not acquired:
            return 0
        with services.session_factory() as session:
            ids = talk_processing.sweep_stuck(session)
            session.commit()
        if ids:
            log.warning("sweeper re-enqueued %s stuck inbox events", len(ids))
        return outbox.enqueue_talk_events(ids)


def once_per_interval(services: Services, key: str, interval: float) -> bool:
    """True for exactly one caller per interval and key: across processes through Redis (SET NX EX),
    within the single embedded process by a timestamp."""
    if services.redis is not None:
        return bool(services.redis.set(key, str(time.time()), nx=True, ex=max(int(interval), 1)))
    now = time.monotonic()
    last = _last_local_runs.get(key)
    if last is not None and now - last < interval:
        return False
    _last_local_runs[key] = now
    return True


def maintenance_due(services: Services, interval: float = MAINTENANCE_INTERVAL_SECONDS) -> bool:
    return once_per_interval(services, MAINTENANCE_KEY, interval)


def maintenance_tick(services: Services) -> bool:
    """Send the maintenance message when it is due; returns whether it was sent."""
    if not maintenance_due(services):
        return False
    outbox.enqueue_maintenance()
    return True


def reconcile_due(services: Services, integration_id: int, interval: float) -> bool:
    return once_per_interval(services, RECONCILE_KEY.format(integration_id=integration_id), interval)


def reconcile_tick(services: Services) -> list[int]:
    """Send the reconciliation of every integration that is due; returns their ids. Switched-off
    integrations only have their cursor kept at now (see `hold_switched_off_cursors`)."""
    with services.session_factory() as session:
        reconciliation.hold_switched_off_cursors(session)
        session.commit()
        integration_ids = reconciliation.due_integrations(session)
    sent = []
    for integration_id in integration_ids:
        if reconcile_due(services, integration_id, services.settings.reconcile_interval_seconds):
            if outbox.enqueue_reconcile(integration_id):
                sent.append(integration_id)
    return sent


def start_sweeper_thread(services: Services, interval: float = SWEEP_INTERVAL_SECONDS,
                         broker: dramatiq.Broker | None = None) -> threading.Event:
    """The thread's sends go to `broker` (its worker's), or to the process's when none is given."""
    stop = threading.Event()

    beat_every = min(interval, worker_health.HEARTBEAT_INTERVAL_SECONDS)

    def heartbeat():
        try:
            worker_health.beat(services.redis)
        except Exception:
            log.exception("could not write the worker heartbeat; trying again in %s s", beat_every)

    def loop():
        heartbeat()
        next_sweep = time.monotonic() + interval
        while not stop.wait(beat_every):
            heartbeat()
            if time.monotonic() < next_sweep:
                continue
            next_sweep = time.monotonic() + interval
            token = outbox.open_outbox(broker or dramatiq.get_broker())
            try:
                sweep_pass(services, interval)
            finally:
                outbox.close_outbox(token, send_jobs=True)  # each pass's own rows are committed by then

    thread = threading.Thread(target=loop, name="chatsource-sweeper", daemon=True)
    _threads.append((thread, stop))
    thread.start()
    return stop


def sweep_pass(services: Services, interval: float) -> None:
    """One pass of the thread: sweep, then the maintenance and reconciliation messages that are due.
    A failing step is logged and does not hold back the others."""
    for step, what in ((sweep_once, "inbox sweep"), (maintenance_tick, "maintenance run"),
                       (reconcile_tick, "reconciliation runs")):
        try:
            step(services)
        except Exception:
            log.exception("%s failed; trying again in %s s", what, interval)


def stop_sweeper_threads() -> None:
    while _threads:
        thread, stop = _threads.pop()
        stop.set()
        thread.join(timeout=5)
    worker_health.forget_local_beat()
