"""The Raw data report («Сырые данные → Обращения и цели»), always within one account.

- `RequestFilter` — date range, integration, channel, campaign, source, site, attribution and a search
  by phone, email or name. `RequestFilter.from_params` validates strings from a query string or a
  form and raises `ValidationFailed(message, field)`.
- `page_requests` — sorted by a whitelisted column with the id as a stable tie-break; offset pages
  (with the total) or keyset pages (`cursor`, stays quick however deep).
- `load_refs`, `request_to_dict` — the names and amoCRM links a row shows.

The same rows as CSV: core.reporting.csv_export; the inbox list: core.reporting.events.

Dates given as a bare date (2026-11-24) or a date-time without an offset are in the report's time zone
(the account's, Europe/Moscow unless said otherwise); an explicit offset is kept.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.inbox import event_status
from core.models import Campaign, ChatRequest, Integration, RequestDailyCount, Site, Source
from core.platform.errors import DATES_REVERSED, ValidationFailed
from core.platform.messages import N_, Translations, define, render

DEFAULT_TZ = "Europe/Moscow"
ATTRIBUTIONS = ("session", "messenger", "default")
NONE_ID = 0  # as a campaign / source / site filter: requests that have none
MAX_SEARCH_LENGTH = 200
MAX_ID = 2**62

# What the admin says about a refused filter (`ValidationFailed.said`); the Data API keeps `message`.
SEARCH_TOO_LONG = define("report.search_too_long", N_("The search is longer than %(max)s characters."))

REQUEST_COLUMNS = (
    "id", "integration_id", "talk_id", "chat_id", "origin", "channel", "contact_name", "phone", "phone_raw", "email",
    "created_at", "closed_at", "session_id", "visitor_id", "site_id", "campaign_id", "source_id", "utm_source", "utm_medium",
    "utm_campaign", "utm_term", "utm_content", "referrer", "entrance_page", "attribution",
    "amo_lead_id", "amo_contact_id", "is_repeat", "first_request_id",
)
EVENT_STATUSES = event_status.ALL

ATTRIBUTION_LABELS = {
    "session": define("attribution.kind.session", N_("Session")),
    "messenger": define("attribution.kind.messenger", N_("Messenger")),
    "default": define("attribution.kind.default", N_("By default")),
}


def attribution_label(kind: str | None, translations: Translations | None = None) -> str:
    """The attribution kind's name in the language of `translations` (English without)."""
    return render(ATTRIBUTION_LABELS[kind](), translations) if kind in ATTRIBUTION_LABELS else (kind or "")


# --- time zones and dates ------------------------------------------------------------------------

_TZ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")


def get_zone(name: str | None) -> ZoneInfo:
    """An IANA zone; `ValidationFailed` (field `tz`) for anything else. The name is safe to quote in SQL."""
    name = name or DEFAULT_TZ
    if not isinstance(name, str) or len(name) > 64 or not _TZ_NAME.match(name):
        raise ValidationFailed("tz must be an IANA time zone such as Europe/Moscow", "tz")
    try:
        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, or a name that is a folder of the zone database
        raise ValidationFailed(f"unknown time zone {name!r}; use an IANA name such as Europe/Moscow", "tz") from None


ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def parse_moment(raw: str | None, field: str, zone: ZoneInfo, *, end_of_day: bool = False) -> datetime | None:
    """ISO 8601 date or date-time → an aware UTC datetime. A bare date is the start of that day in
    `zone` (its last microsecond with `end_of_day`); a date-time without an offset is in `zone`."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    example = "e.g. 2026-11-24 or 2026-11-24T10:00:00+03:00"
    if not isinstance(raw, str):
        raise ValidationFailed(f"{field} must be an ISO 8601 date or date-time, {example}", field)
    text = raw.strip()
    try:
        if ISO_DAY.match(text):
            day = date.fromisoformat(text)
            value = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=zone)
        else:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if value.tzinfo is None:
                value = value.replace(tzinfo=zone)
        value = value.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValidationFailed(f"{field} must be an ISO 8601 date or date-time, {example}", field) from None
    if not 1970 <= value.year <= 9000:
        raise ValidationFailed(f"{field} must be between 1970 and 9000", field)
    return value


def local_day_bounds(day_from: date, day_till: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC covering the local days day_from … day_till (inclusive)."""
    start = datetime.combine(day_from, time.min, tzinfo=zone).astimezone(timezone.utc)
    end = datetime.combine(day_till + timedelta(days=1), time.min, tzinfo=zone).astimezone(timezone.utc)
    return start, end


# --- the filter ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestFilter:
    """What the Raw data report shows. Dates are aware datetimes, both ends inclusive. For
    campaign / source / site, `NONE_ID` (0) means «without one»."""

    date_from: datetime | None = None
    date_till: datetime | None = None
    integration_id: int | None = None
    channel: str | None = None
    campaign_id: int | None = None
    source_id: int | None = None
    site_id: int | None = None
    attribution: str | None = None
    q: str | None = None
    is_repeat: bool | None = None  # repeat requests only (True), new ones only (False)

    @classmethod
    def from_params(cls, params: Mapping[str, str], tz: str | ZoneInfo | None = None) -> "RequestFilter":
        """From query-string values (missing or empty = no filter). Raises `ValidationFailed`."""
        zone = tz if isinstance(tz, ZoneInfo) else get_zone(tz)
        get = lambda name: params.get(name)  # noqa: E731
        flt = cls(
            date_from=parse_moment(get("date_from"), "date_from", zone),
            date_till=parse_moment(get("date_till"), "date_till", zone, end_of_day=True),
            integration_id=_id_param(get("integration_id"), "integration_id", allow_none=False),
            channel=_text_param(get("channel"), "channel", 30),
            campaign_id=_id_param(get("campaign_id"), "campaign_id"),
            source_id=_id_param(get("source_id"), "source_id"),
            site_id=_id_param(get("site_id"), "site_id"),
            attribution=_choice_param(get("attribution"), "attribution", ATTRIBUTIONS),
            q=_text_param(get("q"), "q", MAX_SEARCH_LENGTH),
            is_repeat=_bool_param(get("is_repeat"), "is_repeat"),
        )
        flt.check()
        return flt

    def check(self) -> None:
        if self.date_from and self.date_till and self.date_from > self.date_till:
            raise ValidationFailed("date_from is after date_till", "date_from", DATES_REVERSED())
        if self.attribution is not None and self.attribution not in ATTRIBUTIONS:
            raise ValidationFailed(f"attribution must be one of: {', '.join(ATTRIBUTIONS)}", "attribution")

    def conditions(self, account_id: int) -> list:
        c = ChatRequest
        where = [c.account_id == account_id]
        if self.date_from:
            where.append(c.created_at >= self.date_from)
        if self.date_till:
            where.append(c.created_at <= self.date_till)
        if self.integration_id:
            where.append(c.integration_id == self.integration_id)
        if self.channel:
            where.append(c.channel == self.channel)
        for column, value in ((c.campaign_id, self.campaign_id), (c.source_id, self.source_id), (c.site_id, self.site_id)):
            if value == NONE_ID:
                where.append(column.is_(None))
            elif value is not None:
                where.append(column == value)
        if self.attribution:
            where.append(c.attribution == self.attribution)
        if self.q:
            where.append(search_condition(self.q))
        if self.is_repeat is not None:
            where.append(c.is_repeat.is_(True) if self.is_repeat else c.is_repeat.is_(False))
        return where


def _text_param(raw, field: str, max_length: int) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationFailed(f"{field} must be text", field)
    if len(raw) > max_length:
        said = SEARCH_TOO_LONG(max=max_length) if field == "q" else None
        raise ValidationFailed(f"{field} is longer than {max_length} characters", field, said)
    text = " ".join(raw.split())
    if not text:
        return None
    if any(ord(ch) < 32 for ch in text):
        raise ValidationFailed(f"{field} contains control characters", field)
    return text


_WHOLE = re.compile(r"^[1-9][0-9]{0,18}$")


def _id_param(raw, field: str, allow_none: bool = True) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        text = str(raw)
        if allow_none and text == "none":
            return NONE_ID
        if not _WHOLE.match(text):
            hint = " or none (without one)" if allow_none else ""
            raise ValidationFailed(f"{field} must be a positive whole number{hint}", field)
        value = int(text)
    if not 1 <= value <= MAX_ID:
        raise ValidationFailed(f"{field} must be a positive whole number", field)
    return value


def _bool_param(raw, field: str) -> bool | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    raise ValidationFailed(f"{field} must be true or false", field)


def _choice_param(raw, field: str, choices: tuple[str, ...]) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise ValidationFailed(f"{field} must be one of: {', '.join(choices)}", field)
    return raw


# --- search --------------------------------------------------------------------------------------

_PHONE_LIKE = re.compile(r"^[\d\s()+\-.]+$")


def search_patterns(q: str) -> list[str]:
    """The substrings of `requests.search_text` that match the search `q`.

    `search_text` holds the case-folded name and email and the phone's digits. A query that looks like
    a phone matches by digits however it was typed: «+7 (915) 123-45», «915 123» and the Russian
    trunk form «8 915 123» (its 8 read as +7) all find +79151234567."""
    text = " ".join(q.split()).casefold()
    patterns = [text] if text else []
    if _PHONE_LIKE.match(text):
        digits = "".join(ch for ch in text if ch.isdigit())
        if len(digits) >= 3:
            patterns = [digits]
            if digits.startswith("8") and len(digits) >= 4:
                patterns.append("7" + digits[1:])
    return patterns


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_condition(q: str):
    patterns = search_patterns(q)
    if not patterns:
        return sa.true()
    # The pattern is built here, not in SQL, so PostgreSQL sees a constant and can use the trigram index.
    return sa.or_(*[ChatRequest.search_text.like(f"%{_like_escape(p)}%", escape="\\") for p in patterns])


# --- sorting and paging --------------------------------------------------------------------------

@dataclass(frozen=True)
class SortSpec:
    key: str
    label: tuple[str, str]
    kind: str  # datetime | int | text
    join: object | None = None  # a model to outer-join for the expression


SORTS: dict[str, SortSpec] = {
    "created_at": SortSpec("created_at", ("Дата и время", "Date and time"), "datetime"),
    "id": SortSpec("id", ("ID", "ID"), "int"),
    "talk_id": SortSpec("talk_id", ("ID беседы", "Talk ID"), "int"),
    "channel": SortSpec("channel", ("Канал", "Channel"), "text"),
    "attribution": SortSpec("attribution", ("Атрибуция", "Attribution"), "text"),
    "contact_name": SortSpec("contact_name", ("Имя", "Name"), "text"),
    "phone": SortSpec("phone", ("Телефон", "Phone"), "text"),
    "email": SortSpec("email", ("Email", "Email"), "text"),
    "integration": SortSpec("integration", ("Интеграция", "Integration"), "text", Integration),
    "site": SortSpec("site", ("Сайт", "Site"), "text", Site),
    "campaign": SortSpec("campaign", ("Рекламная кампания", "Ad campaign"), "text", Campaign),
    "source": SortSpec("source", ("Источник", "Source"), "text", Source),
}
DEFAULT_SORT = "-created_at"
_JOIN_ON = {
    Integration: lambda: Integration.id == ChatRequest.integration_id,
    Site: lambda: Site.id == ChatRequest.site_id,
    Campaign: lambda: Campaign.id == ChatRequest.campaign_id,
    Source: lambda: Source.id == ChatRequest.source_id,
}


@dataclass(frozen=True)
class Sort:
    key: str = "created_at"
    descending: bool = True

    @classmethod
    def parse(cls, raw: str | None) -> "Sort":
        """«created_at» ascending, «-created_at» descending (the default)."""
        raw = raw or DEFAULT_SORT
        descending = raw.startswith("-")
        key = raw[1:] if descending else raw
        if key not in SORTS:
            allowed = ", ".join(SORTS)
            raise ValidationFailed(f"sort must be one of: {allowed} (a leading - sorts descending)", "sort")
        return cls(key, descending)

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.key

    @property
    def spec(self) -> SortSpec:
        return SORTS[self.key]

    def expression(self):
        c = ChatRequest
        plain = {"created_at": c.created_at, "id": c.id, "talk_id": c.talk_id, "channel": c.channel, "attribution": c.attribution}
        if self.key in plain:
            return plain[self.key]
        text = {"contact_name": c.contact_name, "phone": c.phone, "email": c.email, "integration": Integration.name,
                "site": Site.name, "campaign": Campaign.name, "source": Source.name}[self.key]
        return sa.func.coalesce(text, "")

    def apply(self, stmt):
        if self.spec.join is not None:
            stmt = stmt.outerjoin(self.spec.join, _JOIN_ON[self.spec.join]())
        expr = self.expression()
        if self.key == "id":
            return stmt.order_by(ChatRequest.id.desc() if self.descending else ChatRequest.id.asc())
        if self.descending:
            return stmt.order_by(expr.desc(), ChatRequest.id.desc())
        return stmt.order_by(expr.asc(), ChatRequest.id.asc())

    def after(self, value, last_id: int):
        """Rows after (value, last_id) in this order, written so an index on the sort column helps."""
        c = ChatRequest
        if self.key == "id":
            return c.id < last_id if self.descending else c.id > last_id
        expr = self.expression()
        bound = sa.bindparam(None, value, type_=c.created_at.type if self.spec.kind == "datetime" else None)
        if self.descending:
            return sa.and_(expr <= bound, sa.or_(expr < bound, c.id < last_id))
        return sa.and_(expr >= bound, sa.or_(expr > bound, c.id > last_id))

    def value_of(self, row: ChatRequest, refs: "Refs | None" = None):
        if self.key in ("created_at", "id", "talk_id", "channel", "attribution"):
            return getattr(row, self.key)
        if self.key in ("contact_name", "phone", "email"):
            return getattr(row, self.key) or ""
        refs = refs or Refs()
        return {"integration": refs.integrations, "site": refs.sites, "campaign": refs.campaigns,
                "source": refs.sources}[self.key].get(getattr(row, f"{self.key}_id"), "")


def encode_cursor(sort: Sort, value, last_id: int) -> str:
    payload = {"s": str(sort), "v": value.isoformat() if isinstance(value, datetime) else value, "i": last_id}
    return base64.urlsafe_b64encode(json.dumps(payload, ensure_ascii=False).encode()).decode().rstrip("=")


def decode_cursor(raw: str, sort: Sort):
    """(value, last_id) from a cursor made for the same sort; `ValidationFailed` otherwise."""
    problem = ValidationFailed("cursor is not valid for this sort; start again from the first page", "cursor")
    try:
        if len(raw) > 2000:
            raise ValueError
        payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
        if not isinstance(payload, dict) or payload.get("s") != str(sort):
            raise ValueError
        last_id, value = payload["i"], payload["v"]
        if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 < last_id <= MAX_ID:
            raise ValueError
        kind = sort.spec.kind
        if kind == "datetime":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_ID:
                raise ValueError
        elif not isinstance(value, str) or "\x00" in value:
            raise ValueError
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, json.JSONDecodeError, base64.binascii.Error):
        raise problem from None
    return value, last_id


@dataclass
class RequestPage:
    rows: list[ChatRequest]
    total: int | None
    next_cursor: str | None = None
    refs: "Refs | None" = None


def count_requests(session: Session, account_id: int, flt: RequestFilter | None = None) -> int:
    """How many requests the filter finds — exact. Counting a million rows took ~190 ms of every Raw
    data page (bench.reports); the whole local days inside the range are summed from the dashboard's
    roll-up instead (`request_daily_counts`, kept exact by triggers in the same transaction as every
    change of `requests`, core.reporting.rollup), and only the rows of the partial days at the edges are
    counted. A filter the roll-up has no column for (site, search, repeat) counts the rows."""
    flt = flt or RequestFilter()
    if flt.site_id is not None or flt.q or flt.is_repeat is not None:
        return _count_rows(session, account_id, flt)
    zone = ZoneInfo(DEFAULT_TZ)  # the roll-up's days (core.reporting.rollup.ROLLUP_ZONE)
    first_day = last_day = None
    if flt.date_from is not None:
        first_day = flt.date_from.astimezone(zone).date()
        if _day_start(first_day, zone) < flt.date_from:
            first_day += timedelta(days=1)
    if flt.date_till is not None:  # inclusive: the last whole day ends at most one microsecond after it
        last_day = (flt.date_till + timedelta(microseconds=1)).astimezone(zone).date() - timedelta(days=1)
    if first_day is not None and last_day is not None and first_day > last_day:
        return _count_rows(session, account_id, flt)  # less than a whole day: the rows are few
    total = _count_rolled_up(session, account_id, flt, first_day, last_day)
    if first_day is not None:  # the partial day before the first whole one
        total += _count_rows(session, account_id, replace(flt, date_till=None), before=_day_start(first_day, zone))
    if last_day is not None:  # and after the last one
        total += _count_rows(session, account_id, replace(flt, date_from=_day_start(last_day + timedelta(days=1), zone)))
    return total


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(timezone.utc)


def _count_rows(session: Session, account_id: int, flt: RequestFilter, *, before: datetime | None = None) -> int:
    where = flt.conditions(account_id)
    if before is not None:
        where.append(ChatRequest.created_at < before)
    return session.scalar(sa.select(sa.func.count()).select_from(ChatRequest).where(*where)) or 0


def _count_rolled_up(session: Session, account_id: int, flt: RequestFilter, first_day: date | None,
                     last_day: date | None) -> int:
    r = RequestDailyCount
    where = [r.account_id == account_id]
    if first_day is not None:
        where.append(r.day >= first_day)
    if last_day is not None:
        where.append(r.day <= last_day)
    if flt.integration_id:
        where.append(r.integration_id == flt.integration_id)
    if flt.channel:
        where.append(r.channel == flt.channel)
    for column, value in ((r.campaign_id, flt.campaign_id), (r.source_id, flt.source_id)):
        if value is not None:  # NONE_ID (0) is the roll-up's own «none»
            where.append(column == value)
    if flt.attribution:
        where.append(r.attribution == flt.attribution)
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(r.n), 0)).where(*where)) or 0)


MAX_NAME_GROUPS = 200  # more distinct campaign (source, …) names than this: the plain sorted join


def _name_groups(session: Session, account_id: int, sort: Sort) -> list[tuple[str, list[int]]] | None:
    """The account's campaigns (sources, sites, integrations) as (name, ids) in the database's own
    order of `coalesce(name, '')`, the group «» first (it also holds the requests without one)."""
    model = sort.spec.join
    name = sa.func.coalesce(model.name, "")
    rows = session.execute(sa.select(name, model.id).where(model.account_id == account_id)
                           .order_by(name, model.id).limit(MAX_NAME_GROUPS + 1)).all()
    groups: list[tuple[str, list[int]]] = [("", [])]
    for value, id_ in rows:
        if value == groups[-1][0]:
            groups[-1][1].append(id_)
        else:
            groups.append((value, [id_]))
    if len(groups) > MAX_NAME_GROUPS:
        return None
    return groups[::-1] if sort.descending else groups


def _by_name_groups(session: Session, account_id: int, flt: RequestFilter, sort: Sort, after, *, window: int):
    """A page sorted by a joined name (campaign, source, site, integration) without sorting every row.

    Sorting a million requests by their campaign's name took ~0.65 s: the database joins and sorts
    them all. There are few names, so the same order is «each name's requests by id, name after
    name»: one index-backed `ORDER BY id LIMIT window` per name, glued with UNION ALL and ordered by
    the name's rank — at most names × window rows are ever sorted. None: use the plain join
    (too many names, or a cursor whose name is gone since)."""
    if sort.spec.join is None:
        return None
    groups = _name_groups(session, account_id, sort)
    if groups is None:
        return None
    c = ChatRequest
    column = getattr(c, f"{sort.key}_id")
    by_id = c.id.desc() if sort.descending else c.id.asc()
    if after is not None:
        names = [name for name, _ in groups]
        if after[0] not in names:
            return None
        start = names.index(after[0])
    else:
        start = 0
    where = flt.conditions(account_id)
    parts = []
    for rank, (name, ids) in enumerate(groups[start:], start):
        condition = column.in_(ids) if ids else sa.false()
        if name == "":
            condition = sa.or_(column.is_(None), condition)
        part = sa.select(sa.literal(rank).label("rank"), c.id.label("request_id")).where(*where, condition)
        if after is not None and rank == start:
            part = part.where(c.id < after[1] if sort.descending else c.id > after[1])
        parts.append(part.order_by(by_id).limit(window).subquery().select())  # SQLite: no LIMIT in a bare UNION member
    ranked = sa.union_all(*parts).subquery()
    return (sa.select(c).join(ranked, ranked.c.request_id == c.id).order_by(ranked.c.rank, by_id))


def page_requests(session: Session, account_id: int, flt: RequestFilter | None = None, sort: Sort | str | None = None,
                  *, limit: int = 100, offset: int = 0, cursor: str | None = None, with_total: bool = True,
                  with_refs: bool = True) -> RequestPage:
    """One page of the Raw data report. With `cursor` (from the previous page's `next_cursor`) the
    page is found by keyset, so page 10 000 is as quick as page 1; otherwise by `offset`."""
    flt = flt or RequestFilter()
    sort = sort if isinstance(sort, Sort) else Sort.parse(sort)
    limit = max(1, min(int(limit), 10_000))
    after = decode_cursor(cursor, sort) if cursor else None
    stmt = _by_name_groups(session, account_id, flt, sort, after, window=offset + limit + 1)
    if stmt is None:
        stmt = sort.apply(sa.select(ChatRequest).where(*flt.conditions(account_id)))
        if after:
            stmt = stmt.where(sort.after(*after))
    if offset and not after:
        stmt = stmt.offset(offset)
    rows = list(session.scalars(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    refs = load_refs(session, account_id, rows) if with_refs or sort.spec.join is not None else None
    next_cursor = encode_cursor(sort, sort.value_of(rows[-1], refs), rows[-1].id) if more and rows else None
    total = count_requests(session, account_id, flt) if with_total else None
    return RequestPage(rows, total, next_cursor, refs)


def list_requests(session: Session, account_id: int, *, date_from: datetime | None = None, date_till: datetime | None = None,
                  integration_id: int | None = None, channel: str | None = None, attribution: str | None = None,
                  limit: int = 100, offset: int = 0, flt: RequestFilter | None = None,
                  sort: Sort | str | None = None) -> tuple[list[ChatRequest], int]:
    """(rows, total) — the original signature; `flt` and `sort` give the whole report."""
    flt = flt or RequestFilter()
    overrides = {k: v for k, v in dict(date_from=date_from, date_till=date_till, integration_id=integration_id,
                                       channel=channel, attribution=attribution).items() if v is not None}
    if overrides:
        flt = replace(flt, **overrides)
    page = page_requests(session, account_id, flt, sort, limit=limit, offset=offset, with_refs=False)
    return page.rows, page.total


# --- names and links -----------------------------------------------------------------------------

@dataclass
class Refs:
    """Names of the sites, campaigns, sources and integrations that rows point at, and each
    integration's amoCRM address for the lead and contact links."""

    sites: dict[int, str] = field(default_factory=dict)
    campaigns: dict[int, str] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)
    integrations: dict[int, str] = field(default_factory=dict)
    amo_bases: dict[int, str | None] = field(default_factory=dict)

    def lead_url(self, integration_id: int, lead_id: int | None) -> str | None:
        base = self.amo_bases.get(integration_id)
        return f"{base}/leads/detail/{lead_id}" if base and lead_id else None

    def contact_url(self, integration_id: int, contact_id: int | None) -> str | None:
        base = self.amo_bases.get(integration_id)
        return f"{base}/contacts/detail/{contact_id}" if base and contact_id else None


def amo_base_url(integration: Integration) -> str | None:
    """The amoCRM account's web address: where the OAuth callback said it is, else what the admin typed."""
    for candidate in (integration.api_base_url, integration.amocrm_url):
        if not candidate or "yourdomain" in candidate.lower():
            continue
        base = candidate if "://" in candidate else f"https://{candidate}"
        if base.startswith(("https://", "http://")):
            base = base.rstrip("/")
            return base[:-len("/oauth")] if base.endswith("/oauth") else base
    return None


def load_refs(session: Session, account_id: int, rows: list | None = None) -> Refs:
    """Every name of the account (for an export), or only those `rows` refer to (for a page)."""
    refs = Refs()

    def names(model, ids_attr):
        stmt = sa.select(model.id, model.name).where(model.account_id == account_id)
        if rows is not None:
            ids = {getattr(r, ids_attr) for r in rows} - {None}
            if not ids:
                return {}
            stmt = stmt.where(model.id.in_(ids))
        return dict(session.execute(stmt).all())

    refs.sites = names(Site, "site_id")
    refs.campaigns = names(Campaign, "campaign_id")
    refs.sources = names(Source, "source_id")
    stmt = sa.select(Integration).where(Integration.account_id == account_id)
    if rows is not None:
        stmt = stmt.where(Integration.id.in_({r.integration_id for r in rows} or {0}))
    for integration in session.scalars(stmt):
        refs.integrations[integration.id] = integration.name
        refs.amo_bases[integration.id] = amo_base_url(integration)
    return refs


def request_to_dict(row: ChatRequest, refs: Refs | None = None, translations: Translations | None = None) -> dict:
    """The request as the API and the admin show it; `attribution_reason` is said in the language of
    `translations`, `attribution_reason_code` names it for programs."""
    data = {}
    for column in REQUEST_COLUMNS:
        value = getattr(row, column)
        data[column] = value.isoformat() if isinstance(value, datetime) else value
    data["attribution_reason"] = render(row.attribution_message, translations)
    data["attribution_reason_code"] = row.attribution_reason_code
    if refs is not None:
        data.update(
            integration_name=refs.integrations.get(row.integration_id),
            site_name=refs.sites.get(row.site_id) if row.site_id else None,
            campaign_name=refs.campaigns.get(row.campaign_id) if row.campaign_id else None,
            source_name=refs.sources.get(row.source_id) if row.source_id else None,
            amo_lead_url=refs.lead_url(row.integration_id, row.amo_lead_id),
            amo_contact_url=refs.contact_url(row.integration_id, row.amo_contact_id),
        )
    return data
