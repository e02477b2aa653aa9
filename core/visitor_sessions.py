"""Visitor sessions: creation, traffic classification and attribution to a campaign and a source.

`create_session` is the one way a session comes to exist — the Data API (``POST /api/v1/sessions``)
and the tracking endpoint both call it — so both get the same channel, the same campaign and source
matching, the same truncation and the same privacy rules (the IP is kept only as a keyed hash).

Channels (``VisitorSession.channel``), decided in this order, after GA4's default channel grouping
and Yandex Metrica's traffic sources:

1. ``paid`` — an ad click id (gclid, yclid, msclkid, ttclid, dclid, wbraid, gbraid), a paid
   utm_medium (``cpc``, ``ppc``, ``cpm``, ``cpa``, ``display``, ``banner``, ``retargeting``,
   ``paid…``, anything containing ``cp`` as in GA4), or an ad network's click redirect as referrer
   (googleadservices, doubleclick, yabs.yandex…);
2. with UTM tags: ``email`` (utm_medium email/newsletter…), ``messenger`` (utm_source telegram,
   whatsapp, viber… or utm_medium messenger), ``social`` (utm_medium social/smm or a social network
   as utm_source), ``organic`` (utm_medium organic or a search engine as utm_source), ``direct``
   (``(direct)`` / ``(none)``), and ``referral`` for any other utm_source or utm_medium;
3. without UTM tags, by referrer: none → ``direct``; the site itself or its subdomains →
   ``internal``; a search engine → ``organic`` (with `search_engine` and, when the referrer shows
   it, `search_query`); a webmail → ``email``; a messenger → ``messenger``; a social network →
   ``social``; anything else → ``referral``.

``fbclid`` is kept but does not by itself make a visit paid: Facebook appends it to every outbound
link, organic posts included (GA4 and Metrica do not count it as paid either); a Facebook ad
carries its utm_medium. ``ysclid`` (Yandex search, organic) is likewise not an ad click id.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core import user_agents
from core.catalog import NotFound
from core.conditions import CONDITION_PARAMS, first_match
from core.db import utcnow
from core.models import CLICK_ID_FIELDS, UTM_FIELDS, Campaign, Site, Source, VisitorSession

log = logging.getLogger(__name__)

CHANNELS = ("paid", "organic", "social", "referral", "direct", "email", "messenger", "internal")

# Click ids that only ads produce.
PAID_CLICK_IDS = ("gclid", "yclid", "msclkid", "ttclid", "dclid", "wbraid", "gbraid")
# Click ids we recognise and keep (in `click_ids`, and gclid/yclid/fbclid in their own columns).
KNOWN_CLICK_IDS = PAID_CLICK_IDS + ("fbclid", "ysclid", "twclid", "li_fat_id", "epik", "rdt_cid", "vkclid")

# Column sizes of VisitorSession; Text columns get a sane cap too (the tracking endpoint is public).
MAX_URL_LENGTH = 4096
MAX_SEARCH_QUERY_LENGTH = 1000
MAX_VISITOR_ID_LENGTH = 64
MAX_UTM_LENGTH = 500
MAX_CLICK_ID_LENGTH = 500
MAX_DOMAIN_LENGTH = 253
MAX_CLICK_ID_KEYS = 20
_CLICK_ID_KEY_RE = re.compile(r"^[a-z0-9_]{1,40}$")


class SiteNotFound(NotFound):
    """The site does not exist or belongs to another account (callers answer 404 either way)."""

    def __init__(self, site_id: Any):
        super().__init__(f"Site {site_id!r} not found")
        self.site_id = site_id


@dataclass
class TrafficInfo:
    referrer_domain: str | None = None
    search_engine: str | None = None
    search_query: str | None = None
    channel: str = "direct"
    click_ids: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- domains and URLs

# Search engines: (id, host regex without "www.", query parameters). Hosts are matched after the
# "www."/"m." prefix is removed.
_SEARCH_ENGINES: tuple[tuple[str, re.Pattern, tuple[str, ...]], ...] = tuple(
    (name, re.compile(rx), params)
    for name, rx, params in (
        ("google", r"^(?:[a-z]{2}\.|images\.|news\.|scholar\.)?google\.(?:com?\.)?[a-z]{2,3}$", ("q", "as_q")),
        ("yandex", r"^(?:yandex\.(?:com?\.)?[a-z]{2,3}|ya\.ru)$", ("text",)),
        ("bing", r"^(?:[a-z]{2}\.)?bing\.com$", ("q",)),
        ("duckduckgo", r"^(?:html\.|lite\.)?duckduckgo\.com$", ("q",)),
        ("mailru", r"^(?:go|search)\.mail\.ru$", ("q", "words")),
        ("rambler", r"^(?:nova\.|search\.)?rambler\.ru$", ("query", "words")),
        ("yahoo", r"^(?:[a-z]{2}\.)?(?:search\.)?yahoo\.(?:com?\.)?[a-z]{2,3}$", ("p", "q")),
        ("baidu", r"^baidu\.com$", ("wd", "word")),
        ("ecosia", r"^ecosia\.org$", ("q",)),
        ("brave", r"^search\.brave\.com$", ("q",)),
        ("qwant", r"^qwant\.com$", ("q",)),
        ("startpage", r"^startpage\.com$", ("query", "q")),
        ("naver", r"^search\.naver\.com$", ("query",)),
        ("seznam", r"^search\.seznam\.cz$", ("q",)),
        ("aol", r"^search\.aol\.com$", ("q",)),
        ("ask", r"^ask\.com$", ("q",)),
        ("sogou", r"^sogou\.com$", ("query",)),
    )
)
SEARCH_ENGINES = tuple(name for name, _rx, _params in _SEARCH_ENGINES)
# utm_source values that name a search engine (for utm_medium=organic or a bare utm_source).
_SEARCH_SOURCES = {
    "google": "google", "yandex": "yandex", "ya.ru": "yandex", "bing": "bing", "duckduckgo": "duckduckgo",
    "mail.ru": "mailru", "mailru": "mailru", "go.mail.ru": "mailru", "rambler": "rambler", "yahoo": "yahoo",
    "baidu": "baidu", "ecosia": "ecosia", "qwant": "qwant", "naver": "naver", "seznam": "seznam",
}

_WEBMAIL_DOMAINS = (
    "mail.google.com", "mail.yandex.ru", "mail.yandex.com", "mail.yandex.by", "mail.yandex.kz", "e.mail.ru",
    "touch.mail.ru", "octavius.mail.ru", "mail.rambler.ru", "mail.yahoo.com", "outlook.live.com",
    "outlook.office.com", "outlook.office365.com", "mail.aol.com", "mail.proton.me", "mail.ukr.net",
    "webmail", "mail.zoho.com", "icloud.com/mail",
)
_MESSENGER_DOMAINS = (
    "t.me", "telegram.me", "telegram.org", "telegram.dog", "whatsapp.com", "wa.me", "viber.com", "vk.me",
    "web.max.ru", "max.ru", "discord.com", "discord.gg", "discordapp.com", "signal.org", "signal.me",
    "icq.com", "icq.im", "skype.com", "line.me", "m.me", "messenger.com", "snapchat.com",
)
_SOCIAL_DOMAINS = (
    "vk.com", "vk.ru", "vkontakte.ru", "away.vk.com", "ok.ru", "odnoklassniki.ru", "facebook.com", "fb.com",
    "fb.me", "instagram.com", "l.instagram.com", "t.co", "twitter.com", "x.com", "linkedin.com", "lnkd.in",
    "youtube.com", "youtu.be", "tiktok.com", "pinterest.com", "pin.it", "dzen.ru", "zen.yandex.ru",
    "reddit.com", "threads.net", "tumblr.com", "quora.com", "pikabu.ru", "vc.ru", "habr.com", "livejournal.com",
    "my.mail.ru", "rutube.ru", "twitch.tv", "snapchat.com", "weibo.com", "xing.com", "mastodon.social",
    "bsky.app", "yappy.media",
)
_PINTEREST_RE = re.compile(r"^pinterest\.(?:com?\.)?[a-z]{2,3}$")
_AD_DOMAINS = (
    "googleadservices.com", "doubleclick.net", "googlesyndication.com", "yabs.yandex.ru", "yabs.yandex.by",
    "yabs.yandex.kz", "an.yandex.ru", "yandexadexchange.net", "ads.vk.com", "ad.mail.ru", "bing.net/aclick",
    "adfox.ru", "criteo.com", "taboola.com", "outbrain.com",
)
# Referrers of mobile apps look like android-app://com.google.android.gm/.
_ANDROID_APPS = {
    "com.google.android.googlequicksearchbox": ("organic", "google"),
    "com.google.android.gm": ("email", None),
    "ru.yandex.searchplugin": ("organic", "yandex"),
    "com.yandex.browser": (None, None),
    "ru.mail.mailapp": ("email", None),
    "com.microsoft.office.outlook": ("email", None),
    "org.telegram.messenger": ("messenger", None),
    "org.telegram.messenger.web": ("messenger", None),
    "org.thunderdog.challegram": ("messenger", None),
    "com.whatsapp": ("messenger", None),
    "com.whatsapp.w4b": ("messenger", None),
    "com.viber.voip": ("messenger", None),
    "ru.oneme.app": ("messenger", None),
    "com.vkontakte.android": ("social", None),
    "ru.ok.android": ("social", None),
    "com.facebook.katana": ("social", None),
    "com.instagram.android": ("social", None),
    "com.twitter.android": ("social", None),
    "com.linkedin.android": ("social", None),
    "com.google.android.youtube": ("social", None),
    "com.zhiliaoapp.musically": ("social", None),
    "ru.zen.android": ("social", None),
}

_PAID_MEDIUM_RE = re.compile(
    r"^(?:.*cp.*|ppc|paid.*|retargeting|remarketing|display|banner|expandable|interstitial|"
    r"context|contextual|ads?|advert|advertising|sponsored|smm_?ads|target|targeting|"
    r"targeted|native|video_ads?|programmatic)$"
)
_EMAIL_VALUES = {"email", "e-mail", "e_mail", "e mail", "newsletter", "mailing", "emailing", "rassylka"}
_EMAIL_MEDIUMS = _EMAIL_VALUES | {"mail"}  # as utm_source, "mail" is more likely Mail.ru
_MESSENGER_SOURCES = {
    "telegram", "tg", "t.me", "telegram.me", "whatsapp", "wa", "wa.me", "viber", "vk.me", "vk_messenger",
    "vkmessenger", "max", "signal", "discord", "messenger", "icq", "skype", "line",
}
_MESSENGER_MEDIUMS = {"messenger", "messengers", "im", "chat", "telegram", "whatsapp", "viber"}
_SOCIAL_MEDIUMS = {
    "social", "social-network", "social-media", "social_media", "social_network", "sm", "social network",
    "social media", "smm", "socials", "post", "repost", "stories",
}
_SOCIAL_SOURCES = {
    "vk", "vk.com", "vkontakte", "ok", "ok.ru", "odnoklassniki", "facebook", "facebook.com", "fb", "instagram",
    "instagram.com", "ig", "twitter", "x.com", "t.co", "linkedin", "youtube", "youtube.com", "tiktok",
    "pinterest", "dzen", "dzen.ru", "zen", "reddit", "threads", "pikabu", "vc.ru", "habr", "rutube", "twitch",
}
_REFERRAL_MEDIUMS = {"referral", "ref", "app", "link", "partner", "affiliate", "affiliates"}
_NONE_VALUES = {"(none)", "(not set)", "none", "(direct)", "direct"}


def _clean(value: Any, limit: int | None = None) -> str | None:
    """A stripped string without NULs (PostgreSQL rejects them), cut to `limit`; None when empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value.replace("\x00", "").strip()
    if not value:
        return None
    if limit is not None and len(value) > limit:
        value = value[:limit].rstrip() or value[:limit]
    return value


def _parse_url(url: str | None):
    """urlsplit that never raises; adds a scheme to "example.com/path". None when unusable."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if not url or url.lower() in ("null", "undefined", "about:blank", "(direct)", "-"):
        return None
    if url.startswith("//"):
        url = "http:" + url
    elif not _SCHEME_RE.match(url):
        # No scheme: "example.com/path" or "example.com:8080/"; not "/path" nor "mailto:x".
        first = re.split(r"[/?#]", url, maxsplit=1)[0]
        if not first or (":" in first and not re.fullmatch(r"[^:]+:\d*", first)):
            return None
        url = "http://" + url
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - raises ValueError on a malformed IPv6 literal
    except ValueError:
        return None
    return parts


_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]{0,30}://")


def _host(parts) -> str | None:
    if parts is None:
        return None
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        return None
    host = host.strip().rstrip(".").lower()
    if not host or any(c.isspace() for c in host):
        return None
    return host


def _ascii_host(host: str) -> str:
    """Punycode form for comparisons ("мойсайт.рф" and "xn--80ajbkgcgb.xn--p1ai" are one site)."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def normalize_domain(value: str | None) -> str | None:
    """The bare host of a domain or URL, lower-case, without "www." (None for junk)."""
    host = _host(_parse_url(value)) if value else None
    if host and host.startswith("www."):
        host = host[4:]
    return host or None


def _domain_in(host: str, domains: tuple[str, ...]) -> bool:
    """Whether `host` is one of `domains` or a subdomain of one (entries with a path are skipped)."""
    return any(host == d or host.endswith("." + d) for d in domains if "/" not in d)


def _url_in(host: str, path: str, entries: tuple[str, ...]) -> bool:
    for entry in entries:
        if "/" in entry:
            d, _, p = entry.partition("/")
            if (host == d or host.endswith("." + d)) and path.lstrip("/").startswith(p):
                return True
        elif entry == "webmail":
            if host.startswith("webmail.") or ".webmail." in host:
                return True
        elif host == entry or host.endswith("." + entry):
            return True
    return False


def _search_engine_of(host: str) -> tuple[str, tuple[str, ...]] | None:
    bare = host
    for prefix in ("www.", "m.", "touch.", "mobile."):
        if bare.startswith(prefix):
            bare = bare[len(prefix):]
            break
    for name, rx, params in _SEARCH_ENGINES:
        if rx.match(bare):
            return name, params
    return None


def _query_params(parts) -> dict[str, str]:
    out: dict[str, str] = {}
    if parts is None:
        return out
    for chunk in (parts.query, parts.fragment):
        if not chunk or "=" not in chunk:
            continue
        try:
            pairs = parse_qsl(chunk, keep_blank_values=False, max_num_fields=200)
        except ValueError:
            continue
        for key, value in pairs:
            key = key.strip().lower()
            if key and key not in out:
                out[key] = value
    return out


def landing_params(entrance_page: str | None) -> dict[str, str]:
    """UTM tags and click ids written in the entrance page's query string (lower-case keys)."""
    parts = _parse_url(entrance_page)
    if parts is None and isinstance(entrance_page, str) and entrance_page.strip().startswith(("/", "?")):
        try:
            parts = urlsplit(entrance_page.strip())  # a path without the host
        except ValueError:
            parts = None
    params = _query_params(parts)
    wanted = set(UTM_FIELDS) | set(KNOWN_CLICK_IDS)
    return {k: v for k, v in params.items() if k in wanted and v.strip()}


# --------------------------------------------------------------------------- classification


def _normalize_click_ids(*sources: Mapping[str, Any] | None) -> dict[str, str]:
    """Merge click-id mappings (earlier ones win): lower-case keys, non-empty strings, capped."""
    out: dict[str, str] = {}
    for src in sources:
        if not src or not isinstance(src, Mapping):
            continue
        for key, value in src.items():
            if not isinstance(key, str):
                continue
            key = key.strip().lower()
            if not _CLICK_ID_KEY_RE.match(key) or key in out:
                continue
            if key in UTM_FIELDS:
                continue
            value = _clean(value, MAX_CLICK_ID_LENGTH)
            if value is None:
                continue
            if len(out) >= MAX_CLICK_ID_KEYS:
                break
            out[key] = value
    return out


def classify_traffic(
    entrance_page: str | None,
    referrer: str | None,
    site_domain: str | None,
    utm: Mapping[str, Any] | None = None,
    click_ids: Mapping[str, Any] | None = None,
) -> TrafficInfo:
    """Channel, referrer domain, search engine and query of a visit. Never raises.

    UTM tags and click ids missing from `utm`/`click_ids` are read from the entrance page's query
    string (with utm, only when no UTM tag was given at all, so that two sets are not mixed).
    """
    try:
        return _classify(entrance_page, referrer, site_domain, utm or {}, click_ids or {})
    except Exception:  # noqa: BLE001 - junk input must never fail a tracking request
        log.exception("classify_traffic failed; treating the visit as direct")
        return TrafficInfo(channel="direct")


def _classify(entrance_page, referrer, site_domain, utm, click_ids) -> TrafficInfo:
    landing = landing_params(entrance_page)
    utm_values = {f: (_clean(utm.get(f)) or "") for f in UTM_FIELDS}
    if not any(utm_values.values()):
        utm_values = {f: (_clean(landing.get(f)) or "") for f in UTM_FIELDS}
    ids = _normalize_click_ids(click_ids, {k: v for k, v in landing.items() if k in KNOWN_CLICK_IDS})

    ref_parts = _parse_url(referrer)
    ref_host = _host(ref_parts)
    ref_path = (ref_parts.path or "") if ref_parts is not None else ""
    ref_scheme = (ref_parts.scheme or "").lower() if ref_parts is not None else ""
    info = TrafficInfo(click_ids=ids)
    if ref_host:
        info.referrer_domain = (ref_host[4:] if ref_host.startswith("www.") else ref_host)[:MAX_DOMAIN_LENGTH]

    # What the referrer says, independently of the UTM tags.
    ref_channel: str | None = None
    if ref_host and ref_scheme == "android-app":
        ref_channel, engine = _ANDROID_APPS.get(ref_host, (None, None))
        info.search_engine = engine
        ref_channel = ref_channel or "referral"
    elif ref_host:
        site_host = normalize_domain(site_domain)
        site_host = _ascii_host(site_host) if site_host else None
        bare = _ascii_host(info.referrer_domain or ref_host)
        engine = _search_engine_of(ref_host)
        if site_host and (bare == site_host or bare.endswith("." + site_host)):
            ref_channel = "internal"
        elif _url_in(ref_host, ref_path, _AD_DOMAINS):
            ref_channel = "paid"
        elif _url_in(ref_host, ref_path, _WEBMAIL_DOMAINS):
            ref_channel = "email"
        elif engine:
            ref_channel = "organic"
            info.search_engine = engine[0]
            params = _query_params(ref_parts)
            for name in engine[1] + ("q", "text", "query", "p"):
                query = _clean(params.get(name), MAX_SEARCH_QUERY_LENGTH)
                if query and not query.lower().startswith(("http://", "https://")):  # google.com/url?q=<target>
                    info.search_query = query
                    break
        elif _domain_in(ref_host, _MESSENGER_DOMAINS) or (
            _domain_in(ref_host, ("vk.com", "vk.ru")) and re.match(r"^/(?:im\b|mail\b|write\d)", ref_path)
        ):
            ref_channel = "messenger"
        elif _domain_in(ref_host, _SOCIAL_DOMAINS) or _PINTEREST_RE.match(bare):
            ref_channel = "social"
        else:
            ref_channel = "referral"

    source = utm_values["utm_source"].lower()
    medium = utm_values["utm_medium"].lower()

    # 1. Paid: ad click ids, a paid medium, an ad network's redirect.
    if any(ids.get(k) for k in PAID_CLICK_IDS) or (medium and _PAID_MEDIUM_RE.match(medium)):
        info.channel = "paid"
    elif ref_channel == "paid" and not medium:
        info.channel = "paid"
    # 2. UTM tags decide.
    elif source or medium:
        if medium in _EMAIL_MEDIUMS or source in _EMAIL_VALUES:
            info.channel = "email"
        elif source in _MESSENGER_SOURCES or medium in _MESSENGER_MEDIUMS:
            info.channel = "messenger"
        elif medium in _SOCIAL_MEDIUMS or (source in _SOCIAL_SOURCES and medium not in _REFERRAL_MEDIUMS):
            info.channel = "social"
        elif medium == "organic" or (source in _SEARCH_SOURCES and medium not in _REFERRAL_MEDIUMS):
            info.channel = "organic"
            if not info.search_engine and source in _SEARCH_SOURCES:
                info.search_engine = _SEARCH_SOURCES[source]
        elif source in _NONE_VALUES and (not medium or medium in _NONE_VALUES):
            info.channel = "direct"
        else:
            info.channel = "referral"
    # 3. The referrer decides.
    else:
        info.channel = ref_channel or "direct"
    return info


# --------------------------------------------------------------------------- user agents

# Robots, devices and browsers: core.user_agents (crawlerdetect's list, ua-parser), cached per string.
is_bot = user_agents.is_bot
parse_user_agent = user_agents.parse_user_agent


# --------------------------------------------------------------------------- creation


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

    entrance_page = _clean(entrance_page, MAX_URL_LENGTH)
    referrer = _clean(referrer, MAX_URL_LENGTH)
    landing = landing_params(entrance_page)

    utm = {
        "utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign,
        "utm_term": utm_term, "utm_content": utm_content,
    }
    utm = {k: _clean(v, MAX_UTM_LENGTH) for k, v in utm.items()}
    if not any(utm.values()):
        utm = {k: _clean(landing.get(k), MAX_UTM_LENGTH) for k in UTM_FIELDS}

    named = {"gclid": gclid, "yclid": yclid, "fbclid": fbclid}
    ids = _normalize_click_ids(named, click_ids, {k: v for k, v in landing.items() if k in KNOWN_CLICK_IDS})
    if ip and not ip_salt:
        log.warning("create_session: an IP was given without ip_salt; it is not stored")

    traffic = classify_traffic(entrance_page, referrer, site.domain, utm, ids)
    device, browser = parse_user_agent(user_agent)

    vs = VisitorSession(
        account_id=account_id,
        site_id=site.id,
        visitor_id=_clean(visitor_id, MAX_VISITOR_ID_LENGTH),
        started_at=started,
        last_activity_at=started,
        entrance_page=entrance_page,
        referrer=referrer,
        referrer_domain=_clean(traffic.referrer_domain, MAX_DOMAIN_LENGTH),
        search_engine=_clean(traffic.search_engine, 50),
        search_query=_clean(traffic.search_query, MAX_SEARCH_QUERY_LENGTH),
        channel=traffic.channel,
        click_ids=dict(ids) or None,
        device=_clean(device, 20),
        browser=_clean(browser, 50),
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
    """The condition parameters (`core.conditions.CONDITION_PARAMS`) of a session."""
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
