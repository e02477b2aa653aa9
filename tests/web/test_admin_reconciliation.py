"""The integration page's «Сверка с amoCRM» block: last reconciliation and what it found, the
backfill form («Загрузить пропущенные беседы за период») with its errors and progress, and the
reconciliation that «register the webhook again» starts."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dramatiq
import pytest

from core.platform.db import utcnow
from core.platform.time_zones import account_time_zone
from tests.helpers.admin_helpers import post_form, signed_in, text
from tests.helpers.apps import drain
from tests.helpers.integration_screen import connected, setup_url

pytestmark = pytest.mark.e2e


@pytest.fixture
def admin(app):
    return signed_in(app)


def switched_on(app, integration_id) -> None:
    """As «Активен» + «Сохранить» would (their own rules are tested in test_admin_integrations)."""
    from core.models import Integration

    with app.extensions["chatsource.services"].session_factory() as session:
        session.get(Integration, integration_id).is_active = True
        session.commit()


def queued_actors(app) -> list[str]:
    broker = app.extensions["chatsource.broker"]
    return [dramatiq.Message.decode(data).actor_name for data in list(broker.queues["maintenance"].queue)]


def test_the_block_shows_the_last_reconciliation_and_a_backfill_runs_from_the_form(admin, app, amo, services):
    row = connected(admin, amo)
    page = text(admin.get(setup_url(row)))
    assert "Сверка с amoCRM" in page and "Последняя сверка" in page and "ещё не было" in page
    assert "Загрузить пропущенные беседы за период" in page and 'data-testid="backfill-runs"' not in page

    with services.session_factory() as session:
        from core.models import Integration

        integration = session.get(Integration, row.id)
        integration.reconciled_at, integration.reconcile_recovered_last = utcnow(), 2
        integration.reconcile_recovered_total, integration.reconcile_unreadable_total = 5, 1
        session.commit()
    page = text(admin.get(setup_url(row)))
    assert "в последний раз 2, всего 5" in page and "ещё не было" not in page
    assert 'data-testid="reconcile-unreadable" class="text-warning">1<' in page

    # The form's days are the account's (Moscow's): at 21:00–24:00 UTC the UTC date is yesterday there.
    with services.session_factory() as session:
        zone = ZoneInfo(account_time_zone(session, row.account_id))
    today = datetime.now(zone).date().isoformat()
    refused = post_form(admin, f"/admin/integrations/{row.id}/backfill", {"date_from": today}, page_url=setup_url(row))
    assert refused.status_code == 422 and "Сначала включите интеграцию" in text(refused)
    switched_on(app, row.id)
    app.extensions["chatsource.broker"].flush_all()
    amo.disable_webhooks()
    chat = amo.state.create_chat(contact={"name": "Ольга"}, origin="telegram")
    amo.state.close_talk(chat["talk_id"], force_close=True, control=True)
    response = post_form(admin, f"/admin/integrations/{row.id}/backfill", {"date_from": today, "date_till": today},
                         page_url=setup_url(row))
    assert response.status_code == 302 and response.headers["Location"].endswith("#reconcile")
    assert queued_actors(app) == ["chatsource.run_backfill"]
    page = text(admin.get(setup_url(row)))
    assert "Пропущенные беседы загружаются из amoCRM" in page
    assert 'data-testid="backfill-runs"' in page and 'data-finished="false"' in page
    drain(app)
    [run] = admin.get(f"/admin/integrations/{row.id}/backfills").get_json()["data"]
    assert (run["status"], run["recovered"], run["finished"]) == ("done", 1, True)
    assert 'data-finished="true"' in text(admin.get(setup_url(row)))


def test_backfill_form_errors_are_shown_in_russian(admin, app, amo):
    row = connected(admin, amo)
    switched_on(app, row.id)
    today = utcnow().date()
    for data, message in (
        ({"date_from": ""}, "Укажите первый день периода."),
        ({"date_from": "24.11.2026"}, "Укажите дату в виде 2026-11-24."),
        ({"date_from": (today + timedelta(days=2)).isoformat()}, "Дата начала ещё не наступила."),
        ({"date_from": (today - timedelta(days=100)).isoformat()}, "Период длиннее 90 дней"),
    ):
        response = post_form(admin, f"/admin/integrations/{row.id}/backfill", data, page_url=setup_url(row))
        assert response.status_code == 422 and message in text(response), (data, text(response)[:200])
    assert admin.post(f"/admin/integrations/{row.id}/backfill", data={"date_from": today.isoformat()}).status_code == 400  # no CSRF


def test_registering_the_webhook_again_reconciles_at_once(admin, app, amo):
    row = connected(admin, amo)
    app.extensions["chatsource.broker"].flush_all()
    response = post_form(admin, f"/admin/integrations/{row.id}/webhook", {}, page_url=setup_url(row))
    assert response.status_code == 302
    assert queued_actors(app) == ["chatsource.reconcile_integration"]


def test_another_accounts_backfills_are_not_found(admin, app, amo):
    row = connected(admin, amo)
    other = signed_in(app, email="other@example.ru", account_name="Другой клиент")
    assert other.get(f"/admin/integrations/{row.id}/backfills").status_code == 404
