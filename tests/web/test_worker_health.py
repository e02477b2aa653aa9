"""Issue 9 §3: events that wait with no worker consuming them are an alarm, not a silent «ok».

Run as `make run` used to with REDIS_URL set — the web process alone — 60 closed chats became 0
requests while /healthz said "ok". Now the worker's heartbeat (its sweeper thread) and the age of the
oldest waiting event make that a 503 and a dashboard alarm."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from core.inbox import worker_health
from core.platform.db import utcnow
from tests.helpers.admin_helpers import signed_in, text
from tests.helpers.apps import api_headers_for, dispose, make_app
from tests.helpers.report_data import add_event, seed_catalog


@pytest.fixture
def redis_app(db_url, tmp_path, any_redis):
    """The web process on the Redis broker, with no worker anywhere."""
    app = make_app(db_url, tmp_path, redis_client=any_redis)
    yield app
    dispose(app)


def _waiting_event(app, account_id, seconds_ago: int):
    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        catalog = seed_catalog(session, services, account_id)
        add_event(session, account_id, catalog.integration_id, status="received",
                  received_at=utcnow() - timedelta(seconds=seconds_ago))
        session.commit()


def _account(app) -> int:
    from core.access.accounts import ensure_first_account

    with app.extensions["chatsource.services"].session_factory() as session:
        account = ensure_first_account(session)
        session.commit()
        return account.id


def test_events_waiting_with_no_worker_make_healthz_503_and_the_dashboard_alarm(redis_app, any_redis):
    account_id = _account(redis_app)
    _waiting_event(redis_app, account_id, seconds_ago=120)
    client = redis_app.test_client()

    health = client.get("/healthz")
    assert health.status_code == 503
    body = health.get_json()
    assert body["status"] == "degraded" and body["worker"] == "no heartbeat" and body["db"] == "ok"
    assert len(body["reasons"]) == 1 and "no worker is consuming" in body["reasons"][0]
    assert body["oldest_waiting_seconds"] >= 120

    admin = signed_in(redis_app)
    page = text(admin.get("/admin/"))
    assert "Обработчик не запущен: запустите процесс worker из Procfile" in page
    assert 'data-warning="no_worker"' in admin.get("/admin/").get_data(as_text=True)
    api = api_headers_for(redis_app, account_id)
    warnings = client.get("/api/v1/dashboard", headers=api).get_json()["warnings"]
    assert [w["severity"] for w in warnings if w["code"] == "no_worker"] == ["error"]

    # A worker starts: its heartbeat clears the alarm even before it has drained the backlog.
    worker_health.beat(any_redis)
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["status"] == "ok" and "reasons" not in health.get_json()
    assert 'data-warning="no_worker"' not in admin.get("/admin/").get_data(as_text=True)


def test_a_fresh_event_is_not_an_alarm_yet(redis_app):
    """Under a minute is ordinary queueing; the alarm is for events left behind."""
    _waiting_event(redis_app, _account(redis_app), seconds_ago=10)
    health = redis_app.test_client().get("/healthz")
    assert health.status_code == 200 and health.get_json()["worker"] == "no heartbeat"


def test_the_heartbeat_expires_when_the_worker_is_gone(any_redis):
    worker_health.beat(any_redis)
    assert worker_health.worker_alive(any_redis)
    assert 0 < any_redis.ttl(worker_health.HEARTBEAT_KEY) <= worker_health.HEARTBEAT_TTL_SECONDS


def test_the_sweeper_thread_beats(services_with_redis):
    from workers.sweeper import start_sweeper_thread, stop_sweeper_threads

    start_sweeper_thread(services_with_redis, interval=60)
    try:
        deadline = time.monotonic() + 10
        while not worker_health.worker_alive(services_with_redis.redis):
            assert time.monotonic() < deadline, "the sweeper thread wrote no heartbeat"
            time.sleep(0.05)
    finally:
        stop_sweeper_threads()


@pytest.fixture
def services_with_redis(redis_app):
    return redis_app.extensions["chatsource.services"]


def test_the_embedded_worker_counts_as_a_worker(db_url, tmp_path):
    app = make_app(db_url, tmp_path)
    try:
        _waiting_event(app, _account(app), seconds_ago=120)
        client = app.test_client()
        worker_health.forget_local_beat()
        assert client.get("/healthz").status_code == 503
        from web import start_embedded_worker

        start_embedded_worker(app)  # its sweeper thread beats in this process
        deadline = time.monotonic() + 10
        while client.get("/healthz").get_json().get("worker") != "ok":
            assert time.monotonic() < deadline, "the embedded worker wrote no heartbeat"
            time.sleep(0.05)
    finally:
        dispose(app)
    assert not worker_health.worker_alive(None)  # stopped with its worker


def test_the_openapi_document_knows_every_warning_code():
    """The dashboard API answers with this alarm; its schema's enum must allow it."""
    from core.reporting.dashboard import MESSAGES
    from web.api.openapi import SCHEMAS

    assert set(SCHEMAS["Warning"]["properties"]["code"]["enum"]) == set(MESSAGES)
