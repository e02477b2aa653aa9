"""Settings from the environment, validated once at start.

Every process (web, worker, CLI, release) builds one `Settings` with `Settings.from_env()`.
APP_ENV unset means production: a Procfile or a bare gunicorn start must never run with generated
secrets, insecure cookies or an http PUBLIC_URL because somebody forgot a variable. `make run`,
`make demo` and `make sandbox` set APP_ENV=development themselves; the tests set APP_ENV=test.
In development missing secrets are generated once and kept in `instance/dev-secrets.json` (mode
0600), so a newcomer needs nothing set and tokens stay decryptable across restarts. In production a
missing or weak secret, or a too-broad AMOCRM_ALLOWED_HOSTS entry, stops the start with a message
naming every problem at once.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from core.amocrm.hosts import production_pattern_problem

DEFAULT_ALLOWED_HOSTS = ("*.amocrm.ru", "*.amocrm.com", "*.kommo.com")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INSTANCE_DIR = PROJECT_ROOT / "instance"


class ConfigError(Exception):
    """The environment cannot run the product; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Configuration is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    port: int = 5000
    public_url: str = "http://127.0.0.1:5000"
    database_url: str = ""
    redis_url: str | None = None
    # rediss:// verifies the server certificate; "none" only when the provider's chain cannot be
    # verified (Heroku Redis presents a self-signed one) and the operator says so explicitly.
    redis_ssl_cert_reqs: str = "required"
    # Peers whose X-Forwarded-* headers are believed (gunicorn's own FORWARDED_ALLOW_IPS): addresses,
    # networks or "*". Empty trusts nobody, so a client cannot choose its own address.
    forwarded_allow_ips: tuple[str, ...] = ()
    secret_key: str = ""
    token_encryption_keys: tuple[str, ...] = ()
    amocrm_client_id: str = ""
    amocrm_client_secret: str = ""
    amocrm_allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    admin_email: str | None = None
    admin_password: str | None = None
    # amoCRM traffic: at most `amocrm_rate_limit` calls per account in any `amocrm_rate_window_ms`,
    # each call's slot counted from its answer (core.platform.ratelimit: a call reaches amoCRM some
    # time after its grant). The window is a little over a second, a margin for how amoCRM itself
    # counts (7 rps is documented; repeated 429s get the account blocked).
    amocrm_rate_limit: int = 7
    amocrm_rate_window_ms: int = 1100
    amocrm_timeout_seconds: float = 15.0
    webhook_max_bytes: int = 512 * 1024
    # How often each connected, active integration reads amoCRM's event log for closes no webhook
    # reported (core.inbox.reconciliation).
    reconcile_interval_seconds: int = 600
    embedded_worker: bool = True
    # Admin sessions end this many hours after sign-in, whatever the activity (web/auth.py).
    session_lifetime_hours: int = 12
    # Public `POST /t/collect` (README, Security): per client IP and per site.
    tracking_hits_per_ip_per_minute: int = 120
    tracking_new_sessions_per_ip_per_minute: int = 20
    tracking_hits_per_site_per_second: int = 3000
    # Sign-in attempts per client IP in 10 minutes, beside the per-user lock of core/access/login.py.
    login_attempts_per_ip: int = 30
    instance_dir: str = str(DEFAULT_INSTANCE_DIR)
    log_level: str = "INFO"
    extra: dict = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def ip_salt(self) -> str:
        """Key of the HMAC that replaces visitors' IP addresses (never stored raw); derived from SECRET_KEY."""
        return hmac.new(self.secret_key.encode(), b"chatsource:ip-hash", hashlib.sha256).hexdigest()

    def public(self, path: str) -> str:
        return self.public_url.rstrip("/") + "/" + path.lstrip("/")

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> "Settings":
        env = dict(os.environ if environ is None else environ)
        problems: list[str] = []
        app_env = (env.get("APP_ENV") or "production").strip().lower()
        if app_env not in ("development", "production", "test"):
            problems.append(f"APP_ENV must be development, production or test, not {app_env!r}")
        production = app_env == "production"
        instance_dir = env.get("INSTANCE_DIR") or str(DEFAULT_INSTANCE_DIR)

        port = _int(env, "PORT", 5000, problems)
        public_url = (env.get("PUBLIC_URL") or f"http://127.0.0.1:{port}").rstrip("/")
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"PUBLIC_URL must be an absolute http(s) URL, got {public_url!r}")
        elif production and parts.scheme != "https":
            problems.append("PUBLIC_URL must use https in production (amoCRM posts webhooks there)")

        database_url = normalise_database_url(
            env.get("DATABASE_URL") or f"sqlite:///{Path(instance_dir) / 'chatsource.db'}"
        )
        redis_url = (env.get("REDIS_URL") or "").strip() or None
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            problems.append(f"REDIS_URL must start with redis://, rediss:// or unix://, got {redis_url[:20]!r}")

        dev_secrets = None if production else _dev_secrets(instance_dir)
        secret_key = env.get("SECRET_KEY") or ""
        if not secret_key:
            if production:
                problems.append("SECRET_KEY is required in production (32+ random characters)")
            else:
                secret_key = dev_secrets["SECRET_KEY"]
        elif production and len(secret_key) < 32:
            problems.append("SECRET_KEY must be at least 32 characters in production")

        keys = tuple(k.strip() for k in (env.get("TOKEN_ENCRYPTION_KEYS") or "").split(",") if k.strip())
        if not keys:
            if production:
                problems.append(
                    "TOKEN_ENCRYPTION_KEYS is required in production: comma-separated Fernet keys, "
                    "make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
                )
            else:
                keys = (dev_secrets["TOKEN_ENCRYPTION_KEY"],)
        for i, key in enumerate(keys):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                problems.append(f"TOKEN_ENCRYPTION_KEYS: key #{i + 1} is not a valid Fernet key")

        hosts_raw = env.get("AMOCRM_ALLOWED_HOSTS")
        hosts = (
            tuple(h.strip().lower() for h in hosts_raw.split(",") if h.strip())
            if hosts_raw
            else DEFAULT_ALLOWED_HOSTS
        )
        if production:
            problems.extend(f"AMOCRM_ALLOWED_HOSTS: {p}" for p in map(production_pattern_problem, hosts) if p)
        redis_cert_reqs = (env.get("REDIS_SSL_CERT_REQS") or "required").strip().lower()
        if redis_cert_reqs not in ("required", "none"):
            problems.append(f"REDIS_SSL_CERT_REQS must be required or none, not {redis_cert_reqs!r}")
        forwarded = tuple(e.strip() for e in (env.get("FORWARDED_ALLOW_IPS") or "").split(",") if e.strip())
        for entry in forwarded:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    problems.append(f"FORWARDED_ALLOW_IPS: {entry!r} is not an IP address, a network or '*'")
        admin_email = (env.get("ADMIN_EMAIL") or "").strip() or None
        admin_password = env.get("ADMIN_PASSWORD") or None
        if bool(admin_email) != bool(admin_password):
            problems.append("ADMIN_EMAIL and ADMIN_PASSWORD go together: set both or neither")
        if production and admin_password and len(admin_password) < 10:
            problems.append("ADMIN_PASSWORD must be at least 10 characters in production")

        rate_limit = _int(env, "AMOCRM_RATE_LIMIT", 7, problems)
        if not 1 <= rate_limit <= 7:
            problems.append("AMOCRM_RATE_LIMIT must be between 1 and 7 (amoCRM allows 7 requests per second)")
        window = _int(env, "AMOCRM_RATE_WINDOW_MS", 1100, problems)
        if window < 1000:
            problems.append("AMOCRM_RATE_WINDOW_MS must be at least 1000")

        reconcile_interval = _int(env, "RECONCILE_INTERVAL_SECONDS", 600, problems)
        if reconcile_interval < 1:
            problems.append("RECONCILE_INTERVAL_SECONDS must be at least 1 (seconds between reconciliations with amoCRM)")
        limits = {}
        for name, default in (("SESSION_LIFETIME_HOURS", 12), ("TRACKING_HITS_PER_IP_PER_MINUTE", 120),
                              ("TRACKING_NEW_SESSIONS_PER_IP_PER_MINUTE", 20), ("TRACKING_HITS_PER_SITE_PER_SECOND", 3000),
                              ("LOGIN_ATTEMPTS_PER_IP", 30)):
            limits[name.lower()] = _int(env, name, default, problems)
            if limits[name.lower()] < 1:
                problems.append(f"{name} must be at least 1")

        if problems:
            raise ConfigError(problems)
        values = dict(
            env=app_env,
            port=port,
            public_url=public_url,
            database_url=database_url,
            redis_url=redis_url,
            redis_ssl_cert_reqs=redis_cert_reqs,
            forwarded_allow_ips=forwarded,
            secret_key=secret_key,
            token_encryption_keys=keys,
            amocrm_client_id=env.get("AMOCRM_CLIENT_ID") or "",
            amocrm_client_secret=env.get("AMOCRM_CLIENT_SECRET") or "",
            amocrm_allowed_hosts=hosts,
            admin_email=admin_email,
            admin_password=admin_password,
            amocrm_rate_limit=rate_limit,
            amocrm_rate_window_ms=window,
            amocrm_timeout_seconds=float(env.get("AMOCRM_TIMEOUT_SECONDS") or 15),
            webhook_max_bytes=_int(env, "WEBHOOK_MAX_BYTES", 512 * 1024, []),
            reconcile_interval_seconds=reconcile_interval,
            embedded_worker=(env.get("EMBEDDED_WORKER", "1") != "0"),
            instance_dir=instance_dir,
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            **limits,
        )
        values.update(overrides)
        return cls(**values)


def normalise_database_url(url: str) -> str:
    """Heroku hands out postgres://; SQLAlchemy 2 wants postgresql+psycopg2://."""
    if url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def _int(env: dict, name: str, default: int, problems: list[str]) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        problems.append(f"{name} must be a whole number, got {raw!r}")
        return default


def _dev_secrets(instance_dir: str) -> dict:
    """Generated once per checkout for local runs; never used in production."""
    path = Path(instance_dir) / "dev-secrets.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
            if data.get("SECRET_KEY") and data.get("TOKEN_ENCRYPTION_KEY"):
                return data
        except (OSError, ValueError):
            pass
    data = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    # Created 0600 in one step: a write-then-chmod leaves the secrets readable by anyone for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(data))
    tmp.replace(path)
    return data
