"""The lifecycle of an inbox event (`webhook_events.status`), named once.

    received ──claim──▶ processing ──▶ done
        ▲                   │ amoCRM unavailable: back to received with attempts / next_attempt_at
        │                   ├─▶ failed   (attempts ran out, or the item could not be recorded)
        │                   ├─▶ parked   (the integration needs re-authorisation)
        │                   └─▶ ignored  (integration switched off, channel not passed)
        └──── replay (core.inbox.replay.replay_by_filter) / reconnect (unpark) / sweeper
    skipped: not a closed talk (is_in_work≠0), never becomes a request.

The values are the API's and the database's (a CHECK constraint, migration 0008): never rename one.
"""
from __future__ import annotations

import enum


class EventStatus(enum.StrEnum):
    RECEIVED = "received"      # waiting for a worker (maybe until next_attempt_at)
    PROCESSING = "processing"  # claimed by a worker's batch
    DONE = "done"
    SKIPPED = "skipped"
    IGNORED = "ignored"
    PARKED = "parked"
    FAILED = "failed"


ALL = tuple(EventStatus)
# Waiting for or inside a worker: what /healthz, the dashboard and a replay's progress count as pending.
PENDING = (EventStatus.RECEIVED, EventStatus.PROCESSING)
# Not yet a request and not given up on for a reason the user chose: the dashboard's backlog.
BACKLOG = (EventStatus.RECEIVED, EventStatus.PROCESSING, EventStatus.PARKED, EventStatus.FAILED)
# A replay by filter may pick these; by default the first two.
REPLAYABLE = (EventStatus.FAILED, EventStatus.PARKED, EventStatus.IGNORED, EventStatus.SKIPPED)
DEFAULT_REPLAY = (EventStatus.FAILED, EventStatus.PARKED)
# A replay of chosen events takes any of them but one a worker holds right now.
REPLAYABLE_BY_ID = tuple(s for s in ALL if s is not EventStatus.PROCESSING)


def check_constraint_sql(column: str = "status") -> str:
    """The CHECK constraint's condition (the model and migration 0008 share it)."""
    return f"{column} in ({', '.join(repr(s.value) for s in ALL)})"
