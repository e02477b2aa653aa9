"""The Raw data report («Сырые данные → Обращения и цели») and the inbox list, always within one account.

- `RequestFilter` — date range, integration, channel, campaign, source, site, attribution and a search
  by phone, email or name. `RequestFilter.from_params` validates strings from a query string or a
  form and raises `ValidationFailed(message, field)`.
- `page_requests` — sorted by a whitelisted column with the id as a stable tie-break; offset pages
  (with the total) or keyset pages (`cursor`, stays quick however deep).
- `iter_requests_csv` — the same rows as CSV, streamed in chunks from a server-side cursor (flat
  memory on a million rows), cells that a spreadsheet would run as a formula neutralised, human
  column headers in Russian or English, names and amoCRM links resolved.

Dates given as a bare date (2026-11-24) or a date-time without an offset are in the report's time zone
(the account's, Europe/Moscow unless said otherwise); an explicit offset is kept.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core import event_status
from core.catalog import ValidationFailed
from core.messages import N_, Message, Translations, define, render
from core.messengers import CHANNEL_LABELS, channel_label  # noqa: F401 (the report's column names)
from core.models import Campaign, ChatRequest, Integration, Site, Source, WebhookEvent

DEFAULT_TZ = "Europe/Moscow"
ATTRIBUTIONS = ("session", "messenger", "default")
NONE_ID = 0  # as a campaign / source / site filter: requests that have none
MAX_SEARCH_LENGTH = 200
MAX_ID = 2**62

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
# The CSV's «Повторное обращение» column.
REPEAT_YES = define("csv.repeat.yes", N_("yes"))
REPEAT_NO = define("csv.repeat.no", N_("no"))
LANGS = ("ru", "en")


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


_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


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
        if _DAY.match(text):
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
            raise ValidationFailed("date_from is after date_till", "date_from")
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
        raise ValidationFailed(f"{field} is longer than {max_length} characters", field)
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
    flt = flt or RequestFilter()
    return session.scalar(sa.select(sa.func.count()).select_from(ChatRequest).where(*flt.conditions(account_id))) or 0


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


# --- CSV export ----------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A number or a phone (+79161234567, -15, +7 (916) 123-45-67): digits, signs, spaces, brackets and
# separators call no function and reach no other cell or program, so it is written as it is.
_PLAIN_NUMBER = re.compile(r"[+-]?[\d\s().,-]*\d[\d\s().,-]*\Z")


def safe_cell(value) -> str:
    """A cell a spreadsheet shows as text: one that starts with = + - @, a tab or a carriage return
    (a formula in Excel, LibreOffice or Google Sheets) gets a leading apostrophe (OWASP's advice) —
    unless it is only a number or a phone, which cannot run as a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text) else text


@dataclass(frozen=True)
class CsvColumn:
    key: str
    title: str  # an English msgid; %(tz)s is the time zone of the dates
    literal: bool = False  # a name of code (utm_source) or the same in every language (Email)

    def header(self, translations: Translations | None, tz_name: str) -> str:
        if self.literal:
            return self.title
        return render(Message(f"csv.{self.key}", self.title, {"tz": tz_name} if "%(tz)s" in self.title else {}),
                      translations)


CSV_COLUMNS: tuple[CsvColumn, ...] = (
    CsvColumn("id", N_("Request ID")),
    CsvColumn("created_at", N_("Date and time (%(tz)s)")),
    CsvColumn("channel", N_("Channel")),
    CsvColumn("origin", N_("amoCRM channel code")),
    CsvColumn("contact_name", N_("Contact name")),
    CsvColumn("phone", N_("Phone")),
    CsvColumn("phone_raw", N_("Phone as in amoCRM")),
    CsvColumn("email", "Email", literal=True),
    CsvColumn("site", N_("Site")),
    CsvColumn("campaign", N_("Ad campaign")),
    CsvColumn("source", N_("Source")),
    CsvColumn("utm_source", "utm_source", literal=True),
    CsvColumn("utm_medium", "utm_medium", literal=True),
    CsvColumn("utm_campaign", "utm_campaign", literal=True),
    CsvColumn("utm_term", "utm_term", literal=True),
    CsvColumn("utm_content", "utm_content", literal=True),
    CsvColumn("referrer", N_("Referrer")),
    CsvColumn("entrance_page", N_("Entrance page")),
    CsvColumn("session_id", N_("Session ID")),
    CsvColumn("visitor_id", N_("Visitor ID")),
    CsvColumn("attribution", N_("Attribution")),
    CsvColumn("attribution_reason", N_("Attribution reason")),
    CsvColumn("integration", N_("Integration")),
    CsvColumn("talk_id", N_("amoCRM talk ID")),
    CsvColumn("amo_lead_url", N_("Lead in amoCRM")),
    CsvColumn("amo_contact_url", N_("Contact in amoCRM")),
    CsvColumn("closed_at", N_("Talk closed (%(tz)s)")),
    CsvColumn("is_repeat", N_("Repeat request")),
    CsvColumn("first_request_id", N_("First request ID")),
)
_CSV_SOURCE = (
    "id", "created_at", "channel", "origin", "contact_name", "phone", "phone_raw", "email", "site_id", "campaign_id",
    "source_id", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "entrance_page", "session_id",
    "visitor_id", "attribution", "attribution_reason_code", "attribution_reason_params", "integration_id", "talk_id", "amo_lead_id", "amo_contact_id",
    "closed_at", "is_repeat", "first_request_id",
)
DELIMITERS = {",": ",", ";": ";", "comma": ",", "semicolon": ";", "tab": "\t"}


def csv_headers(translations: Translations | None = None, tz: str = DEFAULT_TZ) -> list[str]:
    return [c.header(translations, tz) for c in CSV_COLUMNS]


def iter_requests_csv(session: Session, account_id: int, flt: RequestFilter | None = None, *,
                      sort: Sort | str | None = None, translations: Translations | None = None, tz: str = DEFAULT_TZ,
                      delimiter: str = ",", chunk_rows: int = 1000, bom: bool = True) -> Iterator[str]:
    """Every request matching `flt` as CSV text, yielded about `chunk_rows` rows at a time.

    Rows come from a server-side cursor (`yield_per`) as plain tuples, never ORM objects, so memory
    stays flat however many rows match. Names (site, campaign, source, integration) are resolved from
    the account's dictionaries loaded once; dates are local to `tz`; channel and attribution are
    said in the language of `translations` (the web layer's catalogue; English without); every text cell is made safe as `safe_cell` says. The UTF-8 BOM (`bom`) makes Excel
    read Cyrillic correctly; `delimiter` «;» suits Excel with Russian regional settings."""
    flt = flt or RequestFilter()
    sort = sort if isinstance(sort, Sort) else Sort.parse(sort)
    zone = get_zone(tz)
    delimiter = DELIMITERS.get(delimiter, delimiter)
    if delimiter not in (",", ";", "\t"):
        raise ValidationFailed("delimiter must be a comma, a semicolon or a tab", "delimiter")
    refs = load_refs(session, account_id)
    columns = [getattr(ChatRequest, name) for name in _CSV_SOURCE]
    stmt = sort.apply(sa.select(*columns).where(*flt.conditions(account_id)))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([safe_cell(h) for h in csv_headers(translations, zone.key)])
    yield ("\ufeff" if bom else "") + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()

    # The loop below runs once per row of a possibly million-row export: plain tuples, cells made
    # safe with one lookup, names made safe once in advance, dates formatted without strftime.
    formula = frozenset(_FORMULA_START)
    plain = _PLAIN_NUMBER.match

    def safe(text):
        return "'" + text if text and text[0] in formula and not plain(text) else text

    def when(value: datetime | None) -> str | None:
        return value.astimezone(zone).replace(tzinfo=None).isoformat(" ", "seconds") if value else None

    sites = {k: safe(v) for k, v in refs.sites.items()}
    campaigns = {k: safe(v) for k, v in refs.campaigns.items()}
    sources = {k: safe(v) for k, v in refs.sources.items()}
    integrations = {k: safe(v) for k, v in refs.integrations.items()}
    bases = refs.amo_bases  # http(s) addresses: never a formula
    channels: dict[str, str] = {}
    attributions = {k: attribution_label(k, translations) for k in ATTRIBUTIONS}

    def reason_text(code, params):
        return safe(render(Message.from_json(code, params), translations))
    repeat_labels = {True: safe(render(REPEAT_YES(), translations)), False: safe(render(REPEAT_NO(), translations))}

    result = session.execute(stmt, execution_options={"yield_per": max(int(chunk_rows), 1)})
    try:
        for partition in result.partitions():
            lines = []
            for (rid, created_at, channel, origin, name, phone, phone_raw, email, site_id, campaign_id, source_id, utm_source,
                 utm_medium, utm_campaign, utm_term, utm_content, referrer, entrance_page, session_id, visitor_id,
                 attribution, reason_code, reason_params, integration_id, talk_id, lead_id, contact_id,
                 closed_at, is_repeat, first_request_id) in partition:
                label = channels.get(channel)
                if label is None:
                    label = channels[channel] = safe(channel_label(channel, translations))
                base = bases.get(integration_id)
                lines.append((
                    rid, when(created_at), label, safe(origin), safe(name), safe(phone), safe(phone_raw), safe(email),
                    sites.get(site_id), campaigns.get(campaign_id), sources.get(source_id), safe(utm_source),
                    safe(utm_medium), safe(utm_campaign), safe(utm_term), safe(utm_content), safe(referrer),
                    safe(entrance_page), session_id, safe(visitor_id), attributions.get(attribution) or safe(attribution),
                    reason_text(reason_code, reason_params), integrations.get(integration_id), talk_id,
                    f"{base}/leads/detail/{lead_id}" if base and lead_id else None,
                    f"{base}/contacts/detail/{contact_id}" if base and contact_id else None, when(closed_at),
                    repeat_labels[bool(is_repeat)], first_request_id,
                ))
            writer.writerows(lines)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    finally:
        result.close()


# --- inbox events --------------------------------------------------------------------------------

def event_to_dict(row: WebhookEvent, translations: Translations | None = None) -> dict:
    """The event as the API shows it; `status_reason` in the language of `translations`."""
    return {
        "id": row.id,
        "integration_id": row.integration_id,
        "talk_id": row.talk_id,
        "action": row.action,
        "status": row.status,
        "status_reason": render(row.status_message, translations) or None,
        "status_reason_code": row.status_reason_code,
        "attempts": row.attempts,
        "error": row.error,
        "received_at": row.received_at.isoformat(),
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
        "request_id": row.request_id,
        "replay_run_id": row.replay_run_id,
    }


def list_events(session: Session, account_id: int, *, status: str | None = None, integration_id: int | None = None,
                replay_run_id: int | None = None, limit: int = 100, offset: int = 0) -> tuple[list[WebhookEvent], int]:
    query = sa.select(WebhookEvent).where(WebhookEvent.account_id == account_id)
    if status:
        query = query.where(WebhookEvent.status == status)
    if integration_id:
        query = query.where(WebhookEvent.integration_id == integration_id)
    if replay_run_id:
        query = query.where(WebhookEvent.replay_run_id == replay_run_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = list(session.scalars(query.order_by(WebhookEvent.id.desc()).limit(limit).offset(offset)))
    return rows, total
