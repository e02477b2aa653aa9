"""The webhook url's token and the OAuth callback's one-time code never reach a log, proven on the real
logging path: the Procfile's own gunicorn (its config, its logger class, the app's log handlers) serves
real requests, and everything it wrote to stdout and stderr is read back."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from core.platform.settings import PROJECT_ROOT, Settings
from tests.helpers import http as loopback  # loopback only: never through a proxy

LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "APP_ENV"))}
    env.update(APP_ENV="development", INSTANCE_DIR=str(tmp_path / "instance"), DATABASE_URL=f"sqlite:///{tmp_path}/app.db",
               WEB_CONCURRENCY="1", WEB_THREADS="2", LOG_LEVEL="DEBUG", PYTHONUNBUFFERED="1",
               AMOCRM_ALLOWED_HOSTS="*.amocrm.ru,*.kommo.com")
    return env


def _webhook_token(env) -> str:
    """An integration made on the same database and secrets the server uses; its webhook url's token."""
    from core.access.accounts import ensure_first_account
    from core.integrations import settings as integrations
    from core.platform.db import create_engine, session_factory
    from core.platform.services import build_services

    settings = Settings.from_env(env)
    engine = create_engine(settings.database_url)
    try:
        factory = session_factory(engine)
        services = build_services(settings, factory)
        with factory() as session:
            account = ensure_first_account(session)
            integration = integrations.create_integration(session, services, account.id, {"name": "amoCRM"})
            session.commit()
            url = integrations.webhook_url(services, integration)
    finally:
        engine.dispose()
    return url.rstrip("/").rsplit("/", 1)[1]


@pytest.fixture
def gunicorn(tmp_path):
    env = _env(tmp_path)
    migrate = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=PROJECT_ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    token = _webhook_token(env)
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "-c", "gunicorn.conf.py",
                                 "--bind", "127.0.0.1:0"],  # the kernel picks the port; the log says which
                                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        port = None
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            match = LISTENING.search(log_path.read_text(errors="replace"))
            port = match and int(match.group(1))
            time.sleep(0.1)
        assert port, log_path.read_text(errors="replace")[-3000:]
        http = loopback.loopback_session()
        http.trust_env = False  # loopback only: never through a proxy
        yield f"http://127.0.0.1:{port}", token, http, proc, log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_no_secret_reaches_the_access_or_error_log(gunicorn):
    base, token, http, proc, log_path = gunicorn
    body = {"account[id]": "1", "account[subdomain]": "shop", "talk[update][0][talk_id]": "5",
            "talk[update][0][is_in_work]": "0", "talk[update][0][contact_id]": "7", "talk[update][0][origin]": "telegram"}
    assert http.post(f"{base}/webhooks/amocrm/{token}", data=body, timeout=10).status_code == 200
    http.post(f"{base}/webhooks/amocrm/{token}/", data=body, timeout=10)
    http.post(f"{base}/webhooks/amocrm/{token}", data="not a form at all", headers={"Content-Type": "text/plain"}, timeout=10)
    http.get(f"{base}/oauth/amocrm/callback?code=def502-CODE-SECRET&referer=shop.amocrm.ru&state=STATE-SECRET", timeout=10)
    http.get(f"{base}/oauth/amocrm/callback?state=STATE-SECRET&code=def502-CODE-SECRET", timeout=10)
    os.killpg(proc.pid, signal.SIGTERM)  # the access lines are flushed by the time the workers exit
    proc.wait(20)

    log = log_path.read_text(errors="replace")
    assert log.count("/webhooks/amocrm/***") >= 3, log[-3000:]  # the requests were logged, redacted
    assert "/oauth/amocrm/callback" in log
    for secret in (token, token[:12], "CODE-SECRET", "STATE-SECRET"):
        assert secret not in log, f"{secret!r} is in the log"


DEV_SERVER_LISTENING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


@pytest.fixture
def dev_server(tmp_path):
    """`flask run`, the development server: werkzeug's own request log, through the filter the app puts on it."""
    env = _env(tmp_path)
    migrate = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=PROJECT_ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    token = _webhook_token(env)
    log_path = tmp_path / "flask-run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "run", "--host", "127.0.0.1",
                                 "--port", "0", "--no-reload"],  # the kernel picks the port; the log says which
                                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        port = None
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            match = DEV_SERVER_LISTENING.search(log_path.read_text(errors="replace"))
            port = match and int(match.group(1))
            time.sleep(0.1)
        assert port, log_path.read_text(errors="replace")[-3000:]
        http = loopback.loopback_session()
        yield f"http://127.0.0.1:{port}", token, http, proc, log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(20)


def test_the_development_servers_request_log_shows_no_secret_and_keeps_the_rest(dev_server):
    base, token, http, proc, log_path = dev_server
    body = {"account[id]": "1", "account[subdomain]": "shop", "talk[update][0][talk_id]": "5",
            "talk[update][0][is_in_work]": "0", "talk[update][0][contact_id]": "7", "talk[update][0][origin]": "telegram"}
    assert http.post(f"{base}/webhooks/amocrm/{token}", data=body, timeout=10).status_code == 200
    http.get(f"{base}/oauth/amocrm/callback?code=def502-CODE-SECRET&referer=shop.amocrm.ru&state=STATE-SECRET", timeout=10)
    # werkzeug writes a request's line after answering it: a last request whose line is awaited flushes the others.
    http.get(f"{base}/livez", timeout=10)
    deadline = time.monotonic() + 20
    while '"GET /livez' not in log_path.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.1)

    log = log_path.read_text(errors="replace")
    assert '"POST /webhooks/amocrm/*** HTTP/1.1" 200' in log, log[-3000:]
    assert "code=***" in log and "state=***" in log and "referer=shop.amocrm.ru" in log, log[-3000:]
    for secret in (token, token[:12], "CODE-SECRET", "STATE-SECRET"):
        assert secret not in log, f"{secret!r} is in the log"
