"""A worker killed with SIGKILL in the middle of a batch, and Redis restarted under a running
pipeline: afterwards every closed talk is recorded exactly once.

The worker is the Procfile's (`dramatiq workers.broker:broker workers.actors`) in a subprocess; Redis is a
private redis-server of this test, killed and started again empty. Time is compressed where
production waits: the batch lock's 2-minute expiry is applied at once and the sweeper runs with
zero thresholds (in production: after 60 s / 180 s, every 30 s).
"""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from core.inbox import talk_processing
from core.models import WebhookEvent
from tests.helpers.apps import api_headers_for
from tests.helpers.fault_helpers import (
    assert_each_closed_talk_recorded_once,
    delivery_codes,
    open_and_close,
    requests_per_talk,
    wait_for,
    wait_recorded,
)
from tests.helpers.pipeline_helpers import connected_integration

pytestmark = [pytest.mark.timeout(60), pytest.mark.redis, pytest.mark.e2e]


def _setup(app, amo):
    from core.access.accounts import ensure_first_account

    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        account_id = ensure_first_account(session).id
        session.commit()
    client = app.test_client()
    api = api_headers_for(app, account_id)
    return services, client, api, connected_integration(client, api, amo)


def _statuses(services, integration_id) -> dict[str, int]:
    with services.session_factory() as session:
        rows = session.execute(sa.select(WebhookEvent.status, sa.func.count())
                               .where(WebhookEvent.integration_id == integration_id).group_by(WebhookEvent.status)).all()
    return dict(rows)


def _sweep_now(services, processing_after: float = 0) -> list[int]:
    """The sweeper's pass, with its waiting compressed; returns the re-enqueued ids."""
    from workers.actors import enqueue_talk_events

    with services.session_factory() as session:
        ids = talk_processing.sweep_stuck(session, received_after=0, processing_after=processing_after)
        session.commit()
    enqueue_talk_events(ids)
    return ids


def _sweep_until_recorded(services, integration_id: int, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(requests_per_talk(services, integration_id).values()) < count:
        assert time.monotonic() < deadline, f"not all {count} talks recorded after {timeout_s} s: {_statuses(services, integration_id)}"
        _sweep_now(services, processing_after=60)  # only what waits without a message
        time.sleep(1.0)


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(redis_app, amo, worker_factory, private_redis):
    services, client, api, setup = _setup(redis_app, amo)
    # Every amoCRM call takes 3 s, so the worker is inside a batch's fetch when it is killed.
    amo.configure(latency_ms=3000)
    talks = open_and_close(amo, setup, 12)
    assert delivery_codes(amo, talks) == [200] * 12

    worker = worker_factory()
    wait_for(lambda: _statuses(services, setup.integration_id).get("processing", 0) > 0, 20,
             "the worker to claim a batch")
    worker.kill9()
    assert not worker.alive()
    statuses = _statuses(services, setup.integration_id)
    assert statuses.get("processing", 0) > 0 and sum(requests_per_talk(services, setup.integration_id).values()) < 12

    # Two minutes later in production: the dead worker's batch lock has expired and the sweeper
    # gives its claimed events back.
    lock_key = f"chatsource:lock:talk-batch:{setup.integration_id}"
    assert services.redis.exists(lock_key), "the killed worker held the integration's batch lock"
    services.redis.delete(lock_key)
    amo.configure(latency_ms=0)
    requeued = _sweep_now(services)
    assert requeued, "the sweeper found the interrupted events"

    replacement = worker_factory()
    wait_recorded(services, setup.integration_id, 12, timeout_s=30)
    # Dramatiq also redelivers the dead worker's unacknowledged messages (after its heartbeat
    # timeout): send every event again and let them run; nothing may be recorded twice.
    from workers.actors import enqueue_talk_events

    with services.session_factory() as session:
        all_ids = list(session.scalars(sa.select(WebhookEvent.id).where(WebhookEvent.integration_id == setup.integration_id)))
    seen = len(replacement.log())
    enqueue_talk_events(all_ids)
    wait_for(lambda: all(f"talk event {i}: " in replacement.log()[seen:] for i in all_ids), 20,
             "the worker to run every repeated message")
    assert replacement.alive()
    assert_each_closed_talk_recorded_once(services, setup.integration_id, talks)
    assert "Traceback" not in replacement.log()


def test_redis_restart_loses_no_talk(redis_app, amo, worker_factory, private_redis):
    services, client, api, setup = _setup(redis_app, amo)
    worker = worker_factory()
    before = open_and_close(amo, setup, 4, prefix="До")
    wait_recorded(services, setup.integration_id, 4, timeout_s=20)

    private_redis.stop()  # crash: the queue, the locks and the rate-limit windows are gone
    during = open_and_close(amo, setup, 4, prefix="Во время")
    # The inbox is in PostgreSQL: amoCRM still gets its 200 for every delivery.
    assert delivery_codes(amo, during) == [200] * 4
    assert _statuses(services, setup.integration_id).get("received") == 4
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["broker_state"].startswith("error")

    private_redis.start()  # back, empty
    after = open_and_close(amo, setup, 4, prefix="После")
    # The messages of the talks closed while Redis was down were never sent: the sweeper finds them,
    # and the worker, which kept running, reconnects and takes them.
    _sweep_until_recorded(services, setup.integration_id, 12, timeout_s=40)
    assert worker.alive(), "the worker survived the Redis restart"
    assert_each_closed_talk_recorded_once(services, setup.integration_id, before + during + after)
    assert client.get("/healthz").get_json()["broker_state"] == "ok"
