"""The web app factory: settings from env, extensions, blueprints, CLI, and the embedded worker."""
from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.orm import sessionmaker

from core.platform.db import engine_options
from core.platform.log_redaction import RedactSecrets
from core.platform.services import build_services
from core.platform.settings import PROJECT_ROOT, Settings
from web.extensions import csrf, db, migrate
from web.json_input import SafeJSONProvider
from web.proxy import TrustedProxyFix, parse_trusted
from workers import broker as broker_module
from workers import runtime
from workers.embedded import EmbeddedWorker

MAX_CONTENT_LENGTH = 1024 * 1024

log = logging.getLogger(__name__)
# The filter lives in core (gunicorn.conf.py uses it for gunicorn's own logs); the old name stays.
RedactWebhookTokens = RedactSecrets


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not any(isinstance(f, RedactWebhookTokens) for f in handler.filters):
            handler.addFilter(RedactWebhookTokens())
    logging.getLogger("werkzeug").addFilter(RedactWebhookTokens())
    # requests-oauthlib / oauthlib log whole tokens at DEBUG.
    for name in ("requests_oauthlib", "oauthlib", "urllib3"):
        logging.getLogger(name).setLevel(logging.INFO if level == "DEBUG" else level)


def create_app(settings: Settings | None = None, *, redis_client=None, start_worker: bool = False) -> Flask:
    """`start_worker`: run the embedded Dramatiq worker in this process (gunicorn's post_worker_init
    asks for it in embedded mode; CLI commands and the release phase never start one)."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    app = Flask(__name__, instance_path=settings.instance_dir, instance_relative_config=False)
    app.config.update(
        # Every body but the webhook's (its own WEBHOOK_MAX_BYTES, web/webhooks.py) and the tracking
        # hit's (16 KB): no form or API call of ours comes near a megabyte.
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings.database_url),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.json = SafeJSONProvider(app)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.wsgi_app = TrustedProxyFix(app.wsgi_app, parse_trusted(settings.forwarded_allow_ips))

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)

    with app.app_context():
        session_factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    if redis_client is None and settings.redis_url:
        from core.platform.redis_connect import redis_client as connect_redis

        redis_client = connect_redis(settings.redis_url, settings.redis_ssl_cert_reqs, socket_timeout=5,
                                     socket_connect_timeout=3, health_check_interval=30)
    services = build_services(settings, session_factory, redis_client)
    app.extensions["chatsource.settings"] = settings
    app.extensions["chatsource.services"] = services

    from web import api, errors, health, oauth, webhooks

    errors.install(app)

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    # Tracking code and its collect endpoint.
    from web import tracking

    app.register_blueprint(tracking.bp)
    from web import collect_fast

    with app.app_context():
        collect_fast.install(app, db.engine, services)

    # --- admin: Russian/English UI, sign-in, Flask-Admin ---
    from web.admin import init_admin
    from web.auth import init_auth
    from web.i18n import init_i18n

    init_i18n(app)
    init_auth(app)
    init_admin(app)
    # --- end admin ---

    from web import security_headers

    security_headers.install(app, settings.is_production)

    from web.cli import register_cli

    register_cli(app)
    _setup_broker(app, services, start_worker)
    _bootstrap(app, services)
    return app


def _setup_broker(app: Flask, services, start_worker: bool) -> None:
    """This process's one broker (its embedded worker, or tests, consume it) and the request outbox."""
    from web import outbox

    runtime.set_services(services)
    app.extensions["chatsource.broker"] = broker_module.build(redis_client=services.redis)
    outbox.install(app)
    if start_worker:
        start_embedded_worker(app)


def start_embedded_worker(app: Flask):
    """The in-process worker of the embedded mode (no REDIS_URL); a no-op when Redis is configured."""
    services = app.extensions["chatsource.services"]
    if services.redis is not None or not services.settings.embedded_worker:
        return None
    if "chatsource.embedded_worker" not in app.extensions:
        app.extensions["chatsource.embedded_worker"] = EmbeddedWorker(app.extensions["chatsource.broker"]).start()
    return app.extensions["chatsource.embedded_worker"]


def _bootstrap(app: Flask, services) -> None:
    """First start: one account, and the admin from ADMIN_EMAIL / ADMIN_PASSWORD. Skipped until migrated."""
    from sqlalchemy import inspect

    from core.access.accounts import bootstrap

    with app.app_context():
        try:
            if not inspect(db.engine).has_table("accounts"):
                log.warning("the database has no tables yet: run `flask --app wsgi db upgrade`")
                return
            _, created = bootstrap(db.session, services.settings.admin_email, services.settings.admin_password)
            if created is not None:
                log.info("created the admin user %s", created.email)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("bootstrap failed")
