"""Reconciliation: talks closed in amoCRM that no webhook told us about become requests all the same.

amoCRM sends each webhook once, retries only on non-2xx and disables a hook after 100 bad answers in
two hours; chats closed while the hook is disabled, while we are down or before the hook existed
would be lost. So, for every connected and active integration, amoCRM's event log is read:

    GET /api/v4/events?filter[type][]=talk_closed&filter[created_at][from]=<cursor>&filter[created_at][to]=<now>&limit=100

through the one `AmoCrmClient` (same rate budget, tokens and allowlist), every page. A talk id that
has no request yet and no closed inbox item (then a webhook did tell us: the item is being
processed, failed visibly or was ignored on purpose) is fetched (`GET /api/v4/talks/{id}`); when it
is closed it is stored into the inbox as a talk item built from the talk, through the same insert as
webhooks (`store_talk_items`, dedupe key `reconcile:<talk_id>`), marked as found by reconciliation.
The normal worker path then records it — one request per talk, so a webhook arriving later changes
nothing — and the request's reason says it was found by reconciliation.

- `reconcile_integration(services, integration_id)`: the periodic run (the worker's sweeper sends it
  every RECONCILE_INTERVAL_SECONDS, and at once after a reconnect or a webhook registered again). Its
  cursor moves only past what was committed; the first run starts at `connected_at`; windows overlap
  by `OVERLAP_SECONDS` (storing is idempotent). ReauthRequired stops it (the client has marked the
  integration needs_reauth); other amoCRM errors keep the cursor and record the error for the next run.
- `start_backfill` / `run_backfill` / `backfill_progress`: the same for a period an admin or the API
  chose, as a `ReconcileRun` with progress, read one day at a time, oldest first.

Where a `talk_closed` event carries the talk id is not documented (https://www.amocrm.ru/developers/content/crm_platform/events-and-notes); `talk_id_of`
accepts the four places seen or guessed, and events it cannot read are counted and logged (their id
and shape, never tokens), so production data tells which shape is real.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.access.ownership import get_owned
from core.amocrm.client import AmoCrmClient
from core.amocrm.errors import AmoApiError, AmoCrmError, ReauthRequired
from core.inbox.webhooks import (
    MAX_FIELD_CHARS,
    MAX_ID,
    RECONCILIATION_SOURCE,
    SOURCE_KEY,
    TalkItem,
    is_closed_item,
    store_talk_items,
)
from core.models import ChatRequest, Integration, ReconcileRun, WebhookEvent
from core.platform.db import utcnow
from core.platform.errors import DATES_REVERSED, ValidationFailed
from core.platform.messages import N_, define
from core.platform.ratelimit import RateLimitTimeout
from core.platform.services import Services

log = logging.getLogger(__name__)

TALK_CLOSED = "talk_closed"
OVERLAP_SECONDS = 120  # re-read a little of the last window: amoCRM's clock and ours differ, the log lags
MAX_LOOKBACK_DAYS = 90  # a first run never reads further back than this
BACKFILL_MAX_DAYS = 90
# What the admin says about a refused backfill period (`ValidationFailed.said`).
BACKFILL_FROM_MISSING = define("backfill.from_missing", N_("Enter the first day of the period."))
BACKFILL_FROM_FUTURE = define("backfill.from_future", N_("The start date is in the future."))
BACKFILL_TOO_LONG = define("backfill.too_long", N_("The period is longer than %(days)s days: load it in several parts."))
BACKFILL_WINDOW = timedelta(days=1)  # a backfill reads one day at a time: progress and a resume point
LOCK_SECONDS = 30 * 60
RUN_STATUSES = ("queued", "running", "done", "failed")
ITEM_FIELDS = ("talk_id", "created_at", "updated_at", "rate", "contact_id", "chat_id", "entity_id",
               "entity_type", "is_in_work", "is_read", "origin")


# --- reading the event log ----------------------------------------------------------------------

def _positive_id(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        number = int(value.strip())
    else:
        return None
    return number if 0 < number <= MAX_ID else None


def talk_id_of(event: dict) -> int | None:
    """The talk id of a `talk_closed` event, from the first place that holds one: value_after[i].talk.id,
    value_after[i].talk.talk_id, value_after[i].talk_id, then entity_id when entity_type is talk."""
    if not isinstance(event, dict):
        return None
    after = event.get("value_after")
    items = [i for i in after if isinstance(i, dict)] if isinstance(after, list) else []
    for getter in (
        lambda i: (i.get("talk") or {}).get("id") if isinstance(i.get("talk"), dict) else None,
        lambda i: (i.get("talk") or {}).get("talk_id") if isinstance(i.get("talk"), dict) else None,
        lambda i: i.get("talk_id"),
    ):
        for item in items:
            talk_id = _positive_id(getter(item))
            if talk_id is not None:
                return talk_id
    if event.get("entity_type") == "talk":
        return _positive_id(event.get("entity_id"))
    return None


def _shape(event) -> str:
    """What an unreadable event looks like, for the log: its keys and those of value_after, no values."""
    if not isinstance(event, dict):
        return type(event).__name__
    after = event.get("value_after")
    inner = [sorted(i) if isinstance(i, dict) else type(i).__name__ for i in after] if isinstance(after, list) else type(after).__name__
    return f"keys={sorted(event)} entity_type={str(event.get('entity_type'))[:30]!r} value_after={str(inner)[:200]}"


def talk_is_closed(talk: dict) -> bool:
    """Closed is `is_in_work` false; live accounts also carry `status` (closed, or in_work / nps_*)."""
    if talk.get("status") == "closed":
        return True
    return talk.get("is_in_work") in (False, 0, "0", "false")


def item_from_talk(talk: dict) -> TalkItem:
    """The talk as a webhook would carry it: string values, is_in_work "0"."""
    fields = {}
    for name in ITEM_FIELDS:
        value = talk.get(name)
        if name == "is_in_work":
            value = "0"
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        fields[name] = str(value)[:MAX_FIELD_CHARS]
    return TalkItem(action="update", fields=fields)


@dataclass
class Counts:
    pages: int = 0
    events: int = 0
    talks_found: int = 0
    already_recorded: int = 0  # a request, or a closed inbox item from a webhook, already has the talk
    recovered: int = 0  # stored into the inbox for recording
    not_closed: int = 0
    not_found: int = 0
    unreadable: int = 0
    to_enqueue: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("pages", "events", "talks_found", "already_recorded", "recovered",
                                              "not_closed", "not_found", "unreadable")}


def reconcile_window(services: Services, integration_id: int, created_from: int, created_to: int, counts: Counts, *,
                     client: AmoCrmClient | None = None, count_unreadable_from: int | None = None,
                     on_page=None) -> None:
    """Read the window's `talk_closed` events (every page) and store each closed talk we do not know.
    Each page is committed before the next is read. amoCRM errors propagate; what was committed stays."""
    client = client or AmoCrmClient(services, integration_id)
    for page in client.iter_events([TALK_CLOSED], created_from, created_to):
        counts.pages += 1
        _reconcile_page(services, client, integration_id, page, counts, count_unreadable_from)
        if on_page is not None:
            on_page(counts)


def _reconcile_page(services: Services, client: AmoCrmClient, integration_id: int, page: list, counts: Counts,
                    count_unreadable_from: int | None) -> None:
    talk_ids: list[int] = []
    for event in page:
        if isinstance(event, dict) and event.get("type") not in (None, TALK_CLOSED):
            continue  # the filter asked for talk_closed only
        counts.events += 1
        talk_id = talk_id_of(event)
        if talk_id is None:
            created = _positive_id(event.get("created_at")) if isinstance(event, dict) else None
            if count_unreadable_from is None or created is None or created >= count_unreadable_from:
                counts.unreadable += 1
                log.warning("integration %s: a talk_closed event without a readable talk id (event %s, %s)",
                            integration_id, str(event.get("id") if isinstance(event, dict) else None)[:40], _shape(event))
            continue
        if talk_id not in talk_ids:
            talk_ids.append(talk_id)
    if not talk_ids:
        return
    counts.talks_found += len(talk_ids)
    with services.session_factory() as session:
        known = set(session.scalars(sa.select(ChatRequest.talk_id).where(
            ChatRequest.integration_id == integration_id, ChatRequest.talk_id.in_(talk_ids))))
        for talk_id, item in session.execute(sa.select(WebhookEvent.talk_id, WebhookEvent.item).where(
                WebhookEvent.integration_id == integration_id, WebhookEvent.talk_id.in_(talk_ids))):
            if is_closed_item(item):
                known.add(talk_id)
    counts.already_recorded += len(known)
    items = []
    for talk_id in talk_ids:
        if talk_id in known:
            continue
        try:
            talk = client.get_talk(talk_id)
        except AmoApiError as exc:
            # This one talk is refused (e.g. 403: the user lacks rights on its contact). Skipping it keeps
            # the cursor moving; stopping would retry the same refusal on every run.
            log.warning("integration %s: amoCRM refused talk %s during reconciliation: %s", integration_id, talk_id, exc)
            talk = None
        if talk is None:
            counts.not_found += 1
        elif not talk_is_closed(talk):
            counts.not_closed += 1
        else:
            talk = dict(talk, talk_id=talk.get("talk_id") or talk_id)
            items.append((item_from_talk(talk), f"reconcile:{talk_id}", {SOURCE_KEY: RECONCILIATION_SOURCE}))
    if not items:
        return
    with services.session_factory() as session:
        integration = session.get(Integration, integration_id)
        result = store_talk_items(session, integration, items, touch_last_event=False)
        session.commit()
    counts.recovered += result.stored
    counts.to_enqueue.extend(result.to_enqueue)
    if result.stored:
        log.info("integration %s: reconciliation stored %s closed talks no webhook reported", integration_id, result.stored)


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


# --- the periodic run ---------------------------------------------------------------------------

@dataclass
class Outcome:
    integration_id: int
    result: str  # done | busy | skipped | needs_reauth | error
    counts: Counts = field(default_factory=Counts)
    error: str | None = None

    @property
    def to_enqueue(self) -> list[int]:
        return self.counts.to_enqueue


def due_integrations(session: Session) -> list[int]:
    """Integrations reconciliation runs for: connected (with tokens) and active."""
    return list(session.scalars(
        sa.select(Integration.id).where(Integration.status == "connected", Integration.is_active.is_(True),
                                        Integration.access_token_enc.is_not(None)).order_by(Integration.id)))


def hold_switched_off_cursors(session: Session, now: datetime | None = None) -> int:
    """A switched-off integration records nothing (its webhooks are stored as ignored): its cursor
    follows the clock, so once switched on it reconciles from then, not the time it was off.
    No amoCRM call; the caller commits."""
    result = session.execute(
        sa.update(Integration).where(Integration.status == "connected", Integration.is_active.is_(False))
        .values(reconcile_cursor=now or utcnow()).execution_options(synchronize_session=False))
    return result.rowcount or 0


def reconcile_integration(services: Services, integration_id: int, *, now: datetime | None = None) -> Outcome:
    """One periodic run for one integration, from its cursor (minus the overlap) to now."""
    with services.locks.try_lock(f"reconcile:{integration_id}", timeout_s=LOCK_SECONDS) as acquired:
        if not acquired:
            return Outcome(integration_id, "busy")  # a backfill or another run holds it; the next interval comes
        return _reconcile_locked(services, integration_id, now or utcnow())


def _reconcile_locked(services: Services, integration_id: int, now: datetime) -> Outcome:
    with services.session_factory() as session:
        integration = session.get(Integration, integration_id)
        if (integration is None or integration.status != "connected" or not integration.is_active
                or not integration.access_token_enc):
            return Outcome(integration_id, "skipped")
        cursor = integration.reconcile_cursor or integration.connected_at or now
        # Unreadable events in the overlap were counted by the run before (none on the first run).
        unreadable_from = _ts(integration.reconcile_cursor) + 1 if integration.reconcile_cursor else None
    start = max(cursor - timedelta(seconds=OVERLAP_SECONDS), now - timedelta(days=MAX_LOOKBACK_DAYS))
    counts = Counts()
    outcome = Outcome(integration_id, "done", counts)
    try:
        reconcile_window(services, integration_id, _ts(start), _ts(now), counts, count_unreadable_from=unreadable_from)
    except ReauthRequired as exc:
        outcome.result, outcome.error = "needs_reauth", _error_text(exc)
    except (AmoCrmError, RateLimitTimeout) as exc:
        outcome.result, outcome.error = "error", _error_text(exc)
    values: dict = {
        "reconciled_at": now,
        "reconcile_recovered_last": counts.recovered,
        # What was stored stays stored, even when the run stopped half way.
        "reconcile_recovered_total": Integration.reconcile_recovered_total + counts.recovered,
    }
    if outcome.error is None:
        values.update(reconcile_cursor=now, reconcile_error=None, reconcile_error_at=None,
                      reconcile_unreadable_total=Integration.reconcile_unreadable_total + counts.unreadable)
        if counts.recovered or counts.unreadable:
            log.info("integration %s: reconciliation %s", integration_id, counts.to_dict())
    else:
        # The cursor stays where it was: the next run reads this window again (storing is idempotent).
        values.update(reconcile_error=outcome.error, reconcile_error_at=now)
        log.warning("integration %s: reconciliation with amoCRM stopped, the next run retries: %s", integration_id, outcome.error)
    with services.session_factory() as session:
        session.execute(sa.update(Integration).where(Integration.id == integration_id).values(**values)
                        .execution_options(synchronize_session=False))
        session.commit()
    return outcome


# --- backfill -----------------------------------------------------------------------------------

class NotConnected(Exception):
    """The integration cannot be reconciled now: `code` is not_connected (no amoCRM connection: no
    event log to read) or not_active (switched off: what was found would only be ignored)."""

    def __init__(self, message: str, code: str = "not_connected"):
        super().__init__(message)
        self.code = code


def start_backfill(session: Session, account_id: int, integration_id: int, date_from: datetime | None,
                   date_till: datetime | None, *, requested_by: str | None = None,
                   now: datetime | None = None) -> ReconcileRun:
    """Validate the period and queue a run (the caller commits, then sends `run_backfill`).
    NotFound for another account's integration, NotConnected when it has no amoCRM connection or is
    switched off."""
    now = now or utcnow()
    integration = get_owned(session, Integration, account_id, integration_id)
    if date_from is None:
        raise ValidationFailed("date_from is required: the first day (or moment) to read", "date_from", BACKFILL_FROM_MISSING())
    if date_from > now:
        raise ValidationFailed("date_from is in the future", "date_from", BACKFILL_FROM_FUTURE())
    if date_till is None or date_till > now:
        date_till = now  # the log ends now; a day that has not ended yet is read up to now
    if date_from > date_till:
        raise ValidationFailed("date_from is after date_till", "date_from", DATES_REVERSED())
    if date_till - date_from > timedelta(days=BACKFILL_MAX_DAYS):
        raise ValidationFailed(f"the period is longer than {BACKFILL_MAX_DAYS} days: split it into several backfills", "date_till",
                               BACKFILL_TOO_LONG(days=BACKFILL_MAX_DAYS))
    if integration.status != "connected" or not integration.access_token_enc:
        raise NotConnected("the integration is not connected to amoCRM: connect it first" if integration.status != "needs_reauth"
                           else "amoCRM needs the integration reconnected")
    if not integration.is_active:
        raise NotConnected("the integration is switched off: activate it first (chats found would only be ignored)",
                           "not_active")
    run = ReconcileRun(account_id=account_id, integration_id=integration.id, status="queued", date_from=date_from,
                       date_till=date_till, requested_by=requested_by, pages=0, events=0, talks_found=0,
                       already_recorded=0, recovered=0, not_closed=0, not_found=0, unreadable=0)
    session.add(run)
    session.flush()
    return run


@dataclass
class BackfillOutcome:
    run_id: int
    result: str  # done | failed | busy | nothing
    to_enqueue: list[int] = field(default_factory=list)


def run_backfill(services: Services, run_id: int) -> BackfillOutcome:
    """Read the run's period one day at a time, oldest first, saving its counters after every page and
    `reached` after every day (a retried message resumes there)."""
    with services.session_factory() as session:
        run = session.get(ReconcileRun, run_id)
        if run is None or run.status not in ("queued", "running"):
            return BackfillOutcome(run_id, "nothing")
        integration_id = run.integration_id
    with services.locks.try_lock(f"reconcile:{integration_id}", timeout_s=LOCK_SECONDS) as acquired:
        if not acquired:
            return BackfillOutcome(run_id, "busy")
        return _backfill_locked(services, run_id)


_COUNTERS = ("pages", "events", "talks_found", "already_recorded", "recovered", "not_closed", "not_found", "unreadable")


def _backfill_locked(services: Services, run_id: int) -> BackfillOutcome:
    with services.session_factory() as session:
        run = session.get(ReconcileRun, run_id)
        run.status = "running"
        run.started_at = run.started_at or utcnow()
        session.commit()
        integration_id, date_from, date_till = run.integration_id, run.date_from, run.date_till
        position = run.reached or date_from
        counts = Counts(**{k: getattr(run, k) or 0 for k in _COUNTERS})

    def save(values: dict) -> None:
        with services.session_factory() as session:
            session.execute(sa.update(ReconcileRun).where(ReconcileRun.id == run_id)
                            .values(**counts.to_dict(), **values).execution_options(synchronize_session=False))
            session.commit()

    recovered_before = counts.recovered
    error = None
    try:
        client = AmoCrmClient(services, integration_id)
        while position < date_till:
            end = min(position + BACKFILL_WINDOW, date_till)
            reconcile_window(services, integration_id, _ts(position), _ts(end), counts, client=client,
                             on_page=lambda _counts: save({}))
            position = end
            save({"reached": position})
    except (AmoCrmError, RateLimitTimeout) as exc:
        error = _error_text(exc)
        log.warning("backfill %s of integration %s stopped: %s", run_id, integration_id, error)
    save({"status": "failed" if error else "done", "error": error, "finished_at": utcnow()})
    with services.session_factory() as session:
        session.execute(sa.update(Integration).where(Integration.id == integration_id).values(
            reconcile_recovered_total=Integration.reconcile_recovered_total + (counts.recovered - recovered_before))
            .execution_options(synchronize_session=False))
        session.commit()
    return BackfillOutcome(run_id, "failed" if error else "done", counts.to_enqueue)


def fail_backfill(session: Session, run_id: int, error: str) -> None:
    """The worker message gave up (time limit, retries): the run must not look as if it still runs."""
    run = session.get(ReconcileRun, run_id)
    if run is not None and run.status in ("queued", "running"):
        run.status, run.error, run.finished_at = "failed", (error or "the worker gave up")[:2000], utcnow()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


def backfill_to_dict(run: ReconcileRun) -> dict:
    span = (run.date_till - run.date_from).total_seconds()
    if run.status in ("done", "failed"):
        progress = 1.0 if run.status == "done" else None
    elif run.reached is None or span <= 0:
        progress = 0.0
    else:
        progress = (run.reached - run.date_from).total_seconds() / span
    if progress is None:  # failed: how far it got
        progress = ((run.reached - run.date_from).total_seconds() / span) if run.reached and span > 0 else 0.0
    return {
        "id": run.id,
        "backfill_id": run.id,
        "integration_id": run.integration_id,
        "status": run.status,
        "date_from": _iso(run.date_from),
        "date_till": _iso(run.date_till),
        "reached": _iso(run.reached),
        **{k: getattr(run, k) or 0 for k in _COUNTERS},
        "error": run.error,
        "requested_by": run.requested_by,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "finished": run.status in ("done", "failed"),
        "progress": round(min(max(progress, 0.0), 1.0), 4),
        "progress_url": f"/api/v1/backfills/{run.id}",
    }


def backfill_progress(session: Session, account_id: int, run_id) -> dict:
    return backfill_to_dict(get_owned(session, ReconcileRun, account_id, run_id))


def list_backfills(session: Session, account_id: int, integration_id: int, limit: int = 5) -> list[dict]:
    runs = session.scalars(sa.select(ReconcileRun).where(
        ReconcileRun.account_id == account_id, ReconcileRun.integration_id == integration_id)
        .order_by(ReconcileRun.id.desc()).limit(limit))
    return [backfill_to_dict(run) for run in runs]

