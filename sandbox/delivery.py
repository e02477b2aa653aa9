"""Webhook delivery: POST form bodies to destinations, like amoCRM does.

Synchronous by default (the request that caused the event waits, so tests are
deterministic); with the ``deliver_async`` knob a single background thread
sends in order.  The outcome of every attempt is recorded in the webhook store, which
also applies amo's auto-disable rule and (knob ``webhook_retries``) schedules
retries on amo's timetable.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:  # pragma: no cover
    from .webhooks import WebhookStore


class Deliverer:
    def __init__(self, store: "WebhookStore") -> None:
        self.store = store
        self._queue: "queue.Queue[dict[str, Any] | None]" = queue.Queue()
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self._timers_lock = threading.Lock()
        self._generation = 0

    # -- public ---------------------------------------------------------------------------
    def submit(self, jobs: list[dict[str, Any]]) -> None:
        if not jobs:
            return
        if self.store.settings.get("deliver_async"):
            self._ensure_thread()
            for job in jobs:
                self._queue.put(job)
        else:
            for job in jobs:
                self._send(job)

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until the async queue is drained (True) or *timeout* passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return self._queue.unfinished_tasks == 0

    def cancel_pending(self) -> None:
        """Drop scheduled retries and queued jobs (on reset)."""
        self._generation += 1
        with self._timers_lock:
            for t in self._timers:
                t.cancel()
            self._timers.clear()
        try:
            while True:
                self._queue.get_nowait()
                self._queue.task_done()
        except queue.Empty:
            pass

    def stop(self) -> None:
        self.cancel_pending()
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=2)
        self._thread = None

    # -- internals ------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._worker, name="sandbox-webhooks", daemon=True)
            self._thread.start()

    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._send(job)
            except Exception:  # noqa: BLE001 - a delivery must never kill the worker
                pass
            finally:
                self._queue.task_done()

    def _send(self, job: dict[str, Any]) -> None:
        settings = self.store.settings
        timeout = float(settings.get("webhook_timeout", 2.0))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": settings.get("webhook_user_agent", "amoCRM-Webhooks/3.0"),
            "Accept": "*/*",
        }
        status_code: int | None = None
        error: str | None = None
        started = time.monotonic()
        session = requests.Session()
        session.trust_env = False  # never route loopback deliveries through a proxy
        try:
            resp = session.post(job["destination"], data=job["body"].encode("ascii"), headers=headers,
                                timeout=timeout, allow_redirects=False)
            status_code = resp.status_code
            resp.close()
        except requests.Timeout:
            error = "timeout"
        except requests.ConnectionError as exc:
            m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
            error = f"connection error: {m.group(1).strip() if m else type(exc).__name__}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            session.close()
        elapsed = time.monotonic() - started
        if error is None and elapsed > timeout:
            error = "timeout"  # amo wants the whole answer within the timeout
        generation = self._generation
        retry = self.store.record_attempt(job, status_code, error, elapsed)
        if retry is not None and generation == self._generation:
            _code, delay = retry
            self._schedule_retry(job, delay)

    def _schedule_retry(self, job: dict[str, Any], delay: float) -> None:
        generation = self._generation

        def fire() -> None:
            if generation != self._generation:
                return
            new_job = self.store.retry_job(job)
            if new_job is not None:
                self.submit([new_job])

        timer = threading.Timer(max(0.0, delay), fire)
        timer.daemon = True
        with self._timers_lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()
