"""amoCRM's OAuth 2.0 token endpoint: exchange an authorization code, refresh a token pair.

`POST https://{account host}/oauth2/access_token` with a JSON body. Each refresh returns a NEW
refresh token and (per the Russian docs) invalidates the old one, so callers must go through
`core.amocrm.tokens.TokenManager`, which serialises refreshes and persists the pair before use.

Errors: 400/401 (and any other 4xx but 429) → `ReauthRequired` carrying amoCRM's `hint`
("Authorization code has expired", "Token has been revoked", …); 429, 5xx and network errors →
`AmoTransient`; 403 with an HTML page → `AmoBlocked`. No message ever contains a token or secret.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import requests

from core.amocrm.errors import AmoBlocked, AmoTransient, ReauthRequired
from core.amocrm.hosts import check_url
from core.platform.ratelimit import RateLimitTimeout

log = logging.getLogger("chatsource.amocrm.oauth")

DEFAULT_EXPIRES_IN = 86400  # amoCRM access tokens live 24 h
# How long a token request may wait for a rate-limit slot. Kept short: the refresh runs under the
# `oauth-refresh` lock, which expires after 30 s.
LIMITER_DEADLINE_S = 10.0


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime  # aware, UTC; computed from `expires_in` and our clock
    token_type: str = "Bearer"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def exchange_code(services, token_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str) -> TokenSet:
    """Trade the `code` from the OAuth redirect for a token pair (the code lives 20 minutes)."""
    payload = {
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
    }
    return _token_request(services, token_url, payload, previous_refresh_token=None)


def refresh_tokens(
    services, token_url: str, client_id: str, client_secret: str, refresh_token: str, redirect_uri: str
) -> TokenSet:
    """Trade a refresh token for a new pair. The old refresh token must be considered spent."""
    payload = {
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "redirect_uri": redirect_uri,
    }
    return _token_request(services, token_url, payload, previous_refresh_token=refresh_token)


def _json_or_none(response: requests.Response):
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _looks_like_html(response: requests.Response) -> bool:
    ctype = (response.headers.get("Content-Type") or "").lower()
    if "html" in ctype:
        return True
    head = response.content[:200].lstrip().lower()
    return head.startswith(b"<!doctype") or head.startswith(b"<html")


def _short(text, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _token_request(services, token_url: str, payload: dict, previous_refresh_token: str | None) -> TokenSet:
    settings = services.settings
    url = check_url(token_url, settings.amocrm_allowed_hosts)
    host = urlsplit(url).hostname or ""
    key = f"amo:{host}"
    grant = payload["grant_type"]
    try:
        slot = services.limiter.acquire(key, deadline_s=LIMITER_DEADLINE_S)
    except RateLimitTimeout as exc:
        raise AmoTransient(
            f"amoCRM token request to {host} postponed: rate limit busy", retry_after=exc.retry_after_s
        ) from None

    started = time.monotonic()
    try:
        response = services.http.post(
            url,
            json=payload,
            headers={"Accept": "application/json"},
            timeout=settings.amocrm_timeout_seconds,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise AmoTransient(f"amoCRM token endpoint {host} timed out") from None
    except requests.RequestException as exc:
        raise AmoTransient(f"amoCRM token endpoint {host} unreachable ({type(exc).__name__})") from None
    finally:
        services.limiter.answered(slot)  # amoCRM counted the call on arrival, before this
    elapsed_ms = (time.monotonic() - started) * 1000
    request_id = response.headers.get("X-Request-Id")
    status = response.status_code
    log.info(
        "amoCRM POST %s grant=%s -> %s in %.0f ms request_id=%s",
        urlsplit(url).path, grant, status, elapsed_ms, request_id or "-",
    )

    data = _json_or_none(response)
    if status == 200:
        if not data or not data.get("access_token"):
            raise AmoTransient(f"amoCRM token endpoint {host} returned an unexpected body", status=status,
                               request_id=request_id)
        refresh = data.get("refresh_token") or previous_refresh_token
        if not refresh:
            raise ReauthRequired("amoCRM issued no refresh token; reconnect the integration", status=status,
                                 request_id=request_id)
        try:
            expires_in = int(data.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        return TokenSet(
            access_token=str(data["access_token"]),
            refresh_token=str(refresh),
            expires_at=_utcnow() + timedelta(seconds=expires_in),
            token_type=str(data.get("token_type") or "Bearer"),
        )

    if status == 429:
        retry_after = _retry_after(response, data)
        if retry_after:
            services.limiter.penalise(key, retry_after)
        raise AmoTransient(f"amoCRM token endpoint {host} answered 429 Too Many Requests", status=status,
                           request_id=request_id, retry_after=retry_after)
    if status >= 500:
        raise AmoTransient(f"amoCRM token endpoint {host} answered {status}", status=status, request_id=request_id)
    if status == 403 and _looks_like_html(response):
        raise AmoBlocked(f"amoCRM blocked access to {host} (403 with an HTML page)", status=status,
                         request_id=request_id)
    if 300 <= status < 400:
        # The account address changed (or the token url is wrong): a person must reconnect.
        raise ReauthRequired(
            f"amoCRM token endpoint {host} redirected ({status}); the account address may have changed, "
            "reconnect the integration", status=status, request_id=request_id)

    # 400/401 and other 4xx: the code or refresh token is no good, or the client id/secret is wrong.
    what = "authorization code" if grant == "authorization_code" else "refresh token"
    reason = ""
    if data:
        reason = data.get("hint") or data.get("detail") or data.get("title") or ""
    message = f"amoCRM rejected the {what} ({status}"
    message += f": {_short(reason)})" if reason else ")"
    message += "; reconnect the integration"
    raise ReauthRequired(message, status=status, request_id=request_id)


def _retry_after(response: requests.Response, data: dict | None) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"), data)


def parse_retry_after(header: str | None, data: dict | None = None) -> float | None:
    """Seconds from a Retry-After header (seconds or HTTP date) or amoCRM's JSON `retry_after`."""
    candidates = [header]
    if isinstance(data, dict):
        candidates.append(data.get("retry_after"))
    for value in candidates:
        if value is None or value == "":
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            try:
                from email.utils import parsedate_to_datetime

                when = parsedate_to_datetime(str(value))
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                seconds = (when - _utcnow()).total_seconds()
            except (TypeError, ValueError, IndexError, OverflowError):
                continue
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
            continue
        return max(0.0, seconds)
    return None
