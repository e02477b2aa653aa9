"""`AmoCrmClient`: the one place all amoCRM REST API v4 traffic goes through.

Every request:
- is checked against AMOCRM_ALLOWED_HOSTS (and https unless loopback) before it is sent;
- takes a slot from the shared sliding-window limiter, key `amo:{account host}` (the token endpoint uses the same key);
- carries `Authorization: Bearer …` and `X-Client-UUID`, a timeout and no redirects (a redirect would
  carry the token elsewhere);
- is logged at INFO with method, path, status, duration and amoCRM's `X-Request-Id` — never headers,
  bodies or tokens.

Responses: 204 → empty; 401 → one forced token refresh and one retry, a second 401 marks the
integration `needs_reauth` and raises `ReauthRequired`; 429 → penalise the limiter key for
Retry-After (header or JSON `retry_after`; the body may be HTML) and try again, at most
`MAX_429_ATTEMPTS` requests in all, then `AmoTransient`; 403 with an HTML page → `AmoBlocked`;
5xx, timeouts, connection errors → `AmoTransient` (no retry here: the worker retries with backoff);
other 4xx → `AmoApiError` from the problem+json body.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

import requests

from core.amocrm.errors import AmoApiError, AmoBlocked, AmoCrmError, AmoTransient, ReauthRequired
from core.amocrm.hosts import check_url
from core.amocrm.oauth import parse_retry_after
from core.amocrm.tokens import TokenManager
from core.models import Integration
from core.platform.ratelimit import RateLimitTimeout

log = logging.getLogger("chatsource.amocrm.client")

BATCH_SIZE = 250  # amoCRM's maximum page size
EVENTS_PAGE_SIZE = 100  # the event log's maximum page size (https://www.amocrm.ru/developers/content/crm_platform/events-and-notes)
MAX_429_ATTEMPTS = 3  # requests in all for one call while amoCRM keeps answering 429
MAX_INLINE_RETRY_AFTER_S = 30.0  # longer Retry-After: give up now and let the worker back off
LIMITER_DEADLINE_S = 60.0
MAX_PAGES = 1000  # a runaway `_links.next` chain stops here
CUSTOM_FIELD_ENTITIES = ("leads", "contacts", "companies", "customers")


class _Missing:
    """Marker for "404 is an answer" calls."""


def _json_or_none(response: requests.Response):
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _looks_like_html(response: requests.Response) -> bool:
    ctype = (response.headers.get("Content-Type") or "").lower()
    if "html" in ctype:
        return True
    head = response.content[:200].lstrip().lower()
    return head.startswith(b"<!doctype") or head.startswith(b"<html") or head.startswith(b"<")


def _short(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _api_error(response: requests.Response, request_id: str | None) -> AmoApiError:
    data = _json_or_none(response)
    title = detail = None
    if isinstance(data, dict):
        title = data.get("title")
        detail = data.get("detail")
        problems = []
        for block in data.get("validation-errors") or []:
            for err in (block or {}).get("errors") or []:
                if isinstance(err, dict):
                    problems.append(f"{err.get('path', '?')}: {err.get('detail') or err.get('code')}")
        if problems:
            detail = (detail + "; " if detail else "") + "; ".join(problems[:5])
    return AmoApiError(
        response.status_code,
        _short(title or response.reason or "error", 200),
        _short(detail, 500) if detail else None,
        request_id,
    )


def _unique_ids(ids: Iterable) -> list[int]:
    seen: dict[int, None] = {}
    for value in ids:
        if value is None or value == "":
            continue
        seen.setdefault(int(value), None)
    return list(seen)


class AmoCrmClient:
    def __init__(self, services, integration_id: int, token_manager: TokenManager | None = None):
        self.services = services
        self.integration_id = integration_id
        self.tokens = token_manager or TokenManager(services)
        with services.session_factory() as session:
            row = session.get(Integration, integration_id)
            if row is None:
                raise AmoCrmError(f"integration {integration_id} does not exist")
            base = row.api_base_url or row.amocrm_url
            self.amo_account_id = row.amo_account_id
            self.client_id = row.client_id or services.settings.amocrm_client_id
        if not base:
            raise AmoCrmError(f"integration {integration_id} has no amoCRM address")
        base = base if "://" in base else f"https://{base}"
        parts = urlsplit(base)
        self.base_url = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))
        self.host = (parts.hostname or "").lower()
        # One budget per amoCRM account host, shared with the token endpoint (same host, same count).
        self.limiter_key = f"amo:{self.host}"

    # -- API methods ---------------------------------------------------------------------------

    def get_account(self, with_: Iterable[str] = ()) -> dict:
        params = [("with", ",".join(with_))] if with_ else None
        return self._request("GET", "/api/v4/account", params=params) or {}

    def get_contacts(self, ids: Iterable) -> dict[int, dict]:
        return self._get_by_ids("contacts", ids)

    def get_leads(self, ids: Iterable, with_contacts: bool = False) -> dict[int, dict]:
        return self._get_by_ids("leads", ids, extra=[("with", "contacts")] if with_contacts else [])

    def list_custom_fields(self, entity: str) -> list[dict]:
        if entity not in CUSTOM_FIELD_ENTITIES:
            raise ValueError(f"entity must be one of {CUSTOM_FIELD_ENTITIES}, not {entity!r}")
        # amoCRM returns at most 50 per page whatever `limit` says: always follow `_links.next`.
        return self._paginate(f"/api/v4/{entity}/custom_fields", [("limit", BATCH_SIZE), ("page", 1)], "custom_fields")

    def list_webhooks(self, destination: str | None = None) -> list[dict]:
        params = [("filter[destination]", destination)] if destination else []
        hooks = self._paginate("/api/v4/webhooks", params, "webhooks")
        if destination:
            hooks = [h for h in hooks if h.get("destination") == destination]
        return hooks

    def find_webhooks(self, destinations: Iterable[str]) -> list[dict]:
        """The hooks registered under any of `destinations` (one url written in several forms), in
        the order of `destinations`."""
        found: list[dict] = []
        for destination in dict.fromkeys(destinations):
            found.extend(self.list_webhooks(destination))
        return found

    def register_webhook(self, destination: str, events: Iterable[str], aliases: Iterable[str] = ()) -> dict:
        """Subscribe `destination` to `events`, keeping events it already has: amoCRM REPLACES the
        settings list of an existing destination, so we send the union.

        `aliases` are other forms of the same url (without the trailing slash, as we registered it
        before): when only an alias is registered, that hook is updated instead of adding a second
        one that would deliver every close twice."""
        hooks = self.find_webhooks([destination, *aliases])
        if hooks and not any(h.get("destination") == destination for h in hooks):
            destination = hooks[0]["destination"]
        existing: set[str] = set()
        for hook in hooks:
            if hook.get("destination") == destination:
                existing.update(hook.get("settings") or [])
        settings = sorted(existing | set(events))
        return self._request("POST", "/api/v4/webhooks", json={"destination": destination, "settings": settings}) or {}

    def delete_webhook(self, destination: str) -> bool:
        """Unsubscribe `destination` (`DELETE /api/v4/webhooks {"destination"}` → 204); False when amoCRM
        has no such hook (404): already gone is what we wanted."""
        return self._request("DELETE", "/api/v4/webhooks", json={"destination": destination}, not_found=_Missing) is not _Missing

    def get_talk(self, talk_id: int) -> dict | None:
        result = self._request("GET", f"/api/v4/talks/{int(talk_id)}", not_found=_Missing)
        if result is _Missing:
            return None
        return result

    def iter_events(self, types: Iterable[str], created_from: int | None = None, created_to: int | None = None,
                    limit: int = EVENTS_PAGE_SIZE) -> Iterator[list[dict]]:
        """The event log (`GET /api/v4/events`) of the given types, page by page (`limit` ≤ 100 per page;
        204 = none); `created_from` / `created_to` are unix times, both ends inclusive."""
        params: list = [("filter[type][]", t) for t in types]
        if created_from is not None:
            params.append(("filter[created_at][from]", int(created_from)))
        if created_to is not None:
            params.append(("filter[created_at][to]", int(created_to)))
        params += [("limit", min(int(limit), EVENTS_PAGE_SIZE)), ("page", 1)]
        return self._pages("/api/v4/events", params, "events")

    def list_events(self, types: Iterable[str], created_from: int | None = None, created_to: int | None = None) -> list[dict]:
        return [event for page in self.iter_events(types, created_from, created_to) for event in page]

    # -- plumbing ------------------------------------------------------------------------------

    def _get_by_ids(self, entity: str, ids: Iterable, extra: list | None = None) -> dict[int, dict]:
        found: dict[int, dict] = {}
        unique = _unique_ids(ids)
        for start in range(0, len(unique), BATCH_SIZE):
            chunk = unique[start:start + BATCH_SIZE]
            params = [("filter[id][]", i) for i in chunk] + (extra or []) + [("limit", BATCH_SIZE), ("page", 1)]
            for item in self._paginate(f"/api/v4/{entity}", params, entity):
                if isinstance(item, dict) and item.get("id") is not None:
                    found[int(item["id"])] = item
        return found

    def _paginate(self, path: str, params: list, embedded_key: str) -> list[dict]:
        items: list[dict] = []
        for page in self._pages(path, params, embedded_key):
            items.extend(page)
        return items

    def _pages(self, path: str, params: list | None, embedded_key: str) -> Iterator[list[dict]]:
        """Each page's `_embedded[embedded_key]`, following `_links.next` until it ends or a 204."""
        url = self._url(path)
        seen_urls: set[str] = set()
        for _ in range(MAX_PAGES):
            data = self._request_url("GET", url, params=params)
            if not data:  # 204: nothing (more)
                return
            page = ((data.get("_embedded") or {}).get(embedded_key)) or []
            yield page
            next_href = (((data.get("_links") or {}).get("next")) or {}).get("href")
            if not next_href or not page:
                return
            url = self._follow(next_href)
            params = None  # the next link carries the query
            if url in seen_urls:
                log.warning("amoCRM returned a repeating next link for %s; stopping", path)
                return
            seen_urls.add(url)
        log.warning("amoCRM pagination of %s stopped after %s pages", path, MAX_PAGES)

    def _url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def _follow(self, href: str) -> str:
        """A `_links.next` href, re-rooted on our own base URL: the path and query come from amoCRM,
        the scheme and host stay ours, so a link can never send our token to another host."""
        parts = urlsplit(href)
        base = urlsplit(self.base_url)
        path = parts.path or "/"
        return urlunsplit((base.scheme, base.netloc, path, parts.query, ""))

    def _request(self, method: str, path: str, params=None, json=None, not_found=None):
        return self._request_url(method, self._url(path), params=params, json=json, not_found=not_found)

    def _request_url(self, method: str, url: str, params=None, json=None, not_found=None):
        services = self.services
        url = check_url(url, services.settings.amocrm_allowed_hosts)  # before anything is sent
        path = urlsplit(url).path
        refreshed = False
        attempts_429 = 0
        stale_version: int | None = None
        while True:
            token = self.tokens.current(
                self.integration_id, force_refresh=refreshed and stale_version is not None,
                stale_version=stale_version,
            )
            stale_version = None
            try:
                slot = services.limiter.acquire(self.limiter_key, deadline_s=LIMITER_DEADLINE_S)
            except RateLimitTimeout as exc:
                raise AmoTransient(
                    f"amoCRM {method} {path}: no rate-limit slot in time", retry_after=exc.retry_after_s
                ) from None
            headers = {
                "Authorization": f"Bearer {token.token}",
                "X-Client-UUID": self.client_id,
                "Accept": "application/json",
            }
            started = time.monotonic()
            try:
                response = services.http.request(
                    method, url, params=params, json=json, headers=headers,
                    timeout=services.settings.amocrm_timeout_seconds, allow_redirects=False,
                )
            except requests.Timeout:
                log.info("amoCRM %s %s -> timeout after %.0f ms", method, path, (time.monotonic() - started) * 1000)
                raise AmoTransient(f"amoCRM {method} {path} timed out") from None
            except requests.RequestException as exc:
                log.info("amoCRM %s %s -> %s", method, path, type(exc).__name__)
                raise AmoTransient(f"amoCRM {method} {path} failed: {type(exc).__name__}") from None
            finally:
                services.limiter.answered(slot)  # amoCRM counted the call on arrival, before this
            status = response.status_code
            request_id = response.headers.get("X-Request-Id")
            log.info(
                "amoCRM %s %s -> %s in %.0f ms request_id=%s",
                method, path, status, (time.monotonic() - started) * 1000, request_id or "-",
            )

            if status == 401:
                if not refreshed:
                    refreshed = True
                    stale_version = token.version
                    continue
                reason = "amoCRM keeps answering 401 Unauthorized even with a freshly refreshed token"
                self.tokens.mark_needs_reauth(self.integration_id, reason, expected_version=token.version)
                raise ReauthRequired(reason + "; reconnect the integration", status=status, request_id=request_id)

            if status == 429:
                attempts_429 += 1
                data = _json_or_none(response)
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), data if isinstance(data, dict) else None
                )
                if retry_after is None:
                    retry_after = services.settings.amocrm_rate_window_ms / 1000
                services.limiter.penalise(self.limiter_key, retry_after)
                if attempts_429 >= MAX_429_ATTEMPTS or retry_after > MAX_INLINE_RETRY_AFTER_S:
                    raise AmoTransient(
                        f"amoCRM {method} {path}: 429 Too Many Requests ({attempts_429} in a row)",
                        status=status, request_id=request_id, retry_after=retry_after,
                    )
                continue  # the limiter holds us (and everyone else) until Retry-After has passed

            if 200 <= status < 300:
                if status == 204 or not response.content:
                    return None
                data = _json_or_none(response)
                if data is None:
                    raise AmoTransient(
                        f"amoCRM {method} {path} answered {status} with a body that is not JSON",
                        status=status, request_id=request_id,
                    )
                return data
            if status == 404 and not_found is not None:
                return not_found
            if status == 403 and _looks_like_html(response):
                raise AmoBlocked(
                    f"amoCRM blocked API access ({method} {path}: 403 with an HTML page); this usually follows "
                    "too many requests — wait, and contact amoCRM support if it persists",
                    status=status, request_id=request_id,
                )
            if status >= 500:
                raise AmoTransient(f"amoCRM {method} {path} answered {status}", status=status, request_id=request_id)
            if 300 <= status < 400:
                raise AmoApiError(status, "Unexpected redirect",
                                  "amoCRM redirected the request; check the account address", request_id)
            raise _api_error(response, request_id)
