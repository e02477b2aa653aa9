"""`POST /t/collect` for a returning visitor's next page, in front of Flask (plain WSGI).

Most tracking hits are the next page of a visitor whose session is live. Through Flask each cost ~4×
the trivial request (bench.tracking, docs/benchmarks.md): the request context and its hooks, the ORM
session's BEGIN / statements / COMMIT, the JSON response machinery. This middleware answers exactly
that case with the same checks, in the same order, and one database statement
(`core.tracking.collect.continue_at_site`, autocommit):

1. the body (at most `MAX_BODY_BYTES`, a JSON object) and the hit (`core.tracking.collect.parse_hit`);
2. the rate limits (`hit_quotas`, one Redis round trip) — counted once: when the hit goes on to Flask
   after this, the view is told it was admitted;
3. the bot filter; a visitor id; no campaign in the address;
4. the site by its key, the page's origin (`Origin`, else `Referer`) against the site's domain and
   the live session on that site, in the one statement.

Anything else, or anything that fails, goes to the Flask view untouched (the body handed back), which
answers as before: 4xx with the reason, the refusal noted on the site, a new session, a 503.
PostgreSQL only; on SQLite (the embedded mode) every hit goes through Flask.
"""
from __future__ import annotations

import io
import json
import logging

import sqlalchemy as sa

from core.platform.ratelimit import QuotaExceeded
from core.tracking import collect as tracking
from web.json_input import loads as json_loads
from web.proxy import TrustedProxyFix

log = logging.getLogger(__name__)

ENGINE = "chatsource.collect_engine"
POOL_SIZE = 4  # gunicorn's threads per process (gunicorn.conf.py)
ADMITTED = "chatsource.collect.admitted"  # environ key: the quotas of this hit were counted already
PATH = "/t/collect"


class CollectFastPath:
    def __init__(self, app, engine, services):
        self.app = app
        self.engine = engine
        self.services = services
        self.settings = services.settings
        self.production = services.settings.is_production

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST" or environ.get("QUERY_STRING"):
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if not 0 < length <= tracking.MAX_BODY_BYTES:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # Flask reads it again when the hit goes on there
        answer = self._answer(environ, body)
        if answer is None:
            return self.app(environ, start_response)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(answer))),
                   ("Vary", "Origin"), ("Cache-Control", "no-store")]
        origin = environ.get("HTTP_ORIGIN")
        if origin:
            headers.append(("Access-Control-Allow-Origin", origin))
        if self.production:
            headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
        start_response("200 OK", headers)
        return [answer]

    def _answer(self, environ, body: bytes) -> bytes | None:
        """The answer's body, or None: Flask handles this hit."""
        try:
            data = json_loads(body.decode("utf-8"))
        except Exception:
            return None
        if not isinstance(data, dict):
            return None
        site_key = data.get("site_key")
        if not tracking.valid_site_key(site_key):
            return None
        try:
            hit = tracking.parse_hit({k: v for k, v in data.items() if k != "site_key"})
        except tracking.TrackingInputError:
            return None
        ip = environ.get("REMOTE_ADDR")
        try:
            self.services.quotas.admit(*tracking.hit_quotas(self.settings, site_key, ip))
        except QuotaExceeded:
            return None  # the view checks again and answers the 429
        except Exception:
            log.warning("the tracking quotas could not be checked; the hit goes the general way", exc_info=True)
            return None
        environ[ADMITTED] = True
        domains = tracking.one_statement_domains(hit, environ.get("HTTP_USER_AGENT"),
                                                 environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER"))
        if not domains:
            return None
        session_id = self._continue(site_key, domains, hit)
        if session_id is None:
            return None
        result = tracking.CollectResult(tracked=True, visitor_id=hit.visitor_id, session_id=session_id)
        return (json.dumps(result.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    def _continue(self, site_key: str, domains: list[str], hit: tracking.Hit) -> int | None:
        try:
            connection = self.engine.raw_connection()
        except Exception:  # the pool is busy or the database is down: the general way says which
            return None
        try:
            if not connection.info.get(tracking.CONTINUE_AT_SITE):  # once per database connection
                with connection.driver_connection.cursor() as cursor:
                    cursor.execute(tracking.PREPARE_CONTINUE_AT_SITE)
                connection.info[tracking.CONTINUE_AT_SITE] = True
            return tracking.continue_at_site(connection.driver_connection, site_key, domains, hit)
        except Exception:
            log.warning("the one-statement page view failed; the hit goes the general way", exc_info=True)
            connection.invalidate()
            return None
        finally:
            connection.close()


def install(app, engine, services) -> None:
    """In front of the app's WSGI callable (behind the trusted-proxy fix, so REMOTE_ADDR is the client's).

    Its connections are its own small pool, in autocommit and without the ping before each use that
    the app's pool does (a round trip per hit): a connection that died fails the statement, and that
    hit goes the general way, whose pool pings."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg2":
        return
    own = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=POOL_SIZE, max_overflow=POOL_SIZE,
                           pool_timeout=1, pool_recycle=1800, pool_reset_on_return=None)
    app.extensions[ENGINE] = own
    proxy = app.wsgi_app
    app.wsgi_app = TrustedProxyFix(CollectFastPath(proxy.app, own, services), proxy.trusted)


def dispose(app) -> None:
    """Close the pool's connections (tests, and anything that disposes the app's engine)."""
    own = app.extensions.get(ENGINE)
    if own is not None:
        own.dispose()
