"""The admin under its Content-Security-Policy (`script-src 'self'`) in a real browser: the Flask-Admin
controls whose inline `onclick=` moved to admin.js still work, and the browser reports no violation."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.access.accounts import ensure_first_account
from core.models import Site, WebhookEvent
from tests.helpers.admin_helpers import PASSWORD, make_user
from tests.helpers.report_data import add_event, seed_catalog

pytestmark = pytest.mark.e2e


@pytest.fixture
def seeded(app, services):
    with services.session_factory() as session:
        account_id = ensure_first_account(session).id
        catalog = seed_catalog(session, services, account_id)
        event_id = add_event(session, account_id, catalog.integration_id, status="failed").id
        session.commit()
    make_user(app, "admin@example.ru", PASSWORD, account_id=account_id)
    return catalog, event_id


def test_flask_admin_controls_work_under_the_csp(chromium, app, live, services, seeded):
    catalog, event_id = seeded
    context = chromium.new_context(locale="ru-RU")
    context.set_default_timeout(10_000)
    page = context.new_page()
    violations, errors = [], []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    dialogs = []

    def answer(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss() if len(dialogs) == 1 else dialog.accept()

    page.on("dialog", answer)
    try:
        page.goto(live.url + "/admin/sites/")
        page.fill("#email", "admin@example.ru")
        page.fill("#password", PASSWORD)
        page.click("[data-testid=login]")
        page.wait_for_url(live.url + "/admin/sites/")

        # Row delete: the confirmation comes from admin.js; «Cancel» keeps the row, «OK» deletes it.
        delete = f"form[action*='/delete/'] input[name=id][value='{catalog.other_site_id}'] ~ button"
        page.click(delete)
        with services.session_factory() as session:
            assert session.get(Site, catalog.other_site_id) is not None
        with page.expect_navigation():
            page.click(delete)
        with services.session_factory() as session:
            assert session.get(Site, catalog.other_site_id) is None
        assert dialogs and all("удалить" in d for d in dialogs)

        # «With selected → Replay» on the events list: the action item has no onclick any more.
        page.goto(live.url + "/admin/events/")
        page.check(f"input.action-checkbox[value='{event_id}']")
        page.locator(".dropdown-menu:has([data-cs-action=replay])").locator("xpath=preceding-sibling::a[1]").click()
        with page.expect_navigation():
            page.click("[data-cs-action=replay]")
        with services.session_factory() as session:
            assert session.scalar(sa.select(WebhookEvent.status).where(WebhookEvent.id == event_id)) != "failed"

        page.goto(live.url + "/admin/")
    finally:
        context.close()
    assert violations == [], violations
    assert errors == [], errors
