"""The dashboard (the admin's first page and `GET /api/v1/dashboard`): where chats come from, day by
day, and whether every integration is healthy — with warnings before data is lost.

`build_dashboard(session, account_id, date_from, date_till, tz=...)` returns one JSON-ready dict:

- `days` and, per day, requests by channel, by ad campaign and by source (the biggest series, the
  rest summed as «other»), and by attribution;
- `attribution`: the share attributed by session / messenger / default for the range and the period
  before it — the number a marketer watches, because a falling session share means the site script
  stopped handing over the session id;
- `integrations`: health rows (`integration_health`): token expiry and refresh-token age, webhook
  registered / disabled on the amoCRM side and when that was last checked, the inbox backlog by
  status with the oldest waiting event, the last error, the last event and the last request;
- `warnings` (`HealthWarning.to_dict`): needs re-authorisation, webhook disabled or missing, refresh token
  close to amoCRM's three-month limit, a stuck backlog, failed events, a spike of default-attributed
  requests against the previous period, a recent error.

Days are local to the account's time zone (`tz`, Europe/Moscow by default). The SQL groups in the
database on indexed columns: `AT TIME ZONE` on PostgreSQL, a registered Python function on SQLite.

Warning texts are messages (core/platform/messages.py: code `dashboard.<code>`, English msgid, `%(name)s`
params). `catalogues` maps a language to its gettext catalogue (the web layer's); labels are said
in `lang` and each warning's `message` in English and `message_ru` in Russian, as the API promises.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.amocrm.messengers import channel_label
from core.inbox import event_status
from core.inbox.event_status import EventStatus
from core.inbox.repeat_requests import new_vs_repeat, repeat_split
from core.inbox.worker_health import ProcessingState
from core.models import Campaign, ChatRequest, Integration, RequestDailyCount, Source, WebhookEvent
from core.platform.db import utcnow
from core.platform.errors import DATES_REVERSED, ValidationFailed
from core.platform.messages import N_, Message, Translations, define, render
from core.reporting.report import (
    ATTRIBUTIONS,
    DEFAULT_TZ,
    ISO_DAY,
    attribution_label,
    get_zone,
    local_day_bounds,
)
from core.reporting.rollup import ROLLUP_ZONE

DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 366
PERIOD_TOO_LONG = define("dashboard.period_too_long", N_(
    "The period is longer than %(days)s days; choose a shorter one."))
TOP_SERIES = 8
PENDING_STATUSES = event_status.PENDING
BACKLOG_STATUSES = event_status.BACKLOG
REFRESH_TOKEN_LIFETIME_DAYS = 90  # amoCRM revokes a refresh token unused for three months
REFRESH_TOKEN_WARN_DAYS = 80
BACKLOG_STUCK_MINUTES = 15
BACKLOG_LARGE = 1000
RECENT_ERROR_HOURS = 24
SPIKE_MIN_REQUESTS = 20  # in each period, so a handful of chats cannot raise the alarm
SPIKE_POINTS = 0.20  # the default share grew by 20 percentage points or more
INTEGRATION_SPIKE_DAYS = 7




_TEMPLATES = {
    "needs_reauth": N_("«%(name)s»: amoCRM revoked the authorisation. Press «Connect» and allow access again; "
                       "%(parked)s events are waiting."),
    "webhook_disabled": N_("«%(name)s»: amoCRM disabled the webhook (after many failed deliveries), so closed chats "
                           "do not reach us. Enable it in amoCRM → Settings → Integrations → Webhooks or press "
                           "«Register the webhook in amoCRM»."),
    "webhook_missing": N_("«%(name)s»: amoCRM has no webhook with our «Webhook url», so closed chats do not reach us. "
                          "Press «Register the webhook in amoCRM» or add the url for the event «Talk changed»."),
    "refresh_token_old": N_("«%(name)s»: the amoCRM token was last refreshed %(age)s days ago; amoCRM revokes it in "
                            "%(left)s days. Check that the worker runs, or reconnect the integration."),
    "backlog": N_("«%(name)s»: %(pending)s events are waiting, the oldest arrived %(minutes)s minutes ago. Check that "
                  "the worker runs, and the last error."),
    "events_failed": N_("«%(name)s»: %(failed)s events failed after every retry. Fix the cause and replay them."),
    "default_spike": N_("«%(name)s»: the share of requests attributed by default rose to %(current)s%% (was "
                        "%(previous)s%%). The site script may have stopped handing the session to amoCRM."),
    "last_error": N_("«%(name)s»: last error: %(error)s"),
    "no_worker": N_("The worker is not running: start the Procfile's worker process (or «make run», which starts "
                    "both). Events have waited %(minutes)s min and no requests are being created."),
}
MESSAGES = {code: define(f"dashboard.{code}", template) for code, template in _TEMPLATES.items()}
OTHER = define("dashboard.other", N_("Other"))
NO_CAMPAIGN = define("dashboard.no_campaign", N_("No ad campaign"))
NO_SOURCE = define("dashboard.no_source", N_("No source"))
DELETED = define("dashboard.deleted", N_("Deleted (#%(id)s)"))
SEVERITY = {"needs_reauth": "error", "webhook_disabled": "error", "webhook_missing": "error", "no_worker": "error"}


@dataclass
class HealthWarning:
    code: str
    integration_id: int | None
    integration_name: str | None
    params: dict = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.code, "warning")

    def as_message(self) -> Message:
        return MESSAGES[self.code](name=self.integration_name or "", **self.params)

    def message(self, translations: Translations | None = None) -> str:
        return render(self.as_message(), translations)

    def to_dict(self, catalogues: Mapping[str, Translations] | None = None) -> dict:
        catalogues = catalogues or {}
        return {
            "code": self.code,
            "severity": self.severity,
            "integration_id": self.integration_id,
            "integration_name": self.integration_name,
            "params": self.params,
            "template": MESSAGES[self.code].template,
            "message": self.message(catalogues.get("en")),
            "message_ru": self.message(catalogues.get("ru")),
        }


# --- the date range ------------------------------------------------------------------------------

def parse_day(raw, field: str) -> date | None:
    """A calendar day: a `date`, or text «2026-11-24»."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        if not ISO_DAY.match(str(raw)):
            raise ValueError
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ValidationFailed(f"{field} must be a date such as 2026-11-24", field) from None


def resolve_range(date_from=None, date_till=None, tz: str | None = None, today: date | None = None) -> tuple[date, date, ZoneInfo]:
    """Local days, both inclusive; the last 30 days up to today by default."""
    zone = get_zone(tz or DEFAULT_TZ)
    today = today or datetime.now(zone).date()
    till = parse_day(date_till, "date_till") or today
    start = parse_day(date_from, "date_from") or (till - timedelta(days=DEFAULT_RANGE_DAYS - 1))
    if start > till:
        raise ValidationFailed("date_from is after date_till", "date_from", DATES_REVERSED())
    if (till - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed(f"the range is longer than {MAX_RANGE_DAYS} days", "date_from", PERIOD_TOO_LONG(days=MAX_RANGE_DAYS))
    if start.year < 1970 or till.year > 9000:
        raise ValidationFailed("dates must be between 1970 and 9000", "date_from")
    return start, till, zone


# --- SQL helpers ---------------------------------------------------------------------------------

def local_day(session: Session, column, zone: ZoneInfo):
    """The local calendar day of a UTC timestamp column, computed in the database."""
    zone_sql = sa.literal_column("'" + zone.key.replace("'", "") + "'")  # get_zone allows [A-Za-z0-9_+-/] only
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone(zone_sql, column), sa.Date)
    if connection.dialect.name == "sqlite":
        return sa.func.cs_local_day(column, zone_sql)  # registered on every connection (core.platform.db)
    raise NotImplementedError(connection.dialect.name)  # pragma: no cover - PostgreSQL and SQLite only


def _day_key(value) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


def _shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: (round(counts.get(k, 0) / total, 4) if total else 0.0) for k in ATTRIBUTIONS}


# --- the dashboard -------------------------------------------------------------------------------

def build_dashboard(session: Session, account_id: int, date_from=None, date_till=None, *, tz: str | None = None,
                    integration_id: int | None = None, lang: str = "ru",
                    catalogues: Mapping[str, Translations] | None = None, now: datetime | None = None,
                    today: date | None = None, processing: ProcessingState | None = None) -> dict:
    """`processing`: whether a worker consumes the queue (core.inbox.worker_health), when the caller can tell."""
    start_day, till_day, zone = resolve_range(date_from, date_till, tz, today)
    days = [(start_day + timedelta(days=i)).isoformat() for i in range((till_day - start_day).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    tally = count_requests_per_day(session, account_id, zone, start_day, till_day, index, integration_id)
    by_channel, by_campaign, by_source, by_attribution = (
        tally.by_channel, tally.by_campaign, tally.by_source, tally.by_attribution)
    per_integration_now = tally.per_integration
    per_integration_before = _by_integration(request_counts(
        session, account_id, zone, start_day - timedelta(days=len(days)), start_day - timedelta(days=1), integration_id))

    campaign_names = _names(session, Campaign, account_id, by_campaign)
    source_names = _names(session, Source, account_id, by_source)
    catalogues = catalogues or {}
    translations = catalogues.get(lang)
    other = render(OTHER(), translations)
    current = {k: sum(v) for k, v in by_attribution.items()}
    previous = {k: sum(counts[k] for counts in per_integration_before.values()) for k in ATTRIBUTIONS}

    health = integration_health(session, account_id, now=now, integration_id=integration_id)
    warnings = health_warnings(health, now=now)
    warnings += spike_warnings(health, per_integration_now, per_integration_before)
    warnings += worker_warnings(processing)
    warnings.sort(key=lambda w: (w.severity != "error", w.integration_id or 0, w.code))

    return {
        "range": {"date_from": start_day.isoformat(), "date_till": till_day.isoformat(), "tz": zone.key,
                  "days": len(days), "previous_from": (start_day - timedelta(days=len(days))).isoformat(),
                  "previous_till": (start_day - timedelta(days=1)).isoformat()},
        "integration_id": integration_id,
        "days": days,
        "total": sum(current.values()),
        "by_channel": _series(by_channel, lambda k: channel_label(k, translations), other, with_id=False),
        "by_campaign": _series(by_campaign, lambda k: campaign_names.get(k) or _none_label("campaign", k, translations), other),
        "by_source": _series(by_source, lambda k: source_names.get(k) or _none_label("source", k, translations), other),
        "attribution": {
            "total": sum(current.values()),
            "counts": current,
            "shares": _shares(current),
            "labels": {k: attribution_label(k, translations) for k in ATTRIBUTIONS},
            "per_day": by_attribution,
            "previous": {"total": sum(previous.values()), "counts": previous, "shares": _shares(previous)},
        },
        "integrations": [h.to_dict() for h in health],
        "warnings": [w.to_dict(catalogues) for w in warnings],
        "repeat": (repeat_split(session, account_id, tally.repeat) if tally.repeat is not None  # the roll-up's
                   else new_vs_repeat(session, account_id, *local_day_bounds(start_day, till_day, zone), integration_id)),
    }


def _none_label(kind: str, key, translations: Translations | None) -> str:
    if key is None:
        return render((NO_CAMPAIGN if kind == "campaign" else NO_SOURCE)(), translations)
    return render(DELETED(id=key), translations)


def _names(session: Session, model, account_id: int, keys) -> dict[int, str]:
    ids = {k for k in keys if k is not None}
    if not ids:
        return {}
    return dict(session.execute(sa.select(model.id, model.name).where(model.account_id == account_id, model.id.in_(ids))).all())


def _series(data: dict, label, other_label: str, with_id: bool = True) -> list[dict]:
    """The biggest TOP_SERIES series by total, then the rest summed as «other» (`merged` says how many)."""
    ordered = sorted(data.items(), key=lambda kv: (-sum(kv[1]), str(kv[0])))
    result = []
    for k, per_day in ordered[:TOP_SERIES]:
        item = {"key": "none" if k is None else str(k), "label": label(k), "total": sum(per_day), "per_day": per_day}
        if with_id:
            item = {"id": k, **item}
        result.append(item)
    rest = ordered[TOP_SERIES:]
    if rest:
        per_day = [sum(values) for values in zip(*(v for _, v in rest))]
        item = {"key": "other", "label": other_label, "total": sum(per_day), "per_day": per_day, "merged": len(rest)}
        result.append({"id": None, **item} if with_id else item)
    return result


@dataclass
class Tally:
    """Requests of a range of local days: per day (a list by the range's day index) by channel, by
    campaign, by source and by attribution, and per integration by attribution; `repeat` is
    {is_repeat: count} of the range when read from the roll-up (None from the raw rows)."""
    days: int
    by_channel: dict = field(default_factory=dict)
    by_campaign: dict = field(default_factory=dict)
    by_source: dict = field(default_factory=dict)
    by_attribution: dict = field(default_factory=dict)
    per_integration: dict = field(default_factory=dict)
    repeat: dict | None = None

    def __post_init__(self):
        for name in ("by_channel", "by_campaign", "by_source"):
            setattr(self, name, defaultdict(lambda: [0] * self.days))
        self.by_attribution = {k: [0] * self.days for k in ATTRIBUTIONS}
        self.per_integration = defaultdict(lambda: {k: 0 for k in ATTRIBUTIONS})

    def add(self, series: dict, key, i: int | None, n) -> None:
        if i is not None and (series is not self.by_attribution or key in series):
            series[key][i] += int(n)


def count_requests_per_day(session: Session, account_id: int, zone: ZoneInfo, first_day: date, last_day: date,
                           index: dict[str, int], integration_id: int | None = None) -> Tally:
    """The dashboard's counts. From the daily roll-up when the zone is its zone (the admin's): one
    small GROUP BY per series, so a year costs what a week does — grouping by every key at once
    would hand ~76,000 rows (days × channels × campaigns × sources × …) to Python. From the raw rows
    in any other zone (a day there is not a sum of the roll-up's days): one pass, folded here."""
    tally = Tally(len(index))
    if zone.key != ROLLUP_ZONE:
        for r in request_counts(session, account_id, zone, first_day, last_day, integration_id, by_day=True):
            i = index.get(_day_key(r.day))
            for series, key in ((tally.by_channel, r.channel), (tally.by_campaign, r.campaign_id),
                                (tally.by_source, r.source_id), (tally.by_attribution, r.attribution)):
                tally.add(series, key, i, r.n)
            if r.attribution in ATTRIBUTIONS:
                tally.per_integration[r.integration_id][r.attribution] += int(r.n)
        return tally
    r = RequestDailyCount
    where = [r.account_id == account_id, r.day >= first_day, r.day <= last_day]
    if integration_id:
        where.append(r.integration_id == integration_id)
    if session.get_bind().dialect.name == "postgresql":
        return _tally_in_one_scan(session, where, tally, index)
    for series, column in ((tally.by_channel, r.channel), (tally.by_campaign, sa.func.nullif(r.campaign_id, 0)),
                           (tally.by_source, sa.func.nullif(r.source_id, 0)), (tally.by_attribution, r.attribution)):
        for day, key, n in session.execute(sa.select(r.day, column, sa.func.sum(r.n)).where(*where).group_by(r.day, column)):
            tally.add(series, key, index.get(_day_key(day)), n)
    for iid, attribution, n in session.execute(
            sa.select(r.integration_id, r.attribution, sa.func.sum(r.n)).where(*where).group_by(r.integration_id, r.attribution)):
        if attribution in ATTRIBUTIONS:
            tally.per_integration[iid][attribution] += int(n)
    tally.repeat = {bool(flag): int(n) for flag, n in
                    session.execute(sa.select(r.is_repeat, sa.func.sum(r.n)).where(*where).group_by(r.is_repeat))}
    return tally


def _tally_in_one_scan(session: Session, where: list, tally: Tally, index: dict[str, int]) -> Tally:
    """PostgreSQL: the five series and the new/repeat split in one pass over the roll-up (GROUPING
    SETS) — a third of the time of five queries on a year. Its key columns are NOT NULL, so a NULL
    says «not this set»."""
    r = RequestDailyCount
    sets = sa.func.grouping_sets(sa.tuple_(r.day, r.channel), sa.tuple_(r.day, r.campaign_id),
                                 sa.tuple_(r.day, r.source_id), sa.tuple_(r.day, r.attribution),
                                 sa.tuple_(r.integration_id, r.attribution), sa.tuple_(r.is_repeat))
    stmt = (sa.select(r.day, r.channel, r.campaign_id, r.source_id, r.attribution, r.integration_id, r.is_repeat,
                      sa.func.sum(r.n)).where(*where).group_by(sets))
    tally.repeat = {}
    for day, channel, campaign, source, attribution, iid, is_repeat, n in session.execute(stmt):
        if is_repeat is not None:
            tally.repeat[bool(is_repeat)] = int(n)
            continue
        if day is None:
            if attribution in ATTRIBUTIONS:
                tally.per_integration[iid][attribution] += int(n)
            continue
        i = index.get(_day_key(day))
        if channel is not None:
            tally.add(tally.by_channel, channel, i, n)
        elif campaign is not None:
            tally.add(tally.by_campaign, campaign or None, i, n)
        elif source is not None:
            tally.add(tally.by_source, source or None, i, n)
        else:
            tally.add(tally.by_attribution, attribution, i, n)
    return tally


def request_counts(session: Session, account_id: int, zone: ZoneInfo, first_day: date, last_day: date,
                   integration_id: int | None = None, *, by_day: bool = False) -> list:
    """Requests of the local days first_day…last_day counted per integration and attribution (and,
    `by_day`, per day, channel, campaign and source): rows with `.n`; no campaign / source is None.
    From the roll-up in its zone, from the raw rows in any other."""
    if zone.key == ROLLUP_ZONE:
        r = RequestDailyCount
        where = [r.account_id == account_id, r.day >= first_day, r.day <= last_day]
        keys = [r.integration_id, r.attribution]
        if by_day:
            keys += [r.day, r.channel, sa.func.nullif(r.campaign_id, 0).label("campaign_id"),
                     sa.func.nullif(r.source_id, 0).label("source_id")]
        total = sa.func.sum(r.n)
    else:
        start, end = local_day_bounds(first_day, last_day, zone)
        r = ChatRequest
        where = [r.account_id == account_id, r.created_at >= start, r.created_at < end]
        keys = [r.integration_id, r.attribution]
        if by_day:
            keys += [local_day(session, r.created_at, zone).label("day"), r.channel, r.campaign_id, r.source_id]
        total = sa.func.count()
    if integration_id:
        where.append(r.integration_id == integration_id)
    return session.execute(sa.select(*keys, total.label("n")).where(*where).group_by(*keys)).all()


def _by_integration(rows) -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = defaultdict(lambda: {k: 0 for k in ATTRIBUTIONS})
    for row in rows:
        if row.attribution in ATTRIBUTIONS:
            result[row.integration_id][row.attribution] += int(row.n)
    return result


def _attribution_by_integration(session: Session, account_id: int, start: datetime, end: datetime,
                                integration_id: int | None = None) -> dict[int, dict[str, int]]:
    c = ChatRequest
    where = [c.account_id == account_id, c.created_at >= start, c.created_at < end]
    if integration_id:
        where.append(c.integration_id == integration_id)
    result: dict[int, dict[str, int]] = defaultdict(lambda: {k: 0 for k in ATTRIBUTIONS})
    for iid, attribution, n in session.execute(
        sa.select(c.integration_id, c.attribution, sa.func.count()).where(*where).group_by(c.integration_id, c.attribution)
    ):
        if attribution in ATTRIBUTIONS:
            result[iid][attribution] = n
    return result


# --- integration health --------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class Health:
    id: int
    name: str
    status: str
    is_active: bool
    account_name: str | None
    token_expires_at: datetime | None
    token_refreshed_at: datetime | None
    webhook_registered_at: datetime | None
    webhook_disabled: bool
    webhook_checked_at: datetime | None
    backlog: dict[str, int]
    oldest_pending_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_event_at: datetime | None
    last_request_at: datetime | None
    now: datetime
    # Reconciliation with amoCRM's event log (core.inbox.reconciliation).
    reconciled_at: datetime | None = None
    reconcile_recovered_last: int = 0
    reconcile_recovered_total: int = 0
    reconcile_unreadable_total: int = 0
    reconcile_error: str | None = None

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    @property
    def refresh_token_age_days(self) -> int | None:
        if not self.connected or self.token_refreshed_at is None:
            return None
        return max((self.now - self.token_refreshed_at).days, 0)

    @property
    def refresh_token_expires_at(self) -> datetime | None:
        if not self.connected or self.token_refreshed_at is None:
            return None
        return self.token_refreshed_at + timedelta(days=REFRESH_TOKEN_LIFETIME_DAYS)

    @property
    def pending(self) -> int:
        return sum(self.backlog.get(s, 0) for s in PENDING_STATUSES)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "is_active": self.is_active,
            "account_name": self.account_name,
            "token_expires_at": _iso(self.token_expires_at),
            "token_refreshed_at": _iso(self.token_refreshed_at),
            "refresh_token_age_days": self.refresh_token_age_days,
            "refresh_token_expires_at": _iso(self.refresh_token_expires_at),
            "webhook_registered": self.webhook_registered_at is not None,
            "webhook_registered_at": _iso(self.webhook_registered_at),
            "webhook_disabled": self.webhook_disabled,
            "webhook_checked_at": _iso(self.webhook_checked_at),
            "backlog": {s.value: self.backlog.get(s, 0) for s in BACKLOG_STATUSES},
            "oldest_pending_at": _iso(self.oldest_pending_at),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
            "last_event_at": _iso(self.last_event_at),
            "last_request_at": _iso(self.last_request_at),
            "reconciliation": {
                "last_run_at": _iso(self.reconciled_at),
                "recovered_last_run": self.reconcile_recovered_last,
                "recovered_total": self.reconcile_recovered_total,
                "unreadable_total": self.reconcile_unreadable_total,
                "last_error": self.reconcile_error,
            },
        }


def integration_health(session: Session, account_id: int, *, now: datetime | None = None,
                       integration_id: int | None = None) -> list[Health]:
    now = now or utcnow()
    stmt = (sa.select(Integration).where(Integration.account_id == account_id, Integration.deleted_at.is_(None))
            .order_by(Integration.id))
    if integration_id:
        stmt = stmt.where(Integration.id == integration_id)
    integrations = list(session.scalars(stmt))
    if not integrations:
        return []
    ids = [i.id for i in integrations]
    e = WebhookEvent
    backlog: dict[int, dict[str, int]] = defaultdict(dict)
    oldest: dict[int, datetime] = {}
    for iid, status, n, first in session.execute(
        sa.select(e.integration_id, e.status, sa.func.count(), sa.func.min(e.received_at))
        .where(e.account_id == account_id, e.integration_id.in_(ids), e.status.in_(BACKLOG_STATUSES))
        .group_by(e.integration_id, e.status)
    ):
        backlog[iid][status] = n
        if status in PENDING_STATUSES and first is not None:
            first = first if first.tzinfo else first.replace(tzinfo=timezone.utc)
            oldest[iid] = min(oldest.get(iid, first), first)
    result = []
    for integration in integrations:
        last_request_at = session.scalar(  # one index probe per integration (account, integration, created_at)
            sa.select(sa.func.max(ChatRequest.created_at))
            .where(ChatRequest.account_id == account_id, ChatRequest.integration_id == integration.id)
        )
        result.append(Health(
            id=integration.id, name=integration.name, status=integration.status, is_active=integration.is_active,
            account_name=integration.amo_account_name or integration.amo_subdomain,
            token_expires_at=integration.token_expires_at,
            token_refreshed_at=integration.token_refreshed_at or integration.connected_at,
            webhook_registered_at=integration.webhook_registered_at, webhook_disabled=bool(integration.webhook_disabled),
            webhook_checked_at=integration.webhook_checked_at, backlog=dict(backlog.get(integration.id, {})),
            oldest_pending_at=oldest.get(integration.id), last_error=integration.last_error,
            last_error_at=integration.last_error_at, last_event_at=integration.last_event_at,
            last_request_at=last_request_at, now=now,
            reconciled_at=integration.reconciled_at,
            reconcile_recovered_last=integration.reconcile_recovered_last or 0,
            reconcile_recovered_total=integration.reconcile_recovered_total or 0,
            reconcile_unreadable_total=integration.reconcile_unreadable_total or 0,
            reconcile_error=integration.reconcile_error,
        ))
    return result


def health_warnings(health: list[Health], now: datetime | None = None) -> list[HealthWarning]:
    now = now or utcnow()
    warnings = []
    for h in health:
        w = lambda code, h=h, **params: warnings.append(HealthWarning(code, h.id, h.name, params))  # noqa: E731
        if h.status == "needs_reauth":
            w("needs_reauth", parked=h.backlog.get(EventStatus.PARKED, 0))
        elif h.connected:
            if h.webhook_disabled:
                w("webhook_disabled")
            elif h.webhook_registered_at is None and h.is_active:
                w("webhook_missing")
            age = h.refresh_token_age_days
            if age is not None and age >= REFRESH_TOKEN_WARN_DAYS:
                w("refresh_token_old", age=age, left=max(REFRESH_TOKEN_LIFETIME_DAYS - age, 0))
        if h.oldest_pending_at is not None and h.status != "needs_reauth":
            minutes = int((now - h.oldest_pending_at).total_seconds() // 60)
            if minutes >= BACKLOG_STUCK_MINUTES or h.pending >= BACKLOG_LARGE:
                w("backlog", pending=h.pending, minutes=max(minutes, 0))
        if h.backlog.get(EventStatus.FAILED):
            w("events_failed", failed=h.backlog[EventStatus.FAILED])
        if h.last_error and h.last_error_at and now - h.last_error_at <= timedelta(hours=RECENT_ERROR_HOURS) \
                and h.status != "needs_reauth":
            w("last_error", error=h.last_error[:300])
    return warnings


def spike_warnings(health: list[Health], current: dict[int, dict[str, int]], previous: dict[int, dict[str, int]]) -> list[HealthWarning]:
    """The default-attributed share of an integration's requests jumped against the period before."""
    warnings = []
    for h in health:
        now_counts, before_counts = current.get(h.id), previous.get(h.id)
        if not now_counts or not before_counts:
            continue
        now_total, before_total = sum(now_counts.values()), sum(before_counts.values())
        if now_total < SPIKE_MIN_REQUESTS or before_total < SPIKE_MIN_REQUESTS:
            continue
        now_share = now_counts["default"] / now_total
        before_share = before_counts["default"] / before_total
        if now_share - before_share >= SPIKE_POINTS:
            warnings.append(HealthWarning("default_spike", h.id, h.name,
                                    {"current": round(now_share * 100), "previous": round(before_share * 100)}))
    return warnings


def worker_warnings(processing: ProcessingState | None) -> list[HealthWarning]:
    """The alarm of issue 9 §3: events wait and no worker takes them (the web process alone on Redis)."""
    if processing is None or not processing.stalled:
        return []
    return [HealthWarning("no_worker", None, None, {"minutes": max(processing.waiting_seconds // 60, 1)})]


def integration_warnings(session: Session, account_id: int, integration_id: int, *, now: datetime | None = None,
                         processing: ProcessingState | None = None) -> list[HealthWarning]:
    """The warnings of one integration (its settings page): health, and the default share of the last
    seven days against the seven before."""
    now = now or utcnow()
    health = integration_health(session, account_id, now=now, integration_id=integration_id)
    if not health:
        return []
    span = timedelta(days=INTEGRATION_SPIKE_DAYS)
    current = _attribution_by_integration(session, account_id, now - span, now, integration_id)
    previous = _attribution_by_integration(session, account_id, now - 2 * span, now - span, integration_id)
    warnings = health_warnings(health, now) + spike_warnings(health, current, previous) + worker_warnings(processing)
    warnings.sort(key=lambda w: (w.severity != "error", w.code))
    return warnings
