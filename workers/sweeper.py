"""A thread in each worker process (and in the embedded web worker) that runs the inbox sweep every
30 s. A shared lock lets one process sweep per interval however many run."""
from __future__ import annotations

import logging
import threading

from core import talk_processing
from core.services import Services

log = logging.getLogger(__name__)
SWEEP_INTERVAL_SECONDS = 30
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


def start_sweeper_thread(services: Services, interval: float = SWEEP_INTERVAL_SECONDS) -> threading.Event:
    stop = threading.Event()

    def loop():
        while not stop.wait(interval if _threads else 1):
            try:
                sweep_once(services)
            except Exception:
                log.exception("inbox sweep failed; trying again in %s s", interval)

    thread = threading.Thread(target=loop, name="chatsource-sweeper", daemon=True)
    _threads.append((thread, stop))
    thread.start()
    return stop


def stop_sweeper_threads() -> None:
    while _threads:
        thread, stop = _threads.pop()
        stop.set()
        thread.join(timeout=5)
