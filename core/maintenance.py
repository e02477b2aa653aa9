"""Keeping integrations alive between chats, and replaying inbox events by filter.

- `refresh_tokens_ahead(services)`: amoCRM revokes a refresh token left unused for three months, and an
  integration whose site gets no chats for that long never refreshes on its own. Every integration
  whose tokens were last refreshed (or connected) `REFRESH_AHEAD_DAYS` ago or more is refreshed through
  `TokenManager` (lock, re-read, compare-and-swap; a rejection marks it `needs_reauth`).
- `check_webhooks(services)`: amoCRM disables a hook after 100 failed deliveries and says so only in
  its own UI, so every connected integration's hook is read back (`GET /api/v4/webhooks`) and
  `webhook_disabled` / `webhook_registered_at` / `webhook_checked_at` are set from what amoCRM says.
- `replay_by_filter(session, account_id, ...)`: the one replay. Failed / parked (or ignored / skipped)
  events of a period and integration go round again as one `ReplayRun`, whose progress
  `replay_progress` reads; or chosen events (`event_ids`). Both follow one rule about unfinished
  talks and reconnect-pending or switched-off integrations (see the function).
  Idempotent: an event already queued is not queued twice, and one talk makes one request anyway.

`run_periodic(services)` runs the first two; the worker's sweeper thread sends it every 30 minutes
(workers/sweeper.py → `chatsource.run_maintenance`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core import event_reasons, event_status
from core.amocrm.errors import AmoCrmError, ReauthRequired
from core.catalog import NotFound, ValidationFailed, get_owned
from core.crypto import SecretUnreadable
from core.db import utcnow
from core.event_status import EventStatus
from core.models import Integration, ReplayRun, WebhookEvent
from core.services import Services
from core.webhook_inbox import is_closed_item

log = logging.getLogger(__name__)

REFRESH_AHEAD_DAYS = 7
REPLAY_CHUNK = 1000
REPLAY_REASON = event_reasons.REPLAY_REQUESTED()


@dataclass
class Outcome:
    integration_id: int
    result: str  # refreshed | ok | missing | disabled | needs_reauth | error
    detail: str | None = None


# --- tokens --------------------------------------------------------------------------------------

def refresh_tokens_ahead(services: Services, *, now: datetime | None = None,
                         max_age_days: float = REFRESH_AHEAD_DAYS) -> list[Outcome]:
    """Refresh every connected integration whose tokens are `max_age_days` old or older."""
    from core.amocrm.tokens import TokenManager

    now = now or utcnow()
    cutoff = now - timedelta(days=max_age_days)
    refreshed_at = sa.func.coalesce(Integration.token_refreshed_at, Integration.connected_at)
    with services.session_factory() as session:
        due = list(session.scalars(
            sa.select(Integration.id)
            .where(Integration.status == "connected", Integration.refresh_token_enc.is_not(None),
                   sa.or_(refreshed_at.is_(None), refreshed_at <= cutoff))
            .order_by(Integration.id)
        ))
    manager = TokenManager(services)
    outcomes = []
    for integration_id in due:
        try:
            manager.access_token(integration_id, force_refresh=True)
        except ReauthRequired as exc:  # the manager has marked it needs_reauth; the dashboard says so
            outcomes.append(Outcome(integration_id, "needs_reauth", str(exc)))
            log.warning("integration %s: refresh ahead of time refused: %s", integration_id, exc)
        except AmoCrmError as exc:  # transient: the next run (30 minutes on) tries again
            outcomes.append(Outcome(integration_id, "error", str(exc)))
            log.warning("integration %s: refresh ahead of time failed, will retry: %s", integration_id, exc)
        else:
            outcomes.append(Outcome(integration_id, "refreshed"))
            log.info("integration %s: amoCRM tokens refreshed ahead of time", integration_id)
    return outcomes


# --- webhooks ------------------------------------------------------------------------------------

def check_webhooks(services: Services, *, now: datetime | None = None,
                   integration_ids: list[int] | None = None) -> list[Outcome]:
    """Read each connected integration's hook back from amoCRM and store what it says."""
    from core.amocrm.client import AmoCrmClient
    from core.integrations import our_webhook, webhook_url, webhook_url_forms
    from core.oauth_connect import WEBHOOK_EVENTS

    now = now or utcnow()
    with services.session_factory() as session:
        stmt = sa.select(Integration).where(Integration.status == "connected", Integration.access_token_enc.is_not(None))
        if integration_ids is not None:
            stmt = stmt.where(Integration.id.in_(integration_ids or [0]))
        targets = []
        for integration in session.scalars(stmt.order_by(Integration.id)):
            try:
                targets.append((integration.id, webhook_url(services, integration)))
            except SecretUnreadable:
                log.warning("integration %s: the webhook url cannot be decrypted; skipped", integration.id)
    outcomes = []
    for integration_id, url in targets:
        try:
            hooks = AmoCrmClient(services, integration_id).find_webhooks(webhook_url_forms(url))
        except ReauthRequired as exc:
            outcomes.append(Outcome(integration_id, "needs_reauth", str(exc)))
            continue
        except AmoCrmError as exc:
            outcomes.append(Outcome(integration_id, "error", str(exc)))
            log.warning("integration %s: could not read the webhooks from amoCRM: %s", integration_id, exc)
            continue
        hook = our_webhook(hooks, WEBHOOK_EVENTS)
        values: dict = {"webhook_checked_at": now}
        if hook is None or not set(WEBHOOK_EVENTS) <= set(hook.get("settings") or []):
            values.update(webhook_registered_at=None, webhook_disabled=False)
            outcome = Outcome(integration_id, "missing")
        elif hook.get("disabled"):
            values.update(webhook_disabled=True)
            outcome = Outcome(integration_id, "disabled")
        else:
            values.update(webhook_disabled=False,
                          webhook_registered_at=sa.func.coalesce(
                              Integration.webhook_registered_at,
                              sa.bindparam(None, now, type_=Integration.webhook_registered_at.type)))
            outcome = Outcome(integration_id, "ok")
        with services.session_factory() as session:
            session.execute(sa.update(Integration).where(Integration.id == integration_id).values(**values)
                            .execution_options(synchronize_session=False))
            session.commit()
        if outcome.result != "ok":
            log.warning("integration %s: amoCRM webhook is %s", integration_id, outcome.result)
        outcomes.append(outcome)
    return outcomes


def run_periodic(services: Services, *, now: datetime | None = None) -> dict:
    """What the worker runs every 30 minutes; returns a summary for the log."""
    summary: dict[str, dict[str, int]] = {"tokens": {}, "webhooks": {}}
    for name, outcomes in (("tokens", refresh_tokens_ahead(services, now=now)), ("webhooks", check_webhooks(services, now=now))):
        for outcome in outcomes:
            summary[name][outcome.result] = summary[name].get(outcome.result, 0) + 1
    return summary


# --- replay by filter ----------------------------------------------------------------------------

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
            raise ValidationFailed(f"integration {integration_id} does not exist in this account", "integration_id") from None
    if date_from and date_till and date_from > date_till:
        raise ValidationFailed("date_from is after date_till", "date_from")

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
