"""«Сверка с amoCRM» in a real browser: a chat closed while amoCRM had the hook disabled is loaded
with «Загрузить пропущенные беседы за период», and the progress row finishes by itself (polling)."""
from __future__ import annotations

import pytest

from core.integrations import settings as integrations
from core.models import Integration
from core.platform.db import utcnow
from tests.helpers.admin_helpers import PASSWORD, make_user
from tests.helpers.apps import drain

pytestmark = pytest.mark.e2e


def test_a_backfill_from_the_integration_page_shows_its_progress(chromium, screenshots, app, live, amo):
    _, account_id = make_user(app, "admin@example.ru", PASSWORD)
    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        row = integrations.create_integration(session, services, account_id, {"name": "Сверка"})
        session.commit()
        integration_id = row.id
    context = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script("window.open = function () { return null; };")  # connect in the same window
    page = context.new_page()
    try:
        page.goto(f"{live.url}/login?next=/admin/integrations/{integration_id}/")
        page.fill("#email", "admin@example.ru")
        page.fill("#password", PASSWORD)
        page.click("[data-testid=login]")
        page.fill("#amocrm_url", amo.url)
        page.fill("#token_url", amo.url + "/oauth2/access_token")
        page.click("[data-testid=connect]")
        page.wait_for_selector("[data-testid=connected-account]")
        assert "ещё не было" in page.inner_text("[data-testid=reconciled-at]")

        today = utcnow().date().isoformat()
        page.fill("[data-testid=backfill-date_from]", today)
        page.click("[data-testid=backfill-submit]")
        assert "Сначала включите интеграцию" in page.inner_text("[data-testid=backfill-problem]")
        with services.session_factory() as session:  # as «Активен» + «Сохранить» (tested in test_admin_setup)
            session.get(Integration, integration_id).is_active = True
            session.commit()
        app.extensions["chatsource.broker"].flush_all()  # the reconciliation the connect queued: the backfill finds it all

        amo.disable_webhooks()
        chat = amo.state.create_chat(contact={"name": "Ольга"}, origin="telegram")
        amo.state.close_talk(chat["talk_id"], force_close=True, control=True)
        page.fill("[data-testid=backfill-date_from]", today)
        page.click("[data-testid=backfill-submit]")
        page.wait_for_selector("[data-testid=backfill-runs] tr[data-finished=false]")
        assert "Пропущенные беседы загружаются из amoCRM" in page.content()
        drain(app)  # the worker runs the backfill; the page is not reloaded
        page.wait_for_selector("[data-testid=backfill-runs] tr[data-finished=true]")
        assert page.inner_text("[data-testid=backfill-runs] [data-field=recovered]") == "1"
        assert "100%" in page.inner_text("[data-testid=backfill-runs] .progress-bar")
        page.locator("#reconcile").scroll_into_view_if_needed()
        screenshots.prefix = "reconcile-"
        screenshots(page, "backfill-done")
    finally:
        context.close()
