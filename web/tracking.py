"""The main tracking code, served to clients' sites, and its collect endpoint (thin over `core.tracking.collect`).

* `GET /t/<site_key>.js` — the script with the site's settings built in: gzip when accepted, an
  ETag (304 on revalidation), cached an hour and served stale while revalidating for a day, so an
  update of the code reaches every visitor within a day without a change of the pasted snippet.
* `POST /t/collect` — a page view or an activity ping, as JSON; the body may come as
  `application/json` or as `text/plain` (what `navigator.sendBeacon` and our script's preflight-free
  `fetch` send). CORS is granted only to the site's domain and its subdomains (`Origin`, else
  `Referer`); `OPTIONS` answers the preflight of JSON callers. The server sets no cookie: the visitor
  id is a first-party cookie the script writes on the site's own domain.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from core.inbox import click_attribution
from core.models import Site
from core.platform.ratelimit import QuotaExceeded
from core.tracking import collect as tracking
from core.tracking.refusals import note_refusal
from web import collect_fast
from web.errors import json_error
from web.extensions import csrf, db
from web.json_input import JsonTooDeep

log = logging.getLogger(__name__)
bp = Blueprint("tracking", __name__, url_prefix="/t")
csrf.exempt(bp)

SCRIPT_SOURCE = Path(__file__).resolve().parent / "static" / "tracking" / "chatsource.js"
CONFIG_PLACEHOLDER = "CHATSOURCE_CONFIG"  # a global name in the source: the minifier keeps it as it is
SCRIPT_CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"
PREFLIGHT_MAX_AGE = "86400"


@lru_cache(maxsize=1)
def script_template() -> tuple[str, str]:
    """(the script minified, its version). calmjs.parse (an ES5 parser) drops comments and whitespace
    and shortens the local names — the script's own, never a property, a global or the config's:
    1,772 → ~1,440 bytes gzipped (the budget is 1,500 with the header and the site's config)."""
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    text = minify_print(es5(SCRIPT_SOURCE.read_text(encoding="utf-8")), obfuscate=True, obfuscate_globals=False,
                        shadow_funcname=True, drop_semi=True) + "\n"
    if CONFIG_PLACEHOLDER not in text:  # pragma: no cover - guards an edit of the source
        raise RuntimeError(f"{SCRIPT_SOURCE} lost its {CONFIG_PLACEHOLDER} placeholder")
    return text, hashlib.sha256(text.encode()).hexdigest()[:8]


def build_script(site: Site, collect_url: str) -> str:
    """The tracking script of one site (its key, our collect url and the site's cookie domain)."""
    template, version = script_template()
    config = json.dumps({"k": site.site_key, "e": collect_url, "d": site.domain, "v": version},
                        separators=(",", ":"))  # ensure_ascii: safe for U+2028 and any domain
    return "/*! Chatsource */\n" + template.replace(CONFIG_PLACEHOLDER, config)


def _services():
    return current_app.extensions["chatsource.services"]


@bp.get("/<site_key>.js")
def tracking_script(site_key: str):
    site = tracking.find_site(db.session, site_key)
    if site is None:
        response = Response(
            f"/* Chatsource: unknown site key {site_key[:40]!r}. Copy the tracking code of your site from "
            "the Sites page again (Сайты → код отслеживания). */\n",
            status=404, mimetype="application/javascript",
        )
        response.headers["Cache-Control"] = "no-store"
        return response
    body = build_script(site, _services().settings.public("/t/collect")).encode("utf-8")
    etag = hashlib.sha256(body).hexdigest()[:20]
    if "gzip" in (request.headers.get("Accept-Encoding") or "").lower():
        body = gzip.compress(body, compresslevel=9, mtime=0)
        response = Response(body, mimetype="application/javascript")
        response.headers["Content-Encoding"] = "gzip"
        etag += "-gz"
    else:
        response = Response(body, mimetype="application/javascript")
    response.set_etag(etag)
    response.headers["Cache-Control"] = SCRIPT_CACHE_CONTROL
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)


# --- collect ----------------------------------------------------------------------------------


class CollectError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _request_origin() -> str | None:
    """The page's origin: the Origin header, else the Referer (a browser always sends one of them)."""
    return request.headers.get("Origin") or request.headers.get("Referer") or None


def _check_origin(site: Site) -> None:
    origin = _request_origin()
    if not tracking.origin_allowed(site.domain, origin):
        note_refusal(db.session, site, "wrong_domain", origin)
        db.session.commit()  # the refusal is kept; the error handler rolls back what is left
        raise CollectError(
            403, "origin_not_allowed",
            f"tracking requests of this site must come from pages of {site.domain} or its subdomains "
            f"(got {('Origin ' + origin[:200]) if origin else 'no Origin or Referer header'}); "
            "check the site's domain in the Sites settings",
        )
    g.cors_origin = request.headers.get("Origin")


@bp.after_request
def _cors(response: Response) -> Response:
    origin = g.pop("cors_origin", None)
    if request.endpoint == "tracking.collect":
        response.headers.add("Vary", "Origin")
        response.headers["Cache-Control"] = "no-store"
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
    return response


@bp.errorhandler(CollectError)
def _collect_error(exc: CollectError):
    db.session.rollback()
    return json_error(exc.status, exc.code, exc.message, **exc.extra)


@bp.errorhandler(QuotaExceeded)
def _over_quota(exc: QuotaExceeded):
    db.session.rollback()
    response = json_error(429, "rate_limited", f"too many tracking requests ({exc.name}); retry in {exc.retry_after} s",
                          retry_after=exc.retry_after)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    if isinstance(exc, RequestEntityTooLarge):
        return json_error(413, "too_large", f"the body is larger than {tracking.MAX_BODY_BYTES} bytes")
    return json_error(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or exc.name)


def _site_or_404(site_key):
    site = tracking.find_site_row(db.session, site_key)
    if site is None:
        raise CollectError(404, "unknown_site", "unknown site_key: copy the tracking code from the Sites page again")
    return site


def _preflight():
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        raise CollectError(403, "origin_not_allowed", "a CORS preflight needs an Origin header")
    site_key = request.args.get("site_key")
    if site_key:
        _check_origin(_site_or_404(site_key))
    # Without a site key in the query the preflight only permits the attempt: the POST itself is
    # checked against its site's domain before anything is stored, and answered without CORS if foreign.
    g.cors_origin = origin
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


@bp.route("/collect", methods=["POST", "OPTIONS"])
def collect():
    if request.method == "OPTIONS":
        return _preflight()
    request.max_content_length = tracking.MAX_BODY_BYTES
    raw = request.get_data(cache=False)
    try:
        data = current_app.json.loads(raw.decode("utf-8")) if raw.strip() else None
    except JsonTooDeep as exc:
        raise CollectError(400, "bad_json", str(exc))
    except (UnicodeDecodeError, ValueError):
        raise CollectError(400, "bad_json", "send a JSON object (as application/json or text/plain)")
    if not isinstance(data, dict):
        raise CollectError(400, "bad_json", "the body must be a JSON object with site_key and url")
    site_key = request.args.get("site_key") or data.get("site_key")
    services = _services()
    if not request.environ.get(collect_fast.ADMITTED):  # counted by web/collect_fast.py already
        services.quotas.admit(*tracking.hit_quotas(services.settings, site_key, request.remote_addr))
    site = _site_or_404(site_key)
    _check_origin(site)
    try:
        hit = tracking.parse_hit({k: v for k, v in data.items() if k != "site_key"})
    except tracking.TrackingInputError as exc:
        raise CollectError(400, "invalid", exc.message, field=exc.field)
    if hit.event == click_attribution.CLICK_EVENT:
        return _messenger_click(site, hit)
    settings = services.settings
    new_session_quota = tracking.new_session_quota(settings, request.remote_addr)
    result = tracking.collect(
        db.session, site, hit, user_agent=request.headers.get("User-Agent"), ip=request.remote_addr,
        ip_salt=settings.ip_salt, admit_new_session=lambda: services.quotas.admit(new_session_quota),
    )
    if not result.tracked:  # a bot: nothing stored, but the Sites page says it came
        note_refusal(db.session, site, "bot", hit.url)
    db.session.commit()
    return jsonify(result.to_dict())


def _messenger_click(site: Site, hit: tracking.Hit):
    """A click on a messenger icon of the chat button: kept against the visitor's live session (never
    starts one: a click without a session has nothing to attribute a chat to)."""
    result = click_attribution.collect_click(db.session, site, hit, user_agent=request.headers.get("User-Agent"))
    db.session.commit()
    return jsonify(result.to_dict())
