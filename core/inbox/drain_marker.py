"""At most one queued drain per integration: a webhook that finds one waiting sends no other message.

The worker that takes an integration's message drains its whole backlog (core.inbox.talk_processing),
so in a burst of 1,000 closes one message does the work and the other 999 only cost a fetch, an
event read and a lock attempt each (py-spy on `bench.processing_economy`: most of the worker's CPU).

A Redis key per integration says "a message is queued and has not started": the web sets it
(SET NX, after committing its events) and sends a message only when it was not set; the worker
deletes it when it takes the message, *before* it reads what is due. So an event committed before
the delete is seen by that drain, and one committed after it finds no key and sends its own
message. The key expires after `PENDING_TTL_S`: a message that was never sent (the broker failed
after the SET) holds back the next webhooks' messages that long at most, and the sweeper
(`sweep_stuck`) sends any event that is still waiting after a minute. Without Redis (the embedded
shape) or when Redis answers with an error, every webhook sends its message, as before.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

KEY_PREFIX = "chatsource:drain-pending:"
PENDING_TTL_S = 10


def _key(integration_id: int) -> str:
    return f"{KEY_PREFIX}{integration_id}"


def should_send(redis, integration_id: int) -> bool:
    """True when the caller must send the integration's message (none is waiting); marks it waiting."""
    if redis is None:
        return True
    try:
        return bool(redis.set(_key(integration_id), b"1", nx=True, ex=PENDING_TTL_S))
    except Exception:  # cannot tell: one message too many is harmless, one too few is a wait
        log.warning("drain marker of integration %s unreadable; sending the message", integration_id, exc_info=True)
        return True


def taken(redis, integration_id: int) -> None:
    """The worker took the integration's message: the next event needs a message of its own."""
    if redis is None:
        return
    try:
        redis.delete(_key(integration_id))
    except Exception:  # the key expires by itself
        log.warning("drain marker of integration %s not cleared", integration_id, exc_info=True)


def messages_to_send(redis, integration_id: int, event_ids: list[int]) -> list[int]:
    """After a webhook's commit, the events to send a message for: the first one stored (the worker
    that takes it drains the integration's whole backlog), none when nothing new is waiting to be
    processed or a message of the integration is waiting already."""
    if not event_ids or not should_send(redis, integration_id):
        return []
    return event_ids[:1]
