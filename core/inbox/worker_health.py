"""Is anything consuming the queue? A heartbeat, and the age of the oldest event waiting for a worker.

With REDIS_URL the web process only stores and enqueues; if no worker runs, every webhook waits forever
and nothing said so (issue 9 §3). Each worker's sweeper thread beats every few seconds — into Redis
with an expiry, or, in the embedded mode, into this process (the in-process worker counts as a
worker). `/healthz` and the dashboard call the state degraded when an event has waited longer than
`STALE_AFTER_SECONDS` and no worker beat recently: a busy worker still beats, so a long but moving
backlog is the dashboard's «backlog» warning, not this alarm."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from core.inbox.event_status import EventStatus
from core.models import WebhookEvent
from core.platform.db import utcnow

HEARTBEAT_KEY = "chatsource:worker:heartbeat"
HEARTBEAT_INTERVAL_SECONDS = 5
HEARTBEAT_TTL_SECONDS = 30  # six missed beats: the worker is gone, not just busy
STALE_AFTER_SECONDS = 60
_local_beat: float | None = None  # the embedded worker's, in this process


def beat(redis) -> None:
    global _local_beat
    if redis is None:
        _local_beat = time.monotonic()
    else:
        redis.set(HEARTBEAT_KEY, str(time.time()), ex=HEARTBEAT_TTL_SECONDS)


def worker_alive(redis) -> bool:
    if redis is None:
        return _local_beat is not None and time.monotonic() - _local_beat < HEARTBEAT_TTL_SECONDS
    return bool(redis.exists(HEARTBEAT_KEY))


def forget_local_beat() -> None:
    """The embedded worker stopped."""
    global _local_beat
    _local_beat = None


def oldest_waiting(session: Session, account_id: int | None = None) -> datetime | None:
    """Since when the longest-waiting `received` event has been due (a retry is due at next_attempt_at)."""
    e = WebhookEvent
    due_since = sa.func.coalesce(e.next_attempt_at, e.received_at)
    query = sa.select(sa.func.min(due_since)).where(e.status == EventStatus.RECEIVED)
    if account_id is not None:
        query = query.where(e.account_id == account_id)
    return session.scalar(query)


@dataclass(frozen=True)
class ProcessingState:
    worker_alive: bool
    oldest_waiting_at: datetime | None
    now: datetime

    @property
    def waiting_seconds(self) -> int:
        if self.oldest_waiting_at is None:
            return 0
        return max(int((self.now - self.oldest_waiting_at).total_seconds()), 0)

    @property
    def stalled(self) -> bool:
        """Events wait longer than a minute and no worker is there to take them."""
        return not self.worker_alive and self.waiting_seconds > STALE_AFTER_SECONDS

    def reasons(self) -> list[str]:
        if not self.stalled:
            return []
        return [f"no worker is consuming: events have waited {self.waiting_seconds} s and no worker heartbeat "
                f"arrived in {HEARTBEAT_TTL_SECONDS} s; start the Procfile's worker process"]


def processing_state(session: Session, redis, account_id: int | None = None,
                     now: datetime | None = None) -> ProcessingState | None:
    """None when Redis cannot be asked (it is down: the broker's own check reports that)."""
    try:
        alive = worker_alive(redis)
    except RedisError:
        return None
    return ProcessingState(alive, oldest_waiting(session, account_id), now or utcnow())
