"""The channel of a visit, from its UTM tags, click ids and referrer (`classify_traffic`).

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

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from core.models import (
    MAX_CLICK_ID_KEYS,
    MAX_CLICK_ID_LENGTH,
    MAX_DOMAIN_LENGTH,
    MAX_SEARCH_QUERY_LENGTH,
    UTM_FIELDS,
)
from core.tracking.urls import (
    KNOWN_CLICK_IDS,
    PAID_CLICK_IDS,
    ascii_host,
    clean,
    domain_in,
    host_of,
    landing_params,
    normalize_domain,
    parse_url,
    query_params,
    search_engine_of,
    url_in,
)

log = logging.getLogger(__name__)

CHANNELS = ("paid", "organic", "social", "referral", "direct", "email", "messenger", "internal")
_CLICK_ID_KEY_RE = re.compile(r"^[a-z0-9_]{1,40}$")


@dataclass
class TrafficInfo:
    referrer_domain: str | None = None
    search_engine: str | None = None
    search_query: str | None = None
    channel: str = "direct"
    click_ids: dict[str, str] = field(default_factory=dict)


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


def normalize_click_ids(*sources: Mapping[str, Any] | None) -> dict[str, str]:
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
            value = clean(value, MAX_CLICK_ID_LENGTH)
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
    utm_values = {f: (clean(utm.get(f)) or "") for f in UTM_FIELDS}
    if not any(utm_values.values()):
        utm_values = {f: (clean(landing.get(f)) or "") for f in UTM_FIELDS}
    ids = normalize_click_ids(click_ids, {k: v for k, v in landing.items() if k in KNOWN_CLICK_IDS})

    ref_parts = parse_url(referrer)
    ref_host = host_of(ref_parts)
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
        site_host = ascii_host(site_host) if site_host else None
        bare = ascii_host(info.referrer_domain or ref_host)
        engine = search_engine_of(ref_host)
        if site_host and (bare == site_host or bare.endswith("." + site_host)):
            ref_channel = "internal"
        elif url_in(ref_host, ref_path, _AD_DOMAINS):
            ref_channel = "paid"
        elif url_in(ref_host, ref_path, _WEBMAIL_DOMAINS):
            ref_channel = "email"
        elif engine:
            ref_channel = "organic"
            info.search_engine = engine[0]
            params = query_params(ref_parts)
            for name in engine[1] + ("q", "text", "query", "p"):
                query = clean(params.get(name), MAX_SEARCH_QUERY_LENGTH)
                if query and not query.lower().startswith(("http://", "https://")):  # google.com/url?q=<target>
                    info.search_query = query
                    break
        elif domain_in(ref_host, _MESSENGER_DOMAINS) or (
            domain_in(ref_host, ("vk.com", "vk.ru")) and re.match(r"^/(?:im\b|mail\b|write\d)", ref_path)
        ):
            ref_channel = "messenger"
        elif domain_in(ref_host, _SOCIAL_DOMAINS) or _PINTEREST_RE.match(bare):
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
