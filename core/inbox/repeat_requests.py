"""Repeat requests («повторное обращение»), as UIS counts them: a request whose contact already made
a request within the account's repeat window (`Account.repeat_window_days`, 30 days unless changed)
is a repeat one and points at the first request of that series.

- The contact is the amoCRM contact (per integration: ids are amoCRM's), else the E.164 phone, else
  the e-mail (`contact_key`). A request with none of them is always new.
- The series is ordered by the chat's creation time (then id), not by when we recorded it: a talk
  found late by reconciliation, or a replay, can be older than requests already recorded, so each
  recording recomputes the whole series of its contact (`mark_request`). The flags are therefore a
  function of the requests and the window only — recording in any order, twice, or recomputing
  again gives the same answer.
- Race safety: `mark_request` takes the account row (FOR NO KEY UPDATE: it does not wait for the
  key-share locks that inserting requests takes) before reading the series, so two chats of one
  contact recorded in concurrent batches are serialised and exactly one of them is primary. On
  SQLite the writer lock does the same.
- Changing the window (`change_window`) creates a `RepeatRecomputeRun`, which a worker runs
  (`run_recompute`) contact by contact, in chunks, with its progress stored; a newer run supersedes
  an older one of the same account.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from core.models import Account, ChatRequest, RepeatRecomputeRun
from core.platform.db import utcnow
from core.platform.errors import NotFound, ValidationFailed

DEFAULT_WINDOW_DAYS = 30
MIN_WINDOW_DAYS = 1
MAX_WINDOW_DAYS = 365
RECOMPUTE_CHUNK = 200
ACTIVE_RUN_STATUSES = ("queued", "running")


def contact_key(integration_id: int, amo_contact_id: int | None, phone: str | None, email: str | None) -> str | None:
    """Who the request is from: the amoCRM contact, else the E.164 phone, else the e-mail."""
    if amo_contact_id:
        return f"amo:{integration_id}:{amo_contact_id}"
    if phone and phone.startswith("+"):
        return f"tel:{phone}"
    email = (email or "").strip().casefold()
    if email:
        return f"email:{email}"[:300]
    return None


def series_flags(rows: Iterable[tuple[int, datetime]], window: timedelta,
                 after: tuple[datetime, int] | None = None) -> dict[int, tuple[bool, int | None]]:
    """(id, created_at) of one contact's requests → id: (is_repeat, first_request_id).

    A request is repeat when the contact's previous request was at most `window` before it; it points
    at the request that opened the series (the last one that was not repeat). `after`: the request
    right before these rows, as (its created_at, the id of its series' first request), when the rows
    are the tail of a longer series whose earlier flags stand."""
    flags: dict[int, tuple[bool, int | None]] = {}
    previous_at, first_id = after if after else (None, None)
    for request_id, created_at in sorted(rows, key=lambda r: (r[1], r[0])):
        if first_id is not None and created_at - previous_at <= window:
            flags[request_id] = (True, first_id)
        else:
            first_id = request_id
            flags[request_id] = (False, None)
        previous_at = created_at
    return flags


def lock_window(session: Session, account_id: int) -> int:
    """The account's repeat window, with the account row locked until the transaction ends."""
    days = session.scalar(sa.select(Account.repeat_window_days).where(Account.id == account_id)
                          .with_for_update(key_share=True))
    return days or DEFAULT_WINDOW_DAYS


def recompute_contacts(session: Session, account_id: int, keys: list[str], window_days: int,
                       since: datetime | None = None) -> int:
    """Set the flags of these contacts' series (read in one query); returns how many requests changed.

    `since`: only requests created at or after it are new to the series (what a batch just inserted).
    The flags before them stand, so each series is read from the last request before `since` on: for
    the usual new chat, that request and the new one, not the contact's whole history."""
    c = ChatRequest
    query = sa.select(c.id, c.contact_key, c.created_at, c.is_repeat, c.first_request_id).where(
        c.account_id == account_id, c.contact_key.in_(keys))
    if since is not None:
        earlier = aliased(ChatRequest)
        last_before = (sa.select(sa.func.max(earlier.created_at))
                       .where(earlier.account_id == c.account_id, earlier.contact_key == c.contact_key,
                              earlier.created_at < since)
                       .scalar_subquery())
        query = query.where(c.created_at >= sa.func.coalesce(last_before, sa.literal(since, c.created_at.type)))
    series: dict[str, list] = {}
    for r in session.execute(query).all():
        series.setdefault(r.contact_key, []).append(r)
    window = timedelta(days=window_days)
    changes = []
    for members in series.values():
        members.sort(key=lambda r: (r.created_at, r.id))
        after = None
        if since is not None and members[0].created_at < since:  # the request before the new ones: it stands
            anchor = members.pop(0)
            after = (anchor.created_at, anchor.first_request_id if anchor.is_repeat else anchor.id)
        wanted = series_flags(((r.id, r.created_at) for r in members), window, after)
        for r in members:
            is_repeat, first_id = wanted[r.id]
            if (bool(r.is_repeat), r.first_request_id) != (is_repeat, first_id):
                changes.append({"rid": r.id, "repeat": is_repeat, "first": first_id})
    if changes:
        session.execute(sa.update(c.__table__).where(c.__table__.c.id == sa.bindparam("rid"))
                        .values(is_repeat=sa.bindparam("repeat"), first_request_id=sa.bindparam("first")), changes)
    return len(changes)


def recompute_contact(session: Session, account_id: int, key: str, window_days: int) -> int:
    """Set the flags of one contact's series; returns how many requests changed."""
    return recompute_contacts(session, account_id, [key], window_days)


def mark_request(session: Session, request_id: int) -> None:
    """Called where a request is recorded (core.inbox.talk_processing.record_request), in its transaction:
    fill its contact key and recompute its contact's series."""
    mark_requests(session, [request_id])


def mark_requests(session: Session, request_ids: list[int],
                  inserted_with_keys: dict[int, tuple[int, str | None, datetime]] | None = None) -> None:
    """`mark_request` for a batch of one account's requests recorded in one transaction
    (core.inbox.talk_processing): their rows in one query, the account row locked once, every touched
    contact's series recomputed from the batch's earliest chat on in one read. `inserted_with_keys`:
    request id → (account id, contact key, created_at) of rows the caller has just inserted with that
    key, which need not be read back."""
    c = ChatRequest
    known = inserted_with_keys or {}
    by_account: dict[int, set[str]] = {}
    since: dict[int, datetime] = {}

    def touch(account_id: int, key: str, created_at: datetime) -> None:
        by_account.setdefault(account_id, set()).add(key)
        since[account_id] = min(since.get(account_id, created_at), created_at)

    for account_id, key, created_at in known.values():
        if key is not None:
            touch(account_id, key, created_at)
    unknown = sorted(set(request_ids) - set(known))
    rows = session.execute(sa.select(c.id, c.account_id, c.integration_id, c.amo_contact_id, c.phone, c.email,
                                     c.contact_key, c.created_at)
                           .where(c.id.in_(unknown))).all() if unknown else []
    missing_keys = []
    for row in rows:
        key = row.contact_key or contact_key(row.integration_id, row.amo_contact_id, row.phone, row.email)
        if key is None:
            continue
        touch(row.account_id, key, row.created_at)
        if row.contact_key is None:
            missing_keys.append({"rid": row.id, "key": key})
    for account_id in sorted(by_account):
        window_days = lock_window(session, account_id)
        if missing_keys:
            session.execute(sa.update(c.__table__).where(c.__table__.c.id == sa.bindparam("rid"))
                            .values(contact_key=sa.bindparam("key")), missing_keys)
            missing_keys = []
        recompute_contacts(session, account_id, sorted(by_account[account_id]), window_days, since[account_id])


# --- changing the window ---------------------------------------------------------------------------

def parse_window(raw) -> int:
    """Days from a form or JSON; `ValidationFailed` (field `repeat_window_days`) unless 1…365."""
    text = str(raw).strip() if raw is not None and not isinstance(raw, bool) else ""
    if not text.isdigit() or not MIN_WINDOW_DAYS <= int(text) <= MAX_WINDOW_DAYS:
        raise ValidationFailed(
            f"repeat_window_days must be a whole number of days from {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS}",
            "repeat_window_days")
    return int(text)


def change_window(session: Session, account_id: int, days: int, requested_by: str | None = None) -> RepeatRecomputeRun | None:
    """Set the window; returns the recompute run to enqueue after commit (None when unchanged)."""
    account = session.get(Account, account_id, with_for_update={"key_share": True})
    if account is None:
        raise NotFound("account")
    if account.repeat_window_days == days:
        return None
    account.repeat_window_days = days
    run = RepeatRecomputeRun(account_id=account_id, window_days=days, status="queued",
                             contacts_total=_count_contacts(session, account_id), requested_by=requested_by)
    session.add(run)
    session.flush()
    return run


def _count_contacts(session: Session, account_id: int) -> int:
    c = ChatRequest
    return session.scalar(sa.select(sa.func.count(sa.distinct(c.contact_key)))
                          .where(c.account_id == account_id, c.contact_key.is_not(None))) or 0


@dataclass
class RecomputeOutcome:
    result: str  # done | superseded | nothing
    changed: int = 0


def run_recompute(session_factory, run_id: int, chunk: int = RECOMPUTE_CHUNK) -> RecomputeOutcome:
    """Recompute every contact's series with the run's window, `chunk` contacts per transaction, from
    where a previous attempt stopped. Stops as superseded when the window changed again."""
    with session_factory() as session:
        run = session.get(RepeatRecomputeRun, run_id)
        if run is None or run.status not in ACTIVE_RUN_STATUSES:
            return RecomputeOutcome("nothing")
        run.status, run.started_at = "running", run.started_at or utcnow()
        session.commit()
    while True:
        with session_factory() as session:
            run = session.get(RepeatRecomputeRun, run_id)
            window_days = lock_window(session, run.account_id)
            if window_days != run.window_days or _newer_run_exists(session, run):
                _finish(run, "superseded")
                session.commit()
                return RecomputeOutcome("superseded", run.changed)
            keys = _next_keys(session, run.account_id, run.cursor_key, chunk)
            if not keys:
                run.contacts_total = max(run.contacts_total, run.contacts_done)
                _finish(run, "done")
                session.commit()
                return RecomputeOutcome("done", run.changed)
            run.changed += recompute_contacts(session, run.account_id, keys, window_days)
            run.contacts_done += len(keys)
            run.cursor_key = keys[-1]
            session.commit()


def fail_recompute(session: Session, run_id: int, error: str) -> None:
    run = session.get(RepeatRecomputeRun, run_id)
    if run is not None and run.status in ACTIVE_RUN_STATUSES:
        run.error = error[:2000]
        _finish(run, "failed")


def _finish(run: RepeatRecomputeRun, status: str) -> None:
    run.status, run.finished_at = status, utcnow()


def _newer_run_exists(session: Session, run: RepeatRecomputeRun) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(RepeatRecomputeRun).where(
        RepeatRecomputeRun.account_id == run.account_id, RepeatRecomputeRun.id > run.id)) > 0


def _next_keys(session: Session, account_id: int, after: str | None, limit: int) -> list[str]:
    c = ChatRequest
    stmt = sa.select(c.contact_key).where(c.account_id == account_id, c.contact_key.is_not(None))
    if after is not None:
        stmt = stmt.where(c.contact_key > after)
    return list(session.scalars(stmt.group_by(c.contact_key).order_by(c.contact_key).limit(limit)))


def run_to_dict(run: RepeatRecomputeRun) -> dict:
    total = max(run.contacts_total, run.contacts_done)
    return {
        "id": run.id, "window_days": run.window_days, "status": run.status,
        "contacts_total": total, "contacts_done": run.contacts_done, "changed": run.changed,
        "percent": 100 if run.status == "done" else (int(run.contacts_done * 100 / total) if total else 0),
        "error": run.error, "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def latest_run(session: Session, account_id: int) -> RepeatRecomputeRun | None:
    return session.scalars(sa.select(RepeatRecomputeRun).where(RepeatRecomputeRun.account_id == account_id)
                           .order_by(RepeatRecomputeRun.id.desc()).limit(1)).first()


def get_run(session: Session, account_id: int, run_id: int) -> RepeatRecomputeRun:
    run = session.get(RepeatRecomputeRun, run_id)
    if run is None or run.account_id != account_id:
        raise NotFound("repeat recompute run")
    return run


def window_days(session: Session, account_id: int) -> int:
    return session.scalar(sa.select(Account.repeat_window_days).where(Account.id == account_id)) or DEFAULT_WINDOW_DAYS


# --- the dashboard's new vs repeat -------------------------------------------------------------------

def new_vs_repeat(session: Session, account_id: int, start: datetime, end: datetime,
                  integration_id: int | None = None) -> dict:
    """How many of the period's requests were new and how many repeat (for core.reporting.dashboard)."""
    c = ChatRequest
    where = [c.account_id == account_id, c.created_at >= start, c.created_at < end]
    if integration_id:
        where.append(c.integration_id == integration_id)
    counts = dict(session.execute(sa.select(c.is_repeat, sa.func.count()).where(*where).group_by(c.is_repeat)).all())
    return repeat_split(session, account_id, counts)


def repeat_split(session: Session, account_id: int, counts: dict) -> dict:
    """The dashboard's new/repeat block from {is_repeat: count} (the raw rows' or the roll-up's)."""
    repeat = sum(int(n) for flag, n in counts.items() if flag)
    new = sum(int(n) for flag, n in counts.items() if not flag)
    total = new + repeat
    return {"new": new, "repeat": repeat, "repeat_share": round(repeat / total, 4) if total else 0.0,
            "window_days": window_days(session, account_id)}
