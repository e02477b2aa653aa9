"""Replaying inbox events by filter: the one replay.

`replay_by_filter(session, account_id, ...)`: failed / parked (or ignored / skipped) events of a period and
integration go round again as one `ReplayRun`, whose progress `replay_progress` reads; or chosen events
(`event_ids`). Both follow one rule about unfinished talks and reconnect-pending or switched-off
integrations (see the function). Idempotent: an event already queued is not queued twice, and one talk
makes one request anyway. The caller commits, then enqueues `to_enqueue`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.access.ownership import get_owned
from core.inbox import event_reasons, event_status
from core.inbox.event_status import EventStatus
from core.inbox.webhooks import is_closed_item
from core.models import Integration, ReplayRun, WebhookEvent
from core.platform.errors import DATES_REVERSED, NotFound, ValidationFailed
from core.platform.messages import N_, define

REPLAY_CHUNK = 1000
REPLAY_REASON = event_reasons.REPLAY_REQUESTED()
NO_SUCH_INTEGRATION = define("replay.no_such_integration", N_("Choose the integration from the list."))

@dataclass
class ReplayResult:
    run_id: int | None
    queued: int
    event_ids: list[int] = field(default_factory=list)
    to_enqueue: list[int] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"replay_id": self.run_id, "queued": self.queued, "skipped": self.skipped}


def _statuses(statuses) -> tuple[str, ...]:
    if statuses is None:
        return event_status.DEFAULT_REPLAY
    if isinstance(statuses, str):
        statuses = [statuses]
    if not isinstance(statuses, (list, tuple)) or not statuses or not all(isinstance(s, str) for s in statuses):
        raise ValidationFailed(f"statuses must be a non-empty list of: {', '.join(event_status.REPLAYABLE)}", "statuses")
    wrong = sorted(set(statuses) - set(event_status.REPLAYABLE))
    if wrong:
        raise ValidationFailed(f"cannot replay events that are {', '.join(wrong)}; choose from: "
                               f"{', '.join(event_status.REPLAYABLE)}", "statuses")
    return tuple(dict.fromkeys(statuses))


def replay_by_filter(session: Session, account_id: int, integration_id: int | None = None,
                     date_from: datetime | None = None, date_till: datetime | None = None,
                     statuses=None, *, event_ids: list[int] | None = None,
                     requested_by: str | None = None) -> ReplayResult:
    """The one replay: send the matching events round again. Idempotent (one talk, one request).

    What matches: the account's events of `statuses` (default failed and parked), of one integration
    or all, received between `date_from` and `date_till` (both inclusive) — or, with `event_ids`
    (the events page's selection, the API's one event), exactly those, in any status but processing.
    A replay by filter is recorded as a `ReplayRun` whose progress `replay_progress` reads; a
    replay of chosen events is not.

    The rule for every caller — left as they are, and counted in `skipped`: events whose talk is not
    finished (`not_closed`: they can never become a request), events of an integration that needs
    re-authorisation (`needs_reauth`: they would only park again, and reconnecting replays them by
    itself), events of a switched-off integration (`integration_inactive`: they would only be
    ignored again, losing their error), and chosen events a worker holds (`in_progress`).

    Returns the ids queued and, in `to_enqueue`, one id per integration: the worker that takes it
    drains that integration's whole backlog. The caller commits, then enqueues."""
    statuses = event_status.REPLAYABLE_BY_ID if event_ids is not None and statuses is None else _statuses(statuses)
    if integration_id is not None:
        try:
            get_owned(session, Integration, account_id, integration_id)
        except NotFound:
            raise ValidationFailed(f"integration {integration_id} does not exist in this account", "integration_id",
                                   NO_SUCH_INTEGRATION()) from None
    if date_from and date_till and date_from > date_till:
        raise ValidationFailed("date_from is after date_till", "date_from", DATES_REVERSED())

    e = WebhookEvent
    where = [e.account_id == account_id, e.status.in_(statuses)]
    if event_ids is not None:
        where.append(e.id.in_(event_ids))
    if integration_id is not None:
        where.append(e.integration_id == integration_id)
    if date_from:
        where.append(e.received_at >= date_from)
    if date_till:
        where.append(e.received_at <= date_till)
    blocked = _blocked_integrations(session, account_id)
    skipped = {"not_closed": 0, "needs_reauth": 0, "integration_inactive": 0}
    run: ReplayRun | None = None
    queued_ids: list[int] = []
    first_by_integration: dict[int, int] = {}
    last_id = 0
    while True:
        chunk = session.execute(
            sa.select(e.id, e.integration_id, e.item).where(*where, e.id > last_id).order_by(e.id).limit(REPLAY_CHUNK)
        ).all()
        if not chunk:
            break
        last_id = chunk[-1].id
        ids = []
        for row in chunk:
            if row.integration_id in blocked:
                skipped["needs_reauth" if blocked[row.integration_id] == "needs_reauth" else "integration_inactive"] += 1
            elif not is_closed_item(row.item):
                skipped["not_closed"] += 1
            else:
                ids.append(row.id)
                first_by_integration.setdefault(row.integration_id, row.id)
        if not ids:
            continue
        if run is None and event_ids is None:
            run = ReplayRun(account_id=account_id, integration_id=integration_id, statuses=list(statuses),
                            date_from=date_from, date_till=date_till, total=0, skipped={}, requested_by=requested_by)
            session.add(run)
            session.flush()
        queued_ids.extend(_requeue(session, ids, statuses, run))
    if event_ids is not None:
        skipped["in_progress"] = session.scalar(sa.select(sa.func.count()).select_from(e).where(
            e.account_id == account_id, e.id.in_(event_ids), e.status == EventStatus.PROCESSING))
    skipped = {k: v for k, v in skipped.items() if v}
    if run is not None:
        run.total = len(queued_ids)
        run.skipped = skipped
        session.flush()
    queued = set(queued_ids)
    return ReplayResult(run.id if run else None, len(queued_ids), queued_ids,
                        sorted(i for i in first_by_integration.values() if i in queued), skipped)


def _blocked_integrations(session: Session, account_id: int) -> dict[int, str]:
    """The account's integrations whose events a replay leaves alone: id → their status."""
    return dict(session.execute(
        sa.select(Integration.id, Integration.status).where(
            Integration.account_id == account_id,
            sa.or_(Integration.status == "needs_reauth", Integration.is_active.is_(False)))
    ).all())


def _requeue(session: Session, ids: list[int], statuses, run: ReplayRun | None) -> list[int]:
    """Back to received with a fresh count of attempts; returns the ids moved (not one a worker moved meanwhile)."""
    e = WebhookEvent
    values = dict(status=EventStatus.RECEIVED, status_reason_code=REPLAY_REASON.code, status_reason_params={}, next_attempt_at=None,
                  attempts=0, error=None, claim_token=None)
    if run is not None:
        values["replay_run_id"] = run.id
    result = session.execute(
        sa.update(e).where(e.id.in_(ids), e.status.in_(statuses)).values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == len(ids):
        return ids
    moved = e.replay_run_id == run.id if run is not None else e.status_reason_code == REPLAY_REASON.code
    return list(session.scalars(sa.select(e.id).where(e.id.in_(ids), e.status == EventStatus.RECEIVED, moved)))


def replay_progress(session: Session, account_id: int, run_id) -> dict:
    """How far a replay run has got: its events by status now; `finished` once none is waiting."""
    run = get_owned(session, ReplayRun, account_id, run_id)
    counts = dict(session.execute(
        sa.select(WebhookEvent.status, sa.func.count()).where(WebhookEvent.replay_run_id == run.id).group_by(WebhookEvent.status)
    ).all())
    pending = sum(counts.get(s, 0) for s in event_status.PENDING)
    return {
        "id": run.id,
        "created_at": run.created_at.isoformat(),
        "requested_by": run.requested_by,
        "filter": {
            "integration_id": run.integration_id,
            "statuses": list(run.statuses or []),
            "date_from": run.date_from.isoformat() if run.date_from else None,
            "date_till": run.date_till.isoformat() if run.date_till else None,
        },
        "total": run.total,
        "skipped": dict(run.skipped or {}),
        "counts": counts,
        "pending": pending,
        "done": counts.get(EventStatus.DONE, 0),
        "failed": counts.get(EventStatus.FAILED, 0) + counts.get(EventStatus.PARKED, 0),
        "finished": pending == 0,
        "progress": round((run.total - pending) / run.total, 4) if run.total else 1.0,
    }


def has_something_to_replay(session: Session, account_id: int) -> bool:
    """An event replay could act on, or a replay run to follow: «Повтор событий» is offered then only.
    Through the (integration, status) index, per integration of the account."""
    integration_ids = sa.select(Integration.id).where(Integration.account_id == account_id).scalar_subquery()
    waiting = sa.exists().where(WebhookEvent.integration_id.in_(integration_ids),
                                WebhookEvent.status.in_(event_status.REPLAYABLE))
    runs = sa.exists().where(ReplayRun.account_id == account_id)
    return bool(session.scalar(sa.select(sa.or_(waiting, runs))))


def list_replay_runs(session: Session, account_id: int, limit: int = 20) -> list[dict]:
    runs = session.scalars(
        sa.select(ReplayRun).where(ReplayRun.account_id == account_id).order_by(ReplayRun.id.desc()).limit(limit)
    )
    return [replay_progress(session, account_id, run.id) for run in runs]
