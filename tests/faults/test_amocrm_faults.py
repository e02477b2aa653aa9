"""amoCRM misbehaving — 5xx answers, 429 with an HTML page, calls that hang past our timeout, the
authorisation revoked — and then recovering: every closed talk ends up recorded exactly once.

Retries are driven the way the worker would run them, without waiting real backoff minutes: each
round marks the waiting events due (their backoff "has passed") and runs `process_event`, the core
function behind the worker's message.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.inbox import talk_processing
from core.models import Integration, WebhookEvent
from tests.helpers.apps import dispose, drain, make_app
from tests.helpers.fault_helpers import assert_each_closed_talk_recorded_once, delivery_codes, open_and_close
from tests.helpers.pipeline_helpers import connect_through_oauth, connected_integration

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]


def process_due(services, integration_id: int):
    """One worker run once the backoff is over; None when nothing of the integration is waiting."""
    with services.session_factory() as session:
        ids = list(session.scalars(sa.select(WebhookEvent.id).where(
            WebhookEvent.integration_id == integration_id, WebhookEvent.status == "received").order_by(WebhookEvent.id)))
        if not ids:
            return None
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.id.in_(ids)).values(next_attempt_at=None))
        session.commit()
    return talk_processing.process_event(services, ids[0])


def retry_until_settled(services, integration_id: int, rounds: int = talk_processing.MAX_ATTEMPTS) -> list[str]:
    outcomes = []
    for _ in range(rounds):
        outcome = process_due(services, integration_id)
        if outcome is None:
            break
        outcomes.append(outcome.status)
    return outcomes


def events(services, integration_id: int) -> list[WebhookEvent]:
    with services.session_factory() as session:
        return list(session.scalars(sa.select(WebhookEvent).where(WebhookEvent.integration_id == integration_id)
                                    .order_by(WebhookEvent.id)))


def test_5xx_answers_are_retried_with_backoff_until_every_talk_is_recorded_once(app, client, api, amo, services):
    setup = connected_integration(client, api, amo)
    amo.configure(error_rate=1.0, error_status=500)
    talks = open_and_close(amo, setup, 6)

    outcome = process_due(services, setup.integration_id)
    assert outcome.status == "retry" and "500" in outcome.error
    waiting = events(services, setup.integration_id)
    assert {e.status for e in waiting} == {"received"} and all(e.next_attempt_at is not None for e in waiting)
    assert all("500" in (e.error or "") for e in waiting)
    shown = client.get(f"/api/v1/integrations/{setup.integration_id}", headers=api).get_json()
    assert "500" in (shown["last_error"] or "")  # the admin sees why nothing arrives yet
    assert client.get("/api/v1/requests", headers=api).get_json()["data"] == []

    # amoCRM half-recovers: 30 % of calls still fail, with another 5xx.
    amo.configure(error_rate=0.3, error_status=502, random_seed=11)
    outcomes = retry_until_settled(services, setup.integration_id)
    assert outcomes[-1] == "done"
    assert_each_closed_talk_recorded_once(services, setup.integration_id, talks)
    shown = client.get(f"/api/v1/integrations/{setup.integration_id}", headers=api).get_json()
    assert shown["last_error"] is None


def test_429_with_an_html_page_slows_down_instead_of_failing(app, client, api, amo, services):
    setup = connected_integration(client, api, amo)
    # amoCRM counting tighter than we do, and answering 429 with a web page instead of JSON.
    amo.configure(rate_limit=1, rate_window=1.0, rate_limit_body="html", retry_after=1)
    talks = open_and_close(amo, setup, 5)
    amo.state.reset_stats()

    assert retry_until_settled(services, setup.integration_id) == ["done"]
    stats = amo.stats()
    assert stats["responses_429"] >= 1, "the sandbox did refuse a call"
    assert stats["responses_403_blocked"] == 0
    assert_each_closed_talk_recorded_once(services, setup.integration_id, talks)


@pytest.fixture
def impatient_app(db_url, tmp_path, live):
    """The app with a 0.5 s amoCRM timeout, so a hanging call fails fast."""
    app = make_app(db_url, tmp_path, public_url=live.url, amocrm_timeout_seconds=0.5)
    live.app = app
    yield app
    dispose(app)


def test_amocrm_calls_that_hang_time_out_and_are_retried(impatient_app, amo):
    from core.access.accounts import ensure_first_account
    from tests.helpers.apps import api_headers_for

    services = impatient_app.extensions["chatsource.services"]
    with services.session_factory() as session:
        account_id = ensure_first_account(session).id
        session.commit()
    client, api = impatient_app.test_client(), api_headers_for(impatient_app, account_id)
    setup = connected_integration(client, api, amo)
    amo.configure(timeout_paths=["/api/v4/leads"], hang_ms=1500)  # contacts answer, leads hang
    talks = open_and_close(amo, setup, 4)

    outcome = process_due(services, setup.integration_id)
    assert outcome.status == "retry" and "timed out" in outcome.error
    assert {e.status for e in events(services, setup.integration_id)} == {"received"}

    amo.configure(timeout_paths=[])
    assert retry_until_settled(services, setup.integration_id) == ["done"]
    assert_each_closed_talk_recorded_once(services, setup.integration_id, talks)


def test_revoked_authorisation_parks_the_talks_until_reconnected(app, client, api, amo, services):
    setup = connected_integration(client, api, amo)
    amo.state.revoke()  # the admin removed our integration in amoCRM
    talks = open_and_close(amo, setup, 3)

    assert process_due(services, setup.integration_id).status == "parked"
    shown = client.get(f"/api/v1/integrations/{setup.integration_id}", headers=api).get_json()
    assert shown["status"] == "needs_reauth"
    # More chats close while nobody has reconnected: stored, answered 200, kept parked.
    later = open_and_close(amo, setup, 2, prefix="Позже")
    assert delivery_codes(amo, later) == [200, 200]
    assert {e.status for e in events(services, setup.integration_id)} == {"parked"}
    assert client.get("/api/v1/requests", headers=api).get_json()["data"] == []

    page = connect_through_oauth(client, api, setup.integration_id)
    assert page.status_code == 200 and 'data-result="connected"' in page.text
    drain(app)
    assert_each_closed_talk_recorded_once(services, setup.integration_id, talks + later)
    with services.session_factory() as session:
        assert session.get(Integration, setup.integration_id).status == "connected"
