"""Reconciliation end to end against the amoCRM sandbox: chats closed while the hook is disabled are
found in amoCRM's event log and recorded, each once; late webhooks change nothing; paging, 429, 401,
other event shapes, unreadable events and failed runs (the cursor stays). SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest

from core.inbox import reconciliation
from core.inbox.reconciliation import OVERLAP_SECONDS
from core.models import Integration
from core.platform.db import utcnow
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, events_of, requests_of

pytestmark = pytest.mark.e2e

PREFIX = "Найдено сверкой с amoCRM: вебхук не пришёл. "


def close_chats(amo, n, origin="telegram", start=0):
    talk_ids = []
    for i in range(start, start + n):
        chat = amo.state.create_chat(contact={"name": f"Клиент {i}", "phones": [f"+7916555{i:04d}"]}, origin=origin)
        amo.state.close_talk(chat["talk_id"], force_close=True, control=True)
        talk_ids.append(chat["talk_id"])
    return talk_ids


def connected(app, client, api, amo, **kwargs):
    """A connected integration without the reconciliation its connect queued (tests run it themselves)."""
    setup = connected_integration(client, api, amo, **kwargs)
    app.extensions["chatsource.broker"].flush_all()
    return setup


def reconcile(services, integration_id, **kwargs):
    """One periodic run, its talks then queued as the worker's actor does."""
    from workers.actors import enqueue_talk_events

    outcome = reconciliation.reconcile_integration(services, integration_id, **kwargs)
    enqueue_talk_events(outcome.to_enqueue[:1])
    return outcome


def integration_row(services, integration_id) -> Integration:
    with services.session_factory() as session:
        return session.get(Integration, integration_id)


def test_chats_closed_while_the_hook_is_disabled_are_recorded_each_once(app, client, api, amo, services):
    setup = connected(app, client, api, amo)
    amo.disable_webhooks()
    talk_ids = close_chats(amo, 10)
    drain(app)
    assert requests_of(client, api) == [] and events_of(client, api) == []  # amoCRM delivered nothing

    amo.state.reset_stats()
    outcome = reconcile(services, setup.integration_id)
    assert (outcome.result, outcome.counts.recovered, outcome.counts.unreadable) == ("done", 10, 0)
    drain(app)
    recorded = requests_of(client, api, limit=500)
    assert sorted(r["talk_id"] for r in recorded) == sorted(talk_ids)
    assert all(r["attribution_reason"].startswith(PREFIX) for r in recorded)
    assert {r["attribution"] for r in recorded} == {"messenger"}  # attributed as a webhook's would be
    assert {r["contact_name"] for r in recorded} == {f"Клиент {i}" for i in range(10)}
    calls = amo.state.get_stats()["calls_by_endpoint"]
    # One event-log page and one talk per recovered chat, then the worker's batched contacts and leads.
    assert calls.get("GET /api/v4/events") == 1 and calls.get("GET /api/v4/talks/{id}") == 10

    # The next run finds them recorded: one call, nothing stored.
    amo.state.reset_stats()
    again = reconcile(services, setup.integration_id)
    assert (again.counts.recovered, again.counts.already_recorded) == (0, 10)
    assert amo.state.get_stats()["api_calls"] == 1

    # amoCRM enables the hook and late webhooks arrive for some: no doubles.
    amo.disable_webhooks(False)
    amo.state.send_talk_events(event="update_talk", talk_ids=talk_ids[:4])
    drain(app)
    assert len(requests_of(client, api, limit=500)) == 10
    late = [e for e in events_of(client, api, limit=500) if e["talk_id"] in talk_ids[:4] and e["status_reason"]]
    assert late and all(e["status_reason"] == "обращение по этой беседе уже записано" for e in late)

    row = integration_row(services, setup.integration_id)
    assert (row.reconcile_recovered_last, row.reconcile_recovered_total, row.reconcile_error) == (0, 10, None)
    [health] = client.get("/api/v1/dashboard", headers=api).get_json()["integrations"]
    assert health["reconciliation"]["recovered_total"] == 10 and health["reconciliation"]["last_run_at"]


def test_a_chat_a_webhook_reported_is_left_to_the_webhook(app, client, api, amo, services):
    setup = connected(app, client, api, amo)
    [delivered] = close_chats(amo, 1)  # its webhook is in the inbox, not yet processed
    amo.disable_webhooks()
    [missed] = close_chats(amo, 1, start=1)
    outcome = reconcile(services, setup.integration_id)
    assert (outcome.counts.recovered, outcome.counts.already_recorded) == (1, 1)
    drain(app)
    by_talk = {r["talk_id"]: r for r in requests_of(client, api)}
    assert set(by_talk) == {delivered, missed}
    assert by_talk[missed]["attribution_reason"].startswith(PREFIX)
    assert not by_talk[delivered]["attribution_reason"].startswith(PREFIX)


def test_events_across_pages(app, client, api, amo, services):
    setup = connected(app, client, api, amo)
    close_chats(amo, 105)  # delivered by webhooks and recorded
    drain(app)
    amo.disable_webhooks()
    missed = close_chats(amo, 3, start=105)
    amo.state.reset_stats()
    outcome = reconcile(services, setup.integration_id)
    assert outcome.counts.pages == 2 and outcome.counts.events == 108
    assert (outcome.counts.recovered, outcome.counts.already_recorded) == (3, 105)
    assert amo.state.get_stats()["calls_by_endpoint"]["GET /api/v4/events"] == 2
    drain(app)
    recorded = requests_of(client, api, limit=500)
    assert len(recorded) == 108 and len({r["talk_id"] for r in recorded}) == 108
    assert sorted(r["talk_id"] for r in recorded if r["attribution_reason"].startswith(PREFIX)) == sorted(missed)


def test_429_is_honoured_during_reconciliation(app, client, api, amo, services):
    setup = connected(app, client, api, amo)
    amo.disable_webhooks()
    talk_ids = close_chats(amo, 5)
    amo.state.update_settings({"rate_limit": 2, "retry_after": 1})
    amo.state.reset_stats()
    recovered = 0
    for _ in range(5):  # a 429 that persists stops a run; the next run goes on from the same cursor
        outcome = reconcile(services, setup.integration_id)
        recovered += outcome.counts.recovered
        if outcome.result == "done":
            break
    assert outcome.result == "done" and recovered == 5
    stats = amo.state.get_stats()
    assert stats["responses_429"] >= 1 and stats["peak_calls_per_second"] <= 7
    drain(app)
    assert sorted(r["talk_id"] for r in requests_of(client, api)) == sorted(talk_ids)


def test_401_during_reconciliation_refreshes_the_token_and_goes_on(app, client, api, amo, services):
    setup = connected(app, client, api, amo)
    amo.disable_webhooks()
    talk_ids = close_chats(amo, 2)
    refreshes = amo.stats()["token_refreshes"]
    amo.state.advance_clock(2 * 86400)  # amoCRM now finds our access token expired (we do not know yet)
    outcome = reconcile(services, setup.integration_id)
    assert (outcome.result, outcome.counts.recovered) == ("done", 2)
    stats = amo.stats()
    assert stats["token_refreshes"] == refreshes + 1 and stats["responses_by_status"].get("401", 0) >= 1
    drain(app)
    assert sorted(r["talk_id"] for r in requests_of(client, api)) == sorted(talk_ids)
    assert integration_row(services, setup.integration_id).status == "connected"


def test_revoked_tokens_stop_the_run_and_keep_the_cursor(app, client, api, amo, services):
    setup = connected(app, client, api, amo)
    amo.disable_webhooks()
    close_chats(amo, 1)
    amo.state.revoke()
    outcome = reconcile(services, setup.integration_id)
    assert outcome.result == "needs_reauth"
    row = integration_row(services, setup.integration_id)
    assert row.status == "needs_reauth" and row.reconcile_cursor is None and row.reconcile_error


@pytest.mark.parametrize("shape", ["talk.id", "talk.talk_id", "talk_id", "entity"])
def test_a_talk_closed_event_in_another_shape_is_still_found(app, client, api, amo, services, shape):
    setup = connected(app, client, api, amo)
    amo.disable_webhooks()
    amo.state.update_settings({"talk_event_shape": shape})
    talk_ids = close_chats(amo, 2)
    outcome = reconcile(services, setup.integration_id)
    assert (outcome.counts.recovered, outcome.counts.unreadable) == (2, 0)
    drain(app)
    assert sorted(r["talk_id"] for r in requests_of(client, api)) == sorted(talk_ids)


def test_an_unreadable_event_is_counted_and_nothing_else_breaks(app, client, api, amo, services, caplog):
    setup = connected(app, client, api, amo)
    amo.disable_webhooks()
    [readable] = close_chats(amo, 1)
    amo.add_event(type="talk_closed", entity_type="lead", entity_id=42, value_after=[{"talk": {"id": "not a number"}}])
    amo.add_event(type="talk_closed", value_after="oops")
    outcome = reconcile(services, setup.integration_id)
    assert (outcome.result, outcome.counts.recovered, outcome.counts.unreadable) == ("done", 1, 2)
    assert "without a readable talk id" in caplog.text and "Bearer" not in caplog.text
    drain(app)
    assert [r["talk_id"] for r in requests_of(client, api)] == [readable]
    assert integration_row(services, setup.integration_id).reconcile_unreadable_total == 2
    # Read again (the overlap) they are not counted twice.
    reconcile(services, setup.integration_id, now=utcnow() + timedelta(seconds=OVERLAP_PLUS))
    assert integration_row(services, setup.integration_id).reconcile_unreadable_total == 2
    [health] = client.get("/api/v1/dashboard", headers=api).get_json()["integrations"]
    assert health["reconciliation"]["unreadable_total"] == 2


OVERLAP_PLUS = 5  # the next run, a few seconds on: its window overlaps the last one


def test_the_cursor_does_not_move_past_a_failed_run(app, client, api, amo, services):
    setup = connected(app, client, api, amo)
    amo.disable_webhooks()
    talk_ids = close_chats(amo, 2)
    first = reconcile(services, setup.integration_id)
    assert first.result == "done"
    cursor = integration_row(services, setup.integration_id).reconcile_cursor
    more = close_chats(amo, 2, start=2)
    amo.state.update_settings({"error_rate": 1.0, "error_status": 503})
    failed = reconcile(services, setup.integration_id, now=utcnow() + timedelta(seconds=1))
    assert failed.result == "error" and "503" in failed.error
    row = integration_row(services, setup.integration_id)
    assert row.reconcile_cursor == cursor and "503" in row.reconcile_error
    amo.state.update_settings({"error_rate": 0.0})
    retried = reconcile(services, setup.integration_id, now=utcnow() + timedelta(seconds=2))
    assert (retried.result, retried.counts.recovered) == ("done", 2)
    row = integration_row(services, setup.integration_id)
    assert row.reconcile_cursor > cursor and row.reconcile_error is None and row.reconcile_recovered_total == 4
    drain(app)
    assert sorted(r["talk_id"] for r in requests_of(client, api)) == sorted(talk_ids + more)


def test_an_inactive_or_disconnected_integration_is_not_reconciled(app, client, api, amo, services):
    setup = connected(app, client, api, amo, activate=False)
    amo.disable_webhooks()
    close_chats(amo, 1)
    amo.state.reset_stats()
    assert reconcile(services, setup.integration_id).result == "skipped"
    assert amo.state.get_stats()["api_calls"] == 0
    with services.session_factory() as session:
        assert reconciliation.due_integrations(session) == []


def test_chats_closed_while_the_integration_was_switched_off_stay_unrecorded(app, client, api, amo, services, monkeypatch):
    from workers import sweeper

    setup = connected(app, client, api, amo, activate=False)
    amo.disable_webhooks()
    close_chats(amo, 1)  # switched off: a webhook would have been stored as ignored
    monkeypatch.setattr(sweeper, "_last_local_runs", {})
    later = utcnow() + timedelta(seconds=OVERLAP_SECONDS + 5)
    monkeypatch.setattr(reconciliation, "utcnow", lambda: later)  # the sweeper's tick, a few minutes on
    assert sweeper.reconcile_tick(services) == []
    assert integration_row(services, setup.integration_id).reconcile_cursor == later
    with services.session_factory() as session:
        session.get(Integration, setup.integration_id).is_active = True
        session.commit()
    outcome = reconcile(services, setup.integration_id, now=later + timedelta(seconds=1))
    assert (outcome.result, outcome.counts.events, outcome.counts.recovered) == ("done", 0, 0)


def test_the_sweeper_sends_the_reconciliation_once_per_interval(app, client, api, amo, services, monkeypatch):
    import dramatiq

    from workers import sweeper

    setup = connected(app, client, api, amo)
    amo.disable_webhooks()
    [talk_id] = close_chats(amo, 1)
    monkeypatch.setattr(sweeper, "_last_local_runs", {})
    broker = app.extensions["chatsource.broker"]
    broker.flush_all()
    assert sweeper.reconcile_tick(services) == [setup.integration_id]
    assert sweeper.reconcile_tick(services) == []  # not again within RECONCILE_INTERVAL_SECONDS
    queued = [dramatiq.Message.decode(data) for data in list(broker.queues["maintenance"].queue)]
    assert [(m.actor_name, m.args) for m in queued] == [("chatsource.reconcile_integration", (setup.integration_id,))]
    drain(app)  # the reconciliation, which queues the talk
    drain(app)  # the talk
    assert [r["talk_id"] for r in requests_of(client, api)] == [talk_id]


def test_reconciliation_is_due_once_per_interval_across_processes(services, fake_redis):
    from dataclasses import replace

    from workers import sweeper

    one, two = replace(services, redis=fake_redis), replace(services, redis=fake_redis)
    assert sweeper.reconcile_due(one, 7, 600) is True
    assert sweeper.reconcile_due(two, 7, 600) is False and sweeper.reconcile_due(one, 8, 600) is True
    key = sweeper.RECONCILE_KEY.format(integration_id=7)
    assert 0 < fake_redis.ttl(key) <= 600
    fake_redis.delete(key)  # the interval has passed
    assert sweeper.reconcile_due(two, 7, 600) is True


def test_reconnecting_runs_the_reconciliation_at_once(app, client, api, amo, services):
    import dramatiq

    from tests.helpers.pipeline_helpers import connect_through_oauth

    setup = connected(app, client, api, amo)
    broker = app.extensions["chatsource.broker"]
    broker.flush_all()
    page = connect_through_oauth(client, api, setup.integration_id)
    assert page.status_code == 200
    queued = [dramatiq.Message.decode(data).actor_name for data in list(broker.queues["maintenance"].queue)]
    assert queued == ["chatsource.reconcile_integration"]


# --- backfill -------------------------------------------------------------------------------------

def test_backfill_of_a_period_records_the_missed_chats_with_progress(app, client, api, amo, services):
    setup = connected(app, client, api, amo)
    amo.disable_webhooks()
    talk_ids = close_chats(amo, 3)
    today = utcnow().date().isoformat()
    response = client.post(f"/api/v1/integrations/{setup.integration_id}/backfill", headers=api,
                           json={"date_from": (utcnow() - timedelta(days=2)).date().isoformat(), "date_till": today, "tz": "UTC"})
    assert response.status_code == 202, response.get_json()
    started = response.get_json()
    assert started["status"] == "queued" and started["progress"] == 0 and started["finished"] is False
    assert started["progress_url"] == f"/api/v1/backfills/{started['backfill_id']}"
    drain(app)  # the backfill, which queues the talks
    drain(app)  # the talks
    progress = client.get(started["progress_url"], headers=api).get_json()
    assert (progress["status"], progress["finished"], progress["progress"]) == ("done", True, 1.0)
    assert (progress["recovered"], progress["events"], progress["unreadable"], progress["error"]) == (3, 3, 0, None)
    assert progress["pages"] >= 1 and progress["reached"] == progress["date_till"]
    assert sorted(r["talk_id"] for r in requests_of(client, api)) == sorted(talk_ids)
    # Backfilling the same period again finds them recorded.
    again = client.post(f"/api/v1/integrations/{setup.integration_id}/backfill", headers=api,
                        json={"date_from": today, "tz": "UTC"}).get_json()
    drain(app)
    again = client.get(again["progress_url"], headers=api).get_json()
    assert (again["status"], again["recovered"], again["already_recorded"]) == ("done", 0, 3)
    assert len(requests_of(client, api)) == 3
    assert integration_row(services, setup.integration_id).reconcile_recovered_total == 3


def test_a_failed_backfill_says_why(app, client, api, amo, services):
    setup = connected(app, client, api, amo)
    amo.state.update_settings({"error_rate": 1.0, "error_status": 500})
    started = client.post(f"/api/v1/integrations/{setup.integration_id}/backfill", headers=api,
                          json={"date_from": utcnow().date().isoformat(), "tz": "UTC"}).get_json()
    drain(app)
    progress = client.get(started["progress_url"], headers=api).get_json()
    assert progress["status"] == "failed" and progress["finished"] is True and "500" in progress["error"]


def test_backfill_validation_tenancy_and_connection(app, client, api, amo, services):
    from tests.helpers.apps import other_account_headers

    setup = connected(app, client, api, amo)
    url = f"/api/v1/integrations/{setup.integration_id}/backfill"
    today = utcnow().date()

    def refused(json, status, field=None, headers=api, target=url):
        response = client.post(target, headers=headers, json=json)
        assert response.status_code == status, (json, response.get_json())
        if field:
            assert response.get_json()["error"]["field"] == field, response.get_json()
        return response.get_json()["error"]

    refused({}, 422, "date_from")
    refused({"date_from": "yesterday"}, 422, "date_from")
    refused({"date_from": (today + timedelta(days=3)).isoformat()}, 422, "date_from")
    refused({"date_from": today.isoformat(), "date_till": (today - timedelta(days=1)).isoformat(), "tz": "UTC"}, 422, "date_from")
    refused({"date_from": (today - timedelta(days=120)).isoformat()}, 422, "date_till")
    refused({"date_from": today.isoformat(), "page": 1}, 422, "page")
    refused({"date_from": today.isoformat()}, 404, headers=other_account_headers(app))
    refused({"date_from": today.isoformat()}, 404, target="/api/v1/integrations/999999/backfill")
    new = client.post("/api/v1/integrations", headers=api, json={"name": "Ещё не подключена"}).get_json()
    assert refused({"date_from": today.isoformat()}, 409, target=f"/api/v1/integrations/{new['id']}/backfill")["code"] == "not_connected"

    client.patch(f"/api/v1/integrations/{setup.integration_id}", headers=api, json={"is_active": False})
    assert refused({"date_from": today.isoformat()}, 409)["code"] == "not_active"  # what it found would be ignored
    client.patch(f"/api/v1/integrations/{setup.integration_id}", headers=api, json={"is_active": True})

    started = client.post(url, headers=api, json={"date_from": today.isoformat()}).get_json()
    assert client.get(started["progress_url"], headers=other_account_headers(app)).status_code == 404
    assert client.get("/api/v1/backfills/999999", headers=api).status_code == 404
