"""Reading the urls a visit brings: the entrance page, the referrer, the site's domain.

Never raising on junk (the tracking endpoint is public): `parse_url` adds a missing scheme and returns
None for what cannot be a url; `host_of`, `ascii_host` (punycode, so «мойсайт.рф» and its xn-- form are
one site), `normalize_domain`; `query_params` of the query string and the fragment; `landing_params`, the
UTM tags and click ids written in an entrance page; `search_engine_of` a referrer's host.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core.models import UTM_FIELDS

# Click ids that only ads produce.
PAID_CLICK_IDS = ("gclid", "yclid", "msclkid", "ttclid", "dclid", "wbraid", "gbraid")
# Click ids we recognise and keep (in `click_ids`, and gclid/yclid/fbclid in their own columns).
KNOWN_CLICK_IDS = PAID_CLICK_IDS + ("fbclid", "ysclid", "twclid", "li_fat_id", "epik", "rdt_cid", "vkclid")

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


def clean(value: Any, limit: int | None = None) -> str | None:
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


def parse_url(url: str | None):
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


def host_of(parts) -> str | None:
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


def ascii_host(host: str) -> str:
    """Punycode form for comparisons ("мойсайт.рф" and "xn--80ajbkgcgb.xn--p1ai" are one site)."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def normalize_domain(value: str | None) -> str | None:
    """The bare host of a domain or URL, lower-case, without "www." (None for junk)."""
    host = host_of(parse_url(value)) if value else None
    if host and host.startswith("www."):
        host = host[4:]
    return host or None


def domain_in(host: str, domains: tuple[str, ...]) -> bool:
    """Whether `host` is one of `domains` or a subdomain of one (entries with a path are skipped)."""
    return any(host == d or host.endswith("." + d) for d in domains if "/" not in d)


def url_in(host: str, path: str, entries: tuple[str, ...]) -> bool:
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


def search_engine_of(host: str) -> tuple[str, tuple[str, ...]] | None:
    bare = host
    for prefix in ("www.", "m.", "touch.", "mobile."):
        if bare.startswith(prefix):
            bare = bare[len(prefix):]
            break
    for name, rx, params in _SEARCH_ENGINES:
        if rx.match(bare):
            return name, params
    return None


def query_params(parts) -> dict[str, str]:
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
    parts = parse_url(entrance_page)
    if parts is None and isinstance(entrance_page, str) and entrance_page.strip().startswith(("/", "?")):
        try:
            parts = urlsplit(entrance_page.strip())  # a path without the host
        except ValueError:
            parts = None
    params = query_params(parts)
    wanted = set(UTM_FIELDS) | set(KNOWN_CLICK_IDS)
    return {k: v for k, v in params.items() if k in wanted and v.strip()}
