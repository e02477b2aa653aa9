"""The main tracking code's server side: one page view (or activity ping) → the visitor's session.

Our tracking code (`GET /t/<site_key>.js`, installed on every page of a client's site) posts each page
view to `POST /t/collect`; `collect` decides everything there is to decide, so the script stays tiny:

* the **visitor id** is first-party: the script keeps it in a cookie (one year) and sends it back;
  we mint one when the script has none (or sends junk) and the script stores what we answer;
* the **session** the script names (or, when it names none, this visitor's latest session on the
  site) is continued when it belongs to the same account, site and visitor, saw activity in the last
  30 minutes (`IDLE_TIMEOUT`, by *our* clock), and the page brings no *new campaign* — UTM tags or an
  ad click id different from the session's (as Universal Analytics and Yandex Metrica end a visit);
  otherwise a page view starts a new session through `core.tracking.sessions.create_session`, the same
  function as `POST /api/v1/sessions`: channel, search engine, campaign and source by the rules, bots
  filtered by user agent, the IP kept only as a keyed hash;
* an activity ping (the tab going to the background) only extends a live session, never starts one.

`tracking_snippet` is the HTML the Sites admin shows for the site owner to paste.
"""
from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from core.models import MAX_URL_LENGTH, MAX_UTM_LENGTH, UTM_FIELDS, Site, VisitorSession
from core.platform.db import utcnow
from core.platform.messages import N_, Translations, define, render
from core.platform.ratelimit import Quota, client_bucket
from core.platform.settings import Settings
from core.tracking.classification import normalize_click_ids
from core.tracking.sessions import create_session
from core.tracking.urls import KNOWN_CLICK_IDS, clean, landing_params
from core.tracking.user_agents import is_bot

IDLE_TIMEOUT = timedelta(minutes=30)
MAX_TITLE_LENGTH = 300
MAX_BODY_BYTES = 16 * 1024
EVENTS = ("view", "ping", "messenger_click")  # the click: core.inbox.click_attribution
_VISITOR_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_SITE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class TrackingInputError(ValueError):
    """The tracking request itself is malformed (answered 400); `field` names the culprit."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Hit:
    """One request of the tracking code, validated."""

    url: str
    event: str = "view"
    referrer: str | None = None
    title: str | None = None
    visitor_id: str | None = None
    session_id: int | None = None
    service: str | None = None  # messenger_click: the button's service name, and the link it opens
    link: str | None = None


@dataclass(frozen=True)
class CollectResult:
    tracked: bool  # False: a bot, nothing stored
    visitor_id: str
    session_id: int | None  # None: a bot, or a ping with no live session to extend
    new_session: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "visitor_id": self.visitor_id,
            "new_session": self.new_session,
            "tracked": self.tracked,
            "idle_timeout": int(IDLE_TIMEOUT.total_seconds()),
        }


# --------------------------------------------------------------------------- input


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TrackingInputError(f"{name} must be a string", name)
    return value


def parse_hit(data: Any) -> Hit:
    """Validate the JSON object the tracking code sends; raises `TrackingInputError`."""
    if not isinstance(data, dict):
        raise TrackingInputError("the body must be a JSON object: {\"url\": \"https://…\", \"referrer\": …, \"title\": …}")
    event = data.get("event", "view")
    if event not in EVENTS:
        raise TrackingInputError(f"event must be one of: {', '.join(EVENTS)}", "event")
    url = _optional_str(data, "url")
    if not url or not url.strip():
        raise TrackingInputError("url is required: the page's address (location.href)", "url")
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise TrackingInputError("url is not a valid address", "url") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise TrackingInputError("url must be the page's absolute http(s) address", "url")

    session_id = data.get("session_id")
    if session_id is not None:
        if isinstance(session_id, str) and re.fullmatch(r"\d{1,18}", session_id.strip()):
            session_id = int(session_id.strip())
        elif isinstance(session_id, bool) or not isinstance(session_id, int):
            raise TrackingInputError("session_id must be a number (the one this endpoint returned) or null", "session_id")
        if not 0 < session_id < 2**63:
            session_id = None  # cannot name a session: treated as absent
    visitor_id = _optional_str(data, "visitor_id")
    if visitor_id is not None:
        visitor_id = visitor_id.strip()
        if not _VISITOR_ID_RE.match(visitor_id):
            visitor_id = None  # a mangled cookie: the visitor gets a fresh id rather than an error
    service = link = None
    if event == "messenger_click":
        service, link = _click_target(data)
    return Hit(
        url=url[:MAX_URL_LENGTH],
        event=event,
        referrer=clean(_optional_str(data, "referrer"), MAX_URL_LENGTH),
        title=clean(_optional_str(data, "title"), MAX_TITLE_LENGTH),
        visitor_id=visitor_id,
        session_id=session_id,
        service=service,
        link=link,
    )


def _click_target(data: Mapping[str, Any]) -> tuple[str, str | None]:
    """A messenger_click's service (required: what the chat button passed to onButtonClick) and link."""
    service = (_optional_str(data, "service") or "").strip()
    if not service or len(service) > 50:
        raise TrackingInputError("service is required for messenger_click: the name the chat button passed "
                                 "to onButtonClick (telegram, whatsapp…), at most 50 characters", "service")
    return service, clean(_optional_str(data, "link"), MAX_URL_LENGTH)


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


# --------------------------------------------------------------------------- sites and origins


def valid_site_key(site_key: Any) -> bool:
    """Whether this can be a site key at all (what the database is never asked about)."""
    return isinstance(site_key, str) and _SITE_KEY_RE.match(site_key) is not None


def find_site(session: Session, site_key: Any) -> Site | None:
    """The site whose tracking key this is (None for junk or an unknown key)."""
    if not isinstance(site_key, str) or not _SITE_KEY_RE.match(site_key):
        return None
    return session.scalar(sa.select(Site).where(Site.site_key == site_key))


# Built once: constructing a select per hit cost more CPU than running it (bench.tracking).
# The last refusal rides along so that noting a refused hit (core.tracking.refusals) reads nothing more.
_SITE_BY_KEY = sa.select(Site.id, Site.account_id, Site.domain, Site.site_key, Site.last_refused_reason,
                         Site.last_refused_at).where(Site.site_key == sa.bindparam("key"))


def find_site_row(session: Session, site_key: Any):
    """What collect needs of a site (id, account_id, domain, site_key, the last refusal) as a plain row,
    no ORM object."""
    if not isinstance(site_key, str) or not _SITE_KEY_RE.match(site_key):
        return None
    return session.connection().execute(_SITE_BY_KEY, {"key": site_key}).first()


def _ascii(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host


def origin_allowed(site_domain: str, origin: str | None) -> bool:
    """Whether a browser `Origin` (or a page URL) is the site's domain or one of its subdomains.

    Scheme http(s), any port; "www." and other subdomains are the site's; "evil-shop.ru" and
    "shop.ru.evil.com" are not. `Origin: null` (sandboxed frames, file://) never is.
    """
    if not origin or not site_domain or origin == "null":
        return False
    try:
        parts = urlsplit(origin.strip())
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not host:
        return False
    host = _ascii(host.rstrip(".").lower())
    domain = _ascii(site_domain.strip().rstrip(".").lower())
    if domain.startswith("www."):
        domain = domain[4:]
    return host == domain or host.endswith("." + domain)


# --------------------------------------------------------------------------- sessions


def campaign_params(url: str | None) -> dict[str, str]:
    """The campaign a page brings: its UTM tags and ad click ids, as a session would store them."""
    landing = landing_params(url)
    out = {}
    for name in UTM_FIELDS:
        value = clean(landing.get(name), MAX_UTM_LENGTH)
        if value is not None:
            out[name] = value
    out.update(normalize_click_ids({k: v for k, v in landing.items() if k in KNOWN_CLICK_IDS}))
    return out


def session_campaign(vs: VisitorSession) -> dict[str, str]:
    out = {name: getattr(vs, name) for name in UTM_FIELDS if getattr(vs, name)}
    out.update({k: v for k, v in (vs.click_ids or {}).items() if v})
    for name in ("gclid", "yclid", "fbclid"):
        if getattr(vs, name) and name not in out:
            out[name] = getattr(vs, name)
    return out


def is_live(vs: VisitorSession, now: datetime) -> bool:
    return now - vs.last_activity_at <= IDLE_TIMEOUT


def _named_session(session: Session, site: Site, hit: Hit, visitor_id: str) -> VisitorSession | None:
    if hit.session_id is None:
        return None
    vs = session.get(VisitorSession, hit.session_id)
    if vs is None or vs.account_id != site.account_id or vs.site_id != site.id or vs.visitor_id != visitor_id:
        return None  # someone else's id (ids are sequential), or a session of another site
    return vs


def _latest_session(session: Session, site: Site, visitor_id: str, now: datetime) -> VisitorSession | None:
    return session.scalar(
        sa.select(VisitorSession)
        .where(
            VisitorSession.site_id == site.id,
            VisitorSession.visitor_id == visitor_id,
            VisitorSession.last_activity_at >= now - IDLE_TIMEOUT,
        )
        .order_by(VisitorSession.last_activity_at.desc(), VisitorSession.id.desc())
        .limit(1)
    )


def current_session(session: Session, site: Site, hit: Hit, visitor_id: str, now: datetime) -> VisitorSession | None:
    """The session this hit continues, or None when a new one must start."""
    vs = _named_session(session, site, hit, visitor_id)
    if vs is None or not is_live(vs, now):
        # The script lost or dropped its session id, or another tab of this visitor moved on.
        vs = _latest_session(session, site, visitor_id, now)
    if vs is None or not is_live(vs, now):
        return None
    page_campaign = campaign_params(hit.url)
    if page_campaign and page_campaign != session_campaign(vs):
        return None  # a new campaign arrived: a new session, as established analytics do
    return vs


def _continue_statement():
    """One UPDATE … RETURNING that continues the visitor's live session on the site — the one the
    hit names if it is live, else the latest live one — or touches nothing (then a new one starts)."""
    vs = VisitorSession
    live = (sa.select(vs.id)
            .where(vs.site_id == sa.bindparam("p_site_id"), vs.visitor_id == sa.bindparam("p_visitor_id"),
                   vs.last_activity_at >= sa.bindparam("p_live_since", type_=vs.last_activity_at.type))
            .order_by((vs.id == sa.bindparam("p_named_id")).desc(), vs.last_activity_at.desc(), vs.id.desc())
            .limit(1).scalar_subquery())
    return (sa.update(vs).where(vs.id == live)
            .values(last_activity_at=sa.bindparam("p_now", type_=vs.last_activity_at.type),
                    page_views=vs.page_views + sa.bindparam("p_views"))
            .returning(vs.id))


_CONTINUE = _continue_statement()


def continue_session(session: Session, site, hit: Hit, visitor_id: str, now: datetime) -> int | None:
    """The fast path of `current_session` + its update, for a page bringing no campaign (nearly
    every page after the first): the decision and the write in one statement, no ORM objects."""
    return session.connection().execute(_CONTINUE, {
        "p_site_id": site.id, "p_visitor_id": visitor_id, "p_live_since": now - IDLE_TIMEOUT,
        "p_named_id": hit.session_id or 0, "p_now": now, "p_views": 1 if hit.event == "view" else 0,
    }).scalar()


# --------------------------------------------------------------------------- the one-statement page view
#
# A returning visitor's next page (no campaign in its address) is most of the traffic. `continue_at_site`
# does its whole database part in ONE statement on a plain DB-API connection in autocommit (no ORM
# session, no BEGIN/COMMIT round trips): the site by its key, the page's origin against the site's
# domain, the visitor's live session on that site, and its update. Whatever it does not settle — no
# such site, a foreign origin, no live session, a bot, a campaign, bad input — goes the general way
# (`collect` through the Flask view), which answers, refuses or starts the session exactly as before.


def origin_domains(origin: str | None) -> list[str]:
    """The site domains an `Origin` (or Referer) belongs to: its host and every parent domain of it
    ("www.shop.ru" → www.shop.ru, shop.ru, ru). A site whose stored domain (normalised by
    `core.tracking.catalog.normalise_domain`: lower-case, ASCII, no "www.") is one of them passes
    `origin_allowed`; an empty list for what can never pass (no origin, "null", not http(s))."""
    if not origin or origin == "null":
        return []
    try:
        parts = urlsplit(origin.strip())
        host = parts.hostname
    except ValueError:
        return []
    if parts.scheme.lower() not in ("http", "https") or not host:
        return []
    host = _ascii(host.rstrip(".").lower())
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels)) if labels[i]]


def one_statement_domains(hit: Hit, user_agent: str | None, origin: str | None) -> list[str]:
    """The `origin_domains` to continue this hit's session with `continue_at_site`, or [] when the hit
    goes the general way: not a page view or ping, no visitor id, a bot, a campaign in its address,
    or an origin that can never be a site's."""
    if hit.event not in ("view", "ping") or not hit.visitor_id or is_bot(user_agent):
        return []
    if campaign_params(hit.url):
        return []
    return origin_domains(origin)


def _continue_at_site_statement():
    vs, site = VisitorSession, Site
    live = (sa.select(vs.id)
            .join(site, sa.and_(site.id == vs.site_id, site.account_id == vs.account_id))
            .where(site.site_key == sa.bindparam("p_key"),
                   site.domain == sa.any_(sa.bindparam("p_domains", type_=postgresql.ARRAY(sa.String))),
                   vs.visitor_id == sa.bindparam("p_visitor_id"),
                   vs.last_activity_at >= sa.bindparam("p_live_since"))
            .order_by((vs.id == sa.bindparam("p_named_id")).desc(), vs.last_activity_at.desc(), vs.id.desc())
            .limit(1).scalar_subquery())
    statement = (sa.update(vs).where(vs.id == live)
                 .values(last_activity_at=sa.bindparam("p_now"), page_views=vs.page_views + sa.bindparam("p_views"))
                 .returning(vs.id))
    # Compiled once, to SQL with $1… placeholders: each connection PREPAREs it once (PostgreSQL then
    # neither parses nor plans it per hit) and the hot path pays for neither building nor compiling it.
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    return str(compiled), compiled.positiontup, {name: value for name, value in compiled.params.items()
                                                 if not name.startswith("p_")}


_CONTINUE_SQL, _CONTINUE_ORDER, _CONTINUE_CONSTANTS = _continue_at_site_statement()  # the constants: LIMIT 1
CONTINUE_AT_SITE = "cs_continue_at_site"  # the prepared statement's name on a connection
PREPARE_CONTINUE_AT_SITE = f"PREPARE {CONTINUE_AT_SITE} AS {_CONTINUE_SQL}"
_EXECUTE_CONTINUE = f"EXECUTE {CONTINUE_AT_SITE} ({', '.join(['%s'] * len(_CONTINUE_ORDER))})"


def continue_at_site(dbapi_connection, site_key: str, domains: list[str], hit: Hit, now: datetime | None = None) -> int | None:
    """Continue `hit.visitor_id`'s live session on the site with this key, when the page's origin is
    the site's (`domains`: `origin_domains(origin)`); the session id, or None when nothing was
    touched. PostgreSQL only; `dbapi_connection` is a psycopg2 connection in autocommit (the update
    is committed when this returns) on which `PREPARE_CONTINUE_AT_SITE` ran. The caller has checked
    the quotas and took `domains` from `one_statement_domains` (a page view or ping of a visitor, no
    bot, no campaign)."""
    now = now or utcnow()
    values = {**_CONTINUE_CONSTANTS, "p_key": site_key, "p_domains": domains, "p_visitor_id": hit.visitor_id,
              "p_live_since": now - IDLE_TIMEOUT, "p_named_id": hit.session_id or 0, "p_now": now,
              "p_views": 1 if hit.event == "view" else 0}
    with dbapi_connection.cursor() as cursor:
        cursor.execute(_EXECUTE_CONTINUE, [values[name] for name in _CONTINUE_ORDER])
        row = cursor.fetchone()
    return row[0] if row else None


def hit_quotas(settings: Settings, site_key: Any, ip: str | None) -> tuple[Quota, Quota]:
    """Every hit counts against its client IP (a minute) and its site (a second); see README, Security.
    The site key is the one the hit claims, so the check runs before any database work."""
    site = hashlib.sha256(str(site_key or "")[:100].encode()).hexdigest()[:24]
    return (
        Quota("hits_per_ip", f"t:ip:{client_bucket(ip, settings.ip_salt)}", settings.tracking_hits_per_ip_per_minute, 60),
        Quota("hits_per_site", f"t:site:{site}", settings.tracking_hits_per_site_per_second, 1),
    )


def new_session_quota(settings: Settings, ip: str | None) -> Quota:
    """New sessions per client IP a minute: a visitor starts a handful, a script forging them thousands."""
    return Quota("new_sessions_per_ip", f"t:new:{client_bucket(ip, settings.ip_salt)}",
                 settings.tracking_new_sessions_per_ip_per_minute, 60)


def collect(
    session: Session,
    site,
    hit: Hit,
    *,
    user_agent: str | None = None,
    ip: str | None = None,
    ip_salt: str | bytes | None = None,
    now: datetime | None = None,
    admit_new_session: Callable[[], None] | None = None,
) -> CollectResult:
    """Continue the visitor's session or start a new one; flush (the caller commits). `site`: a
    Site or a row of `find_site_row` (id, account_id).

    `admit_new_session` runs just before a session would be created and may raise (the caller's
    quota, `core.platform.ratelimit.QuotaExceeded`): nothing has been written by then."""
    now = now or utcnow()
    visitor_id = hit.visitor_id or new_visitor_id()
    if is_bot(user_agent):
        return CollectResult(tracked=False, visitor_id=visitor_id, session_id=None)

    if hit.visitor_id and not campaign_params(hit.url):
        continued = continue_session(session, site, hit, visitor_id, now)
        if continued is not None:
            return CollectResult(tracked=True, visitor_id=visitor_id, session_id=continued)
        vs = None
    else:
        vs = current_session(session, site, hit, visitor_id, now) if hit.visitor_id else None
    if vs is not None:
        values: dict[str, Any] = {"last_activity_at": now}
        if hit.event == "view":
            values["page_views"] = VisitorSession.page_views + 1
        session.execute(sa.update(VisitorSession).where(VisitorSession.id == vs.id).values(**values))
        return CollectResult(tracked=True, visitor_id=visitor_id, session_id=vs.id)
    if hit.event == "ping":
        return CollectResult(tracked=True, visitor_id=visitor_id, session_id=None)

    if admit_new_session is not None:
        admit_new_session()
    vs = create_session(
        session, site.account_id, site.id, started_at=now, visitor_id=visitor_id, entrance_page=hit.url,
        referrer=hit.referrer, user_agent=user_agent, ip=ip, ip_salt=ip_salt,
    )
    if vs is None:  # pragma: no cover - is_bot was checked above
        return CollectResult(tracked=False, visitor_id=visitor_id, session_id=None)
    vs.entrance_title = hit.title
    session.flush()
    return CollectResult(tracked=True, visitor_id=visitor_id, session_id=vs.id, new_session=True)


# --------------------------------------------------------------------------- the snippet


def script_url(public_url: str, site: Site) -> str:
    return f"{public_url.rstrip('/')}/t/{site.site_key}.js"


SNIPPET_TITLE = define("tracking.snippet_title", N_("Chatsource: the main tracking code of the site %(domain)s"))


def tracking_snippet(public_url: str, site: Site, translations: Translations | None = None) -> str:
    """The main tracking code as the site owner pastes it into every page (before </head>).

    It defines a tiny `window.Chatsource` queue at once, so "the script for your site" and the site's
    own code can call `Chatsource.onReady(fn)` before the real script (loaded async) arrives.
    """
    src = json.dumps(script_url(public_url, site))
    return (
        f"<!-- {render(SNIPPET_TITLE(domain=html.escape(site.domain)), translations).replace('--', ' ')} -->\n"
        "<script>\n"
        "(function (w, d, u) {\n"
        "  w.Chatsource = w.Chatsource || {_q: [], onReady: function (f) { this._q.push(f); }};\n"
        "  var s = d.createElement('script'); s.async = true; s.src = u;\n"
        "  (d.head || d.documentElement).appendChild(s);\n"
        f"}})(window, document, {src});\n"
        "</script>"
    )
