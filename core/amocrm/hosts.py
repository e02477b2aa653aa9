"""Which hosts may receive our tokens and client secret.

Every URL the amoCRM layer requests (token endpoint, API, pagination links) passes `check_url`
first. A pattern is either an exact host (`127.0.0.1`, `localhost`, `sub.amocrm.ru`) or `*.` plus a
domain, which matches any subdomain at any depth but not the domain itself: `*.amocrm.ru` matches
`a.amocrm.ru` and `a.b.amocrm.ru`, not `amocrm.ru` nor `evilamocrm.ru`. Ports are ignored and
comparison is case-insensitive. Plain http is only allowed to loopback hosts (the local sandbox).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

from core.amocrm.errors import HostNotAllowed
from core.platform.messages import N_, define

# What the admin says about a refused address (`HostNotAllowed.said`), in the reader's language.
ADDRESS_EMPTY = define("amocrm.address.empty", N_("Enter the address."))
ADDRESS_SUSPICIOUS = define("amocrm.address.suspicious", N_("The address contains spaces or control characters."))
ADDRESS_INVALID = define("amocrm.address.invalid", N_("This is not a valid address (%(error)s)."))
ADDRESS_NOT_HTTPS = define("amocrm.address.not_https", N_("The address must start with https://."))
ADDRESS_USERINFO = define("amocrm.address.userinfo", N_("The address must not contain a user name or password."))
ADDRESS_NO_HOST = define("amocrm.address.no_host", N_("The address has no host name."))
HOST_NOT_ALLOWED = define("amocrm.address.host_not_allowed", N_(
    "%(host)s is not an amoCRM or Kommo address, so we will not send credentials there (allowed: %(allowed)s; "
    "the server's AMOCRM_ALLOWED_HOSTS setting)."))
PLAIN_HTTP = define("amocrm.address.plain_http", N_(
    "Plain http is allowed only to this machine (127.0.0.1, localhost); use https://%(host)s."))

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# Characters that different URL parsers disagree about; a legitimate amoCRM URL never has them.
_SUSPICIOUS = re.compile(r"[\\\s\x00-\x1f\x7f]")


def _strip_port(host: str) -> str:
    host = host.strip()
    if host.startswith("["):  # [::1] or [::1]:8080
        end = host.find("]")
        return host[1:end] if end != -1 else host[1:]
    if host.count(":") == 1:  # name:port or v4:port (a bare IPv6 address has several colons)
        return host.split(":", 1)[0]
    return host


def normalise_host(host: str | None) -> str:
    """Lower-case, without port, brackets or a trailing dot."""
    if not host:
        return ""
    return _strip_port(host).lower().rstrip(".")


def _ip(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _valid_hostname(host: str) -> bool:
    if _ip(host) is not None:
        return True
    if not host or len(host) > 253:
        return False
    return all(_LABEL.match(label) for label in host.split("."))


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and `localhost` (with or without a port)."""
    host = normalise_host(host)
    if host == "localhost":
        return True
    ip = _ip(host)
    return bool(ip is not None and ip.is_loopback)


def host_allowed(host: str | None, patterns: Iterable[str]) -> bool:
    host = normalise_host(host)
    if not host or not _valid_hostname(host):
        return False
    for raw in patterns:
        pattern = normalise_host(raw)
        if not pattern:
            continue
        if pattern.startswith("*."):
            suffix = pattern[1:]  # ".amocrm.ru"
            if "*" in suffix or len(suffix) < 2:
                continue  # only a leading "*." wildcard is supported
            if host.endswith(suffix) and len(host) > len(suffix):
                return True
        elif "*" not in pattern and host == pattern:
            return True
    return False


def check_url(url: str, patterns: Iterable[str]) -> str:
    """Return `url` normalised (lower-case host, no fragment), or raise `HostNotAllowed`.

    Nothing is sent anywhere: this is the gate before a request is made."""
    patterns = tuple(patterns)
    if not isinstance(url, str) or not url:
        raise HostNotAllowed("The amoCRM address is empty.", ADDRESS_EMPTY())
    if _SUSPICIOUS.search(url):
        raise HostNotAllowed("The amoCRM address contains spaces or control characters.", ADDRESS_SUSPICIOUS())
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise HostNotAllowed(f"The amoCRM address is not a valid URL ({exc}).", ADDRESS_INVALID(error=str(exc))) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise HostNotAllowed("The amoCRM address must start with https://.", ADDRESS_NOT_HTTPS())
    if "@" in parts.netloc:
        raise HostNotAllowed("The amoCRM address must not contain a user name or password.", ADDRESS_USERINFO())
    host = normalise_host(parts.hostname)
    if not host:
        raise HostNotAllowed("The amoCRM address has no host name.", ADDRESS_NO_HOST())
    if not host_allowed(host, patterns):
        allowed = ", ".join(patterns) or "(none)"
        raise HostNotAllowed(
            f"The host {host!r} is not an amoCRM host we may send credentials to "
            f"(allowed: {allowed}; set AMOCRM_ALLOWED_HOSTS to change this).",
            HOST_NOT_ALLOWED(host=repr(host), allowed=allowed),
        )
    if scheme == "http" and not is_loopback(host):
        raise HostNotAllowed(
            f"Plain http is only allowed to this machine (127.0.0.1, localhost); use https://{host}.",
            PLAIN_HTTP(host=host),
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


def production_pattern_problem(raw: str) -> str | None:
    """Why `raw` is too broad an AMOCRM_ALLOWED_HOSTS entry for production, or None when it is fine.

    Tokens and the client secret go to whatever host matches. In production that must be a real amoCRM
    or Kommo domain: a loopback or IP entry would let an integration's url point our credentials at a
    machine next to us, and `*`, `*.ru` or `*.com` would let it point them at any site on the Internet."""
    pattern = normalise_host(raw)
    if pattern == "localhost" or pattern.endswith(".localhost") or is_loopback(pattern):
        return f"{raw!r} is a loopback host (the sandbox runs only in development)"
    bare = pattern[2:] if pattern.startswith("*.") else pattern
    if _ip(bare) is not None or _ip(pattern) is not None:
        return f"{raw!r} is an IP address: name the amoCRM domain instead"
    if "*" in bare:
        return f"{raw!r}: only a leading '*.' wildcard is supported"
    if pattern.startswith("*.") and bare.count(".") < 1:
        return f"{raw!r} is too broad: a wildcard needs a domain and its zone, e.g. '*.amocrm.ru'"
    if "." not in bare:
        return f"{raw!r} is not a full domain name"
    return None
