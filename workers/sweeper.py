"""A thread in each worker process (and in the embedded web worker) that beats the worker heartbeat
every few seconds (core/worker_health.py: /healthz knows a worker is consuming) and runs the inbox sweep every
30 s. A shared lock lets one process sweep per interval however many run. Every 30 minutes it also
sends `chatsource.run_maintenance` (tokens refreshed ahead of time, webhooks read back from amoCRM):
a Redis key with that expiry makes it once per interval across all processes and restarts. Likewise,
every RECONCILE_INTERVAL_SECONDS, one `chatsource.reconcile_integration` per connected, active
integration (amoCRM's event log read for closes no webhook reported; a key per integration)."""
from __future__ import annotations

import logging
import threading
import time

from core import talk_processing, worker_health
from core.services import Services

log = logging.getLogger(__name__)
SWEEP_INTERVAL_SECONDS = 30
MAINTENANCE_INTERVAL_SECONDS = 30 * 60
MAINTENANCE_KEY = "chatsource:maintenance:last-run"
RECONCILE_KEY = "chatsource:reconcile:{integration_id}:last-run"
_last_local_maintenance: float | None = None
_last_local_reconcile: dict[int, float] = {}
_threads: list[tuple[threading.Thread, threading.Event]] = []


def sweep_once(services: Services) -> int:
    from workers.actors import enqueue_talk_events

    with services.locks.try_lock("inbox-sweeper", timeout_s=SWEEP_INTERVAL_SECONDS - 1) as acquired:
        if not acquired:
            return 0
        with services.session_factory() as session:
            ids = talk_processing.sweep_stuck(session)
            session.commit()
        if ids:
            log.warning("sweeper re-enqueued %s stuck inbox events", len(ids))
        return enqueue_talk_events(ids)


def maintenance_due(services: Services, interval: float = MAINTENANCE_INTERVAL_SECONDS) -> bool:
    """True for exactly one caller per interval: across processes through Redis (SET NX EX), within
    the single embedded process by a timestamp."""
    global _last_local_maintenance
    if services.redis is not None:
        return bool(services.redis.set(MAINTENANCE_KEY, str(time.time()), nx=True, ex=max(int(interval), 1)))
    now = time.monotonic()
    if _last_local_maintenance is not None and now - _last_local_maintenance < interval:
        return False
    _last_local_maintenance = now
    return True


def maintenance_tick(services: Services) -> bool:
    """Send the maintenance message when it is due; returns whether it was sent."""
    if not maintenance_due(services):
        return False
    from workers.actors import run_maintenance

    run_maintenance.send()
    return True


def reconcile_due(services: Services, integration_id: int, interval: float) -> bool:
    """True for exactly one caller per interval and integration (Redis SET NX EX across processes; a
    timestamp in the single embedded process)."""
    if services.redis is not None:
        key = RECONCILE_KEY.format(integration_id=integration_id)
        return bool(services.redis.set(key, str(time.time()), nx=True, ex=max(int(interval), 1)))
    now = time.monotonic()
    last = _last_local_reconcile.get(integration_id)
    if last is not None and now - last < interval:
        return False
    _last_local_reconcile[integration_id] = now
    return True


def reconcile_tick(services: Services) -> list[int]:
    """Send the reconciliation of every integration that is due; returns their ids. Switched-off
    integrations only have their cursor kept at now (see `hold_switched_off_cursors`)."""
    from core import reconciliation
    from workers.actors import enqueue_reconcile

    with services.session_factory() as session:
        reconciliation.hold_switched_off_cursors(session)
        session.commit()
        integration_ids = reconciliation.due_integrations(session)
    sent = []
    for integration_id in integration_ids:
        if reconcile_due(services, integration_id, services.settings.reconcile_interval_seconds):
            if enqueue_reconcile(integration_id):
                sent.append(integration_id)
    return sent


def start_sweeper_thread(services: Services, interval: float = SWEEP_INTERVAL_SECONDS) -> threading.Event:
    stop = threading.Event()

    tick = min(interval, worker_health.HEARTBEAT_INTERVAL_SECONDS)

    def heartbeat():
        try:
            worker_health.beat(services.redis)
        except Exception:
            log.exception("could not write the worker heartbeat; trying again in %s s", tick)

    def loop():
        heartbeat()
        next_sweep = time.monotonic() + interval
        while not stop.wait(tick):
            heartbeat()
            if time.monotonic() < next_sweep:
                continue
            next_sweep = time.monotonic() + interval
            try:
                sweep_once(services)
            except Exception:
                log.exception("inbox sweep failed; trying again in %s s", interval)
            try:
                maintenance_tick(services)
            except Exception:
                log.exception("could not send the maintenance run; trying again in %s s", interval)
            try:
                reconcile_tick(services)
            except Exception:
                log.exception("could not send the reconciliation runs; trying again in %s s", interval)

    thread = threading.Thread(target=loop, name="chatsource-sweeper", daemon=True)
    _threads.append((thread, stop))
    thread.start()
    return stop


def stop_sweeper_threads() -> None:
    while _threads:
        thread, stop = _threads.pop()
        stop.set()
        thread.join(timeout=5)
    worker_health.forget_local_beat()
