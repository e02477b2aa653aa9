"""One owner of retries: the database. A job that meets an unavailable amoCRM writes `attempts`,
`error` and `next_attempt_at` to its inbox row and sends its own message again, delayed to match;
Dramatiq's retries stay off. After MAX_ATTEMPTS the row is failed, shown on the events page."""
from __future__ import annotations

import dramatiq
import sqlalchemy as sa

from core.inbox import talk_processing
from core.models import WebhookEvent
from tests.helpers.admin_helpers import signed_in, text
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, requests_of
from workers import outbox


class SentMessages(dramatiq.Middleware):
    """Every message the broker takes: (actor, args, delay, options)."""

    def __init__(self):
        self.sent = []

    def after_enqueue(self, broker, message, delay):
        self.sent.append((message.actor_name, tuple(message.args), delay, dict(message.options)))


def test_a_failing_job_is_sent_again_on_our_schedule_until_it_fails_visibly(app, client, api, amo, services, monkeypatch):
    monkeypatch.setattr(talk_processing, "RETRY_BASE_SECONDS", 0.01)  # 10 ms, 20 ms … instead of 10 s, 20 s …
    connected_integration(client, api, amo)
    broker = app.extensions["chatsource.broker"]
    spy = SentMessages()
    broker.add_middleware(spy)
    amo.configure(error_rate=1.0, error_status=500)
    chat = amo.state.create_chat(contact={"name": "Анна"}, origin="telegram")
    amo.state.close_talk(chat["talk_id"], force_close=True, control=True)
    drain(app)

    with services.session_factory() as session:
        [event] = session.scalars(sa.select(WebhookEvent).where(WebhookEvent.talk_id == chat["talk_id"],
                                                                WebhookEvent.status != "skipped")).all()
    assert (event.status, event.attempts) == ("failed", talk_processing.MAX_ATTEMPTS)
    assert "500" in event.error and requests_of(client, api) == []
    ours = [(delay, options) for name, args, delay, options in spy.sent
            if name == outbox.PROCESS_TALK_EVENT and args == (event.id,)]
    delayed = [delay for delay, _ in ours if delay is not None]
    # The first send (the webhook), then one delayed re-send per attempt that left one to go.
    assert len(delayed) == talk_processing.MAX_ATTEMPTS - 1 and all(d >= 1 for d in delayed)
    assert not any("retries" in options for _, options in ours), "Dramatiq's own retries ran"

    page = text(signed_in(app).get("/admin/events/?flt0_0=failed"))
    assert f"не удалось после {talk_processing.MAX_ATTEMPTS} попыток" in page and "500" in page

    amo.configure(error_rate=0.0)
    assert client.post(f"/api/v1/events/{event.id}/replay", headers=api).status_code == 202
    drain(app)
    assert [r["talk_id"] for r in requests_of(client, api)] == [chat["talk_id"]]


def test_a_claim_that_keeps_dying_with_its_worker_stops_at_max_attempts(services, account_id):
    """With Dramatiq's retries off, the sweeper is what re-sends after a crash; the database's count
    still stops it: a stale claim out of attempts is failed, one with attempts left goes back."""
    from datetime import timedelta

    from core.integrations.settings import create_integration
    from core.platform.db import utcnow

    long_ago = utcnow() - timedelta(hours=1)
    with services.session_factory() as session:
        integration = create_integration(session, services, account_id, {"name": "Падает"})
        rows = {attempts: WebhookEvent(account_id=account_id, integration_id=integration.id, dedupe_key=f"k{attempts}",
                                       action="update", talk_id=attempts, item={"is_in_work": "0"}, status="processing",
                                       attempts=attempts, claimed_at=long_ago, received_at=long_ago)
                for attempts in (talk_processing.MAX_ATTEMPTS - 1, talk_processing.MAX_ATTEMPTS)}
        session.add_all(rows.values())
        session.commit()
        ids = [rows[n].id for n in sorted(rows)]
        requeued = talk_processing.sweep_stuck(session)
        session.commit()
    with services.session_factory() as session:
        last_chance, spent = (session.get(WebhookEvent, i) for i in ids)
        assert (last_chance.status, requeued) == ("received", [last_chance.id])
        assert spent.status == "failed" and str(talk_processing.MAX_ATTEMPTS) in str(spent.status_message)


def test_a_backfill_waiting_for_a_running_reconciliation_is_retried_by_dramatiq(app, client, api, amo, services):
    """The one exception, kept on purpose: a backfill has no inbox row to hold a schedule, so while
    the integration's reconciliation holds its lock the actor raises Retry and Dramatiq sends it again
    (delayed 15 s, counted in the message)."""
    import time

    from core.platform.db import utcnow

    setup = connected_integration(client, api, amo)
    broker = app.extensions["chatsource.broker"]
    broker.flush_all()
    spy = SentMessages()
    broker.add_middleware(spy)
    with services.locks.try_lock(f"reconcile:{setup.integration_id}", timeout_s=60) as acquired:
        assert acquired
        response = client.post(f"/api/v1/integrations/{setup.integration_id}/backfill", headers=api,
                               json={"date_from": utcnow().date().isoformat(), "tz": "UTC"})
        assert response.status_code == 202, response.get_json()
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
        worker.start()
        try:
            deadline = time.monotonic() + 20
            while not any(name == outbox.RUN_BACKFILL and delay for name, _, delay, _ in spy.sent):
                assert time.monotonic() < deadline, f"the busy backfill was not sent again: {spy.sent}"
                time.sleep(0.1)
        finally:
            worker.stop()
    [(delay, options)] = [(d, o) for name, _, d, o in spy.sent if name == outbox.RUN_BACKFILL and d]
    assert delay == 15_000 and options.get("retries") == 1
