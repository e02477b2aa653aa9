"""Alarms before data is lost, against the amoCRM sandbox: tokens refreshed ahead of amoCRM's
three-month limit, the webhook read back from amoCRM, and replaying events by filter."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.inbox.replay import list_replay_runs, replay_by_filter, replay_progress
from core.integrations import maintenance
from core.models import ChatRequest, Integration, WebhookEvent
from core.platform.db import utcnow
from core.platform.errors import ValidationFailed
from core.reporting import dashboard
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, events_of, requests_of
from tests.helpers.report_data import add_event, seed_catalog


def set_refreshed(services, integration_id, days_ago):
    with services.session_factory() as session:
        session.execute(sa.update(Integration).where(Integration.id == integration_id)
                        .values(token_refreshed_at=utcnow() - timedelta(days=days_ago)))
        session.commit()


def integration_row(services, integration_id) -> Integration:
    with services.session_factory() as session:
        return session.get(Integration, integration_id)


def test_an_idle_integration_is_refreshed_before_amocrm_revokes_it(app, client, api, amo, services, account_id):
    setup = connected_integration(client, api, amo)
    before = integration_row(services, setup.integration_id)
    refreshes = amo.stats()["token_refreshes"]

    assert maintenance.refresh_tokens_ahead(services) == []  # connected a moment ago: nothing to do
    assert amo.stats()["token_refreshes"] == refreshes

    set_refreshed(services, setup.integration_id, days_ago=maintenance.REFRESH_AHEAD_DAYS + 1)
    [outcome] = maintenance.refresh_tokens_ahead(services)
    assert (outcome.integration_id, outcome.result) == (setup.integration_id, "refreshed")
    after = integration_row(services, setup.integration_id)
    assert amo.stats()["token_refreshes"] == refreshes + 1
    assert after.token_version == before.token_version + 1 and after.refresh_token_enc != before.refresh_token_enc
    assert utcnow() - after.token_refreshed_at < timedelta(minutes=1)
    # The new tokens work: a closed chat still becomes a request.
    chat = amo.create_chat(contact={"name": "Анна", "phones": ["+79160000000"]}, origin="telegram")
    amo.close_talk(chat["talk_id"])
    drain(app)
    assert len(requests_of(client, api)) == 1


def test_a_revoked_integration_shows_needs_reauth_instead_of_dying_silently(client, api, amo, services, account_id):
    setup = connected_integration(client, api, amo)
    amo.control("POST", "/revoke", json={})
    set_refreshed(services, setup.integration_id, days_ago=30)
    [outcome] = maintenance.refresh_tokens_ahead(services)
    assert outcome.result == "needs_reauth"
    assert integration_row(services, setup.integration_id).status == "needs_reauth"
    with services.session_factory() as session:
        warnings = dashboard.integration_warnings(session, account_id, setup.integration_id)
    assert [w.code for w in warnings] == ["needs_reauth"]
    assert maintenance.refresh_tokens_ahead(services) == []  # not retried until reconnected


def test_an_unreachable_amocrm_is_retried_on_the_next_run(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id, base_url="http://127.0.0.1:9")  # nothing listens there
        session.commit()
    set_refreshed(services, cat.integration_id, days_ago=30)
    [outcome] = maintenance.refresh_tokens_ahead(services)
    assert outcome.result == "error"
    assert integration_row(services, cat.integration_id).status == "connected"  # not a revocation


def hooks(amo) -> list[dict]:
    return amo.control("GET", "/webhooks")["webhooks"]


def test_the_webhook_is_read_back_from_amocrm(client, api, amo, services, account_id):
    setup = connected_integration(client, api, amo)
    [outcome] = maintenance.check_webhooks(services)
    row = integration_row(services, setup.integration_id)
    assert outcome.result == "ok" and row.webhook_registered_at is not None and not row.webhook_disabled
    assert row.webhook_checked_at is not None

    [hook] = hooks(amo)
    amo.control("POST", f"/webhooks/{hook['id']}/disable")
    assert maintenance.check_webhooks(services)[0].result == "disabled"
    assert integration_row(services, setup.integration_id).webhook_disabled
    with services.session_factory() as session:
        assert [w.code for w in dashboard.integration_warnings(session, account_id, setup.integration_id)] == ["webhook_disabled"]

    amo.control("POST", f"/webhooks/{hook['id']}/enable")
    assert maintenance.check_webhooks(services)[0].result == "ok"
    assert not integration_row(services, setup.integration_id).webhook_disabled

    amo.state.delete_webhook(hook["destination"])  # someone removed it in amoCRM
    assert maintenance.check_webhooks(services)[0].result == "missing"
    row = integration_row(services, setup.integration_id)
    assert row.webhook_registered_at is None and not row.webhook_disabled
    with services.session_factory() as session:
        assert [w.code for w in dashboard.integration_warnings(session, account_id, setup.integration_id)] == ["webhook_missing"]


def test_a_hook_registered_without_the_trailing_slash_still_counts(client, api, amo, services, account_id):
    """Integrations registered before the url gained its slash keep their hook: it is recognised,
    and registering again updates it instead of adding a second hook (every close twice)."""
    from core.integrations import connect as oauth_connect

    setup = connected_integration(client, api, amo)
    assert setup.webhook_url.endswith("/")
    [hook] = hooks(amo)
    amo.state.delete_webhook(hook["destination"])
    legacy = setup.webhook_url.rstrip("/")
    amo.state.upsert_webhook(legacy, ["update_talk"])
    assert maintenance.check_webhooks(services)[0].result == "ok"

    oauth_connect.register_webhook(services, setup.integration_id)
    [hook] = hooks(amo)
    assert hook["destination"] == legacy and "update_talk" in hook["settings"]


def test_periodic_run_summarises(client, api, amo, services, account_id):
    setup = connected_integration(client, api, amo)
    set_refreshed(services, setup.integration_id, days_ago=20)
    assert maintenance.run_periodic(services) == {"tokens": {"refreshed": 1}, "webhooks": {"ok": 1}}


# --- replay by filter ----------------------------------------------------------------------------

@pytest.fixture
def inbox(services, account_id):
    """Events of two integrations in every replayable state, some old, one not a closed talk."""
    from core.integrations import settings as integrations
    from tests.helpers.report_data import connect

    now = utcnow()
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        second = integrations.create_integration(session, services, account_id, {"name": "Второй"})
        connect(second, services)
        revoked = integrations.create_integration(session, services, account_id, {"name": "Отозван"})
        connect(revoked, services)
        revoked.status = "needs_reauth"
        off = integrations.create_integration(session, services, account_id, {"name": "Выключен"})
        connect(off, services)
        off.is_active = False
        i1, i2 = cat.integration_id, second.id
        events = {
            "failed_1": add_event(session, account_id, i1, status="failed"),
            "parked_1": add_event(session, account_id, i1, status="parked"),
            "failed_old": add_event(session, account_id, i1, status="failed", received_at=now - timedelta(days=40)),
            "ignored_1": add_event(session, account_id, i1, status="ignored"),
            "open_talk": add_event(session, account_id, i1, status="failed", closed=False),
            "done_1": add_event(session, account_id, i1, status="done"),
            "failed_2": add_event(session, account_id, i2, status="failed"),
            "parked_revoked": add_event(session, account_id, revoked.id, status="parked"),
            "failed_off": add_event(session, account_id, off.id, status="failed"),
        }
        session.commit()
        return {"i1": i1, "i2": i2, **{k: v.id for k, v in events.items()}}


def replay(services, account_id, **kwargs):
    with services.session_factory() as session:
        result = replay_by_filter(session, account_id, **kwargs)
        session.commit()
        return result


def statuses(services, *ids) -> list[str]:
    with services.session_factory() as session:
        return [session.get(WebhookEvent, i).status for i in ids]


def test_replay_by_filter_picks_exactly_the_matching_events(services, account_id, inbox):
    now = utcnow()
    result = replay(services, account_id, integration_id=inbox["i1"], date_from=now - timedelta(days=7))
    assert sorted(result.event_ids) == sorted([inbox["failed_1"], inbox["parked_1"]])
    assert result.skipped == {"not_closed": 1}  # the open talk can never become a request
    assert result.to_enqueue == [min(inbox["failed_1"], inbox["parked_1"])]  # one message drains the integration
    assert statuses(services, inbox["failed_1"], inbox["parked_1"]) == ["received", "received"]
    assert statuses(services, inbox["failed_old"], inbox["ignored_1"], inbox["failed_2"], inbox["done_1"]) == \
        ["failed", "ignored", "failed", "done"]

    again = replay(services, account_id, integration_id=inbox["i1"], date_from=now - timedelta(days=7))
    assert again.queued == 0 and again.run_id is None  # idempotent: nothing is queued twice

    everything = replay(services, account_id, statuses=["failed", "parked", "ignored"])
    assert sorted(everything.event_ids) == sorted([inbox["failed_old"], inbox["ignored_1"], inbox["failed_2"]])
    assert everything.skipped == {"not_closed": 1, "needs_reauth": 1, "integration_inactive": 1}
    assert statuses(services, inbox["parked_revoked"], inbox["failed_off"]) == ["parked", "failed"]
    assert len(everything.to_enqueue) == 2  # one per integration


def test_replay_progress(services, account_id, inbox):
    result = replay(services, account_id, statuses=["failed"], integration_id=inbox["i1"])
    with services.session_factory() as session:
        progress = replay_progress(session, account_id, result.run_id)
        assert progress["total"] == 2 and progress["pending"] == 2 and not progress["finished"] and progress["progress"] == 0
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.id == inbox["failed_1"]).values(status="done"))
        session.commit()
        progress = replay_progress(session, account_id, result.run_id)
        assert (progress["done"], progress["pending"], progress["progress"]) == (1, 1, 0.5)
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.id == inbox["failed_old"]).values(status="failed"))
        session.commit()
        progress = replay_progress(session, account_id, result.run_id)
        assert progress["finished"] and progress["failed"] == 1 and progress["filter"]["statuses"] == ["failed"]
        assert [r["id"] for r in list_replay_runs(session, account_id)] == [result.run_id]


def test_replay_refuses_what_cannot_be_replayed(services, account_id, inbox):
    from core.access.accounts import create_account

    with services.session_factory() as session:
        other = create_account(session, "Чужой").id
        session.commit()
        for kwargs, field in (({"statuses": ["done"]}, "statuses"), ({"statuses": []}, "statuses"),
                              ({"statuses": "processing"}, "statuses"), ({"integration_id": 10**6}, "integration_id"),
                              ({"date_from": utcnow(), "date_till": utcnow() - timedelta(days=1)}, "date_from")):
            with pytest.raises(ValidationFailed) as error:
                replay_by_filter(session, account_id, **kwargs)
            assert error.value.field == field
        with pytest.raises(ValidationFailed):  # another account's integration is as good as absent
            replay_by_filter(session, other, integration_id=inbox["i1"])
        assert replay_by_filter(session, other).queued == 0


def test_failed_chats_become_requests_after_a_replay_by_filter(app, client, api, amo, services, account_id):
    setup = connected_integration(client, api, amo)
    broker = app.extensions["chatsource.broker"]
    talks = [amo.create_chat(contact={"name": f"Клиент {n}", "phones": [f"+7916000000{n}"]}, origin="telegram")["talk_id"]
             for n in range(3)]
    broker.flush_all()
    for talk_id in talks:
        amo.state.close_talk(talk_id, force_close=True, control=True)
    broker.flush_all()  # the messages are lost; pretend the retries ran out
    with services.session_factory() as session:
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.action == "update").values(status="failed", error="boom"))
        session.commit()
    assert requests_of(client, api) == []

    result = replay(services, account_id, integration_id=setup.integration_id)
    assert result.queued == 3
    from workers.actors import enqueue_talk_events

    enqueue_talk_events(result.to_enqueue)
    drain(app)
    assert sorted(r["talk_id"] for r in requests_of(client, api)) == sorted(talks)
    # Requests the worker records are searchable at once (the search column is filled on insert).
    assert [r["contact_name"] for r in requests_of(client, api, q="8 916 000 00 01")] == ["Клиент 1"]
    with services.session_factory() as session:
        progress = replay_progress(session, account_id, result.run_id)
        assert progress["finished"] and progress["done"] == 3
        assert session.scalar(sa.select(sa.func.count()).select_from(ChatRequest)) == 3
    assert {e["replay_run_id"] for e in events_of(client, api, replay_id=result.run_id)} == {result.run_id}


# --- the periodic run ----------------------------------------------------------------------------

def test_maintenance_is_due_once_per_interval_across_processes(services, fake_redis):
    from dataclasses import replace

    from workers import sweeper

    one, two = replace(services, redis=fake_redis), replace(services, redis=fake_redis)  # two worker processes
    assert sweeper.maintenance_due(one) is True
    assert sweeper.maintenance_due(one) is False and sweeper.maintenance_due(two) is False
    assert 0 < fake_redis.ttl(sweeper.MAINTENANCE_KEY) <= sweeper.MAINTENANCE_INTERVAL_SECONDS
    fake_redis.delete(sweeper.MAINTENANCE_KEY)  # the interval has passed
    assert sweeper.maintenance_due(two) is True


def test_the_sweeper_sends_the_maintenance_run_which_checks_the_webhook(app, client, api, amo, services, monkeypatch):
    from workers import sweeper

    setup = connected_integration(client, api, amo)
    monkeypatch.setattr(sweeper, "_last_local_runs", {})
    broker = app.extensions["chatsource.broker"]
    broker.flush_all()
    assert sweeper.maintenance_tick(services) is True
    assert sweeper.maintenance_tick(services) is False  # not again within 30 minutes
    import dramatiq

    queued = [dramatiq.Message.decode(data).actor_name for data in list(broker.queues["maintenance"].queue)]
    assert queued == ["chatsource.run_maintenance"]
    assert integration_row(services, setup.integration_id).webhook_checked_at is None
    drain(app)
    assert integration_row(services, setup.integration_id).webhook_checked_at is not None
