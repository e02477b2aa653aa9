"""Visitor sessions: `create_session` is the one way a session comes to exist — the Data API
(``POST /api/v1/sessions``) and the tracking endpoint both call it — so both get the same channel
(core.tracking.classification), the same campaign and source matching (core.tracking.conditions), the same
truncation and the same privacy rules (the IP is kept only as a keyed hash). `to_dict` reads one back.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from datetime import datetime, timezone
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.models import (
    CLICK_ID_FIELDS,
    MAX_DOMAIN_LENGTH,
    MAX_SEARCH_QUERY_LENGTH,
    MAX_URL_LENGTH,
    MAX_UTM_LENGTH,
    MAX_VISITOR_ID_LENGTH,
    UTM_FIELDS,
    Campaign,
    Site,
    Source,
    VisitorSession,
)
from core.platform.db import utcnow
from core.platform.errors import NotFound
from core.tracking.classification import classify_traffic, normalize_click_ids
from core.tracking.conditions import CONDITION_PARAMS, first_match
from core.tracking.urls import KNOWN_CLICK_IDS, clean, landing_params
from core.tracking.user_agents import is_bot, parse_user_agent

log = logging.getLogger(__name__)


class SiteNotFound(NotFound):
    """The site does not exist or belongs to another account (callers answer 404 either way)."""

    def __init__(self, site_id: Any):
        super().__init__(f"Site {site_id!r} not found")
        self.site_id = site_id


def hash_ip(ip: str | None, salt: str | bytes | None) -> str | None:
    """HMAC-SHA256 of the normalised IP keyed by `salt` (hex); None without an IP, a valid IP or a salt.

    An unsalted hash of an IPv4 address is reversible by brute force (2^32 values), so without a
    salt nothing is stored.
    """
    if not ip or not salt:
        return None
    text = str(ip).split(",", 1)[0].strip()  # the client's address in an X-Forwarded-For list
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::\d+)?", text)
    if bracketed:
        text = bracketed.group(1)
    elif text.count(":") == 1 and "." in text:
        text = text.split(":", 1)[0]  # "1.2.3.4:5678"
    try:
        addr = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    key = salt.encode("utf-8") if isinstance(salt, str) else bytes(salt)
    return hmac.new(key, addr.compressed.encode("ascii"), hashlib.sha256).hexdigest()


def _aware(dt: datetime | None) -> datetime:
    if dt is None:
        return utcnow()
    if not isinstance(dt, datetime):
        raise TypeError("started_at must be a datetime")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError("started_at must be timezone-aware")
    return dt.astimezone(timezone.utc)


def create_session(
    session: Session,
    account_id: int,
    site_id: int,
    *,
    started_at: datetime | None = None,
    visitor_id: str | None = None,
    entrance_page: str | None = None,
    referrer: str | None = None,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    utm_campaign: str | None = None,
    utm_term: str | None = None,
    utm_content: str | None = None,
    gclid: str | None = None,
    yclid: str | None = None,
    fbclid: str | None = None,
    click_ids: Mapping[str, Any] | None = None,
    user_agent: str | None = None,
    ip: str | None = None,
    ip_salt: str | bytes | None = None,
) -> VisitorSession | None:
    """Create, classify and attribute a visitor session; flush (the caller commits).

    Returns None, storing nothing, when the user agent is a bot. Raises `SiteNotFound` when the site
    is not the account's, ValueError for a naive `started_at`. Over-long values are cut to the column
    sizes; UTM tags and click ids missing from the arguments are read from the entrance page's URL.
    The IP is kept only as `hash_ip(ip, ip_salt)`.
    """
    if isinstance(site_id, str) and site_id.strip().isdigit():
        site_id = int(site_id.strip())
    site = session.get(Site, site_id) if isinstance(site_id, int) and not isinstance(site_id, bool) else None
    if site is None or site.account_id != account_id:
        raise SiteNotFound(site_id)
    if is_bot(user_agent):
        return None
    started = _aware(started_at)

    entrance_page = clean(entrance_page, MAX_URL_LENGTH)
    referrer = clean(referrer, MAX_URL_LENGTH)
    landing = landing_params(entrance_page)

    utm = {
        "utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign,
        "utm_term": utm_term, "utm_content": utm_content,
    }
    utm = {k: clean(v, MAX_UTM_LENGTH) for k, v in utm.items()}
    if not any(utm.values()):
        utm = {k: clean(landing.get(k), MAX_UTM_LENGTH) for k in UTM_FIELDS}

    named = {"gclid": gclid, "yclid": yclid, "fbclid": fbclid}
    ids = normalize_click_ids(named, click_ids, {k: v for k, v in landing.items() if k in KNOWN_CLICK_IDS})
    if ip and not ip_salt:
        log.warning("create_session: an IP was given without ip_salt; it is not stored")

    traffic = classify_traffic(entrance_page, referrer, site.domain, utm, ids)
    device, browser = parse_user_agent(user_agent)

    vs = VisitorSession(
        account_id=account_id,
        site_id=site.id,
        visitor_id=clean(visitor_id, MAX_VISITOR_ID_LENGTH),
        started_at=started,
        last_activity_at=started,
        entrance_page=entrance_page,
        referrer=referrer,
        referrer_domain=clean(traffic.referrer_domain, MAX_DOMAIN_LENGTH),
        search_engine=clean(traffic.search_engine, 50),
        search_query=clean(traffic.search_query, MAX_SEARCH_QUERY_LENGTH),
        channel=traffic.channel,
        click_ids=dict(ids) or None,
        device=clean(device, 20),
        browser=clean(browser, 50),
        ip_hash=hash_ip(ip, ip_salt),
        **utm,
        **{name: ids.get(name) for name in CLICK_ID_FIELDS},
    )

    params = session_params(vs)
    campaigns = session.execute(
        sa.select(Campaign.id, Campaign.priority, Campaign.conditions).where(
            Campaign.account_id == account_id, Campaign.site_id == site.id
        )
    ).all()
    vs.campaign_id = first_match(((c.id, c.priority, c.conditions) for c in campaigns), params)
    sources = session.execute(
        sa.select(Source.id, Source.priority, Source.conditions).where(Source.account_id == account_id)
    ).all()
    vs.source_id = first_match(((s.id, s.priority, s.conditions) for s in sources), params)

    session.add(vs)
    session.flush()
    return vs


# --------------------------------------------------------------------------- reading


def session_params(vs: VisitorSession) -> dict[str, str | None]:
    """The condition parameters (`core.tracking.conditions.CONDITION_PARAMS`) of a session."""
    return {name: getattr(vs, name) for name in CONDITION_PARAMS}


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat()


def to_dict(vs: VisitorSession) -> dict[str, Any]:
    """The session as the Data API shows it."""
    out: dict[str, Any] = {
        "id": vs.id,
        "site_id": vs.site_id,
        "visitor_id": vs.visitor_id,
        "started_at": _iso(vs.started_at),
        "entrance_page": vs.entrance_page,
        "referrer": vs.referrer,
        "referrer_domain": vs.referrer_domain,
        "search_engine": vs.search_engine,
        "search_query": vs.search_query,
    }
    for name in UTM_FIELDS:
        out[name] = getattr(vs, name)
    for name in CLICK_ID_FIELDS:
        out[name] = getattr(vs, name)
    out.update(channel=vs.channel, campaign_id=vs.campaign_id, source_id=vs.source_id)
    return out
