"""The same hostile values in a real browser: every screen is rendered and its scripts run (the dashboard
builds its charts and legends from JSON), and none of the values becomes an element or runs."""
from __future__ import annotations

import pytest

from tests.helpers.admin_helpers import PASSWORD, make_user
from tests.helpers.hostile_data import admin_pages, seed_hostile

pytestmark = pytest.mark.e2e


@pytest.fixture
def hostile(app, services, account_id):
    with services.session_factory() as session:
        data = seed_hostile(session, services, account_id)
        session.commit()
    make_user(app, "marketing@example.ru", PASSWORD)
    return data


def test_no_hostile_value_becomes_markup_in_the_browser(chromium, app, live, hostile):
    context = chromium.new_context(locale="ru-RU")
    context.set_default_timeout(10_000)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(live.url + "/admin/")
        page.fill("#email", "marketing@example.ru")
        page.fill("#password", PASSWORD)
        page.click("[data-testid=login]")
        page.wait_for_url(live.url + "/admin/")
        for name, path in admin_pages(hostile).items():
            page.goto(live.url + path)
            page.wait_for_load_state("load")
            page.hover("body")  # an injected onmouseover would fire here
            injected = page.evaluate("""() => ({
                flag: window.__xss === undefined ? null : window.__xss,
                images: document.querySelectorAll('img[src="x"]').length,
                scripts: [...document.scripts].filter(s => s.textContent.includes('window.__xss')
                                                        && s.type !== 'application/json').length,
                handlers: document.querySelectorAll('[onmouseover], [onerror]').length,
            })""")
            assert injected == {"flag": None, "images": 0, "scripts": 0, "handlers": 0}, name
        # The values are there, as text: the report shows the contact's name literally.
        page.goto(live.url + "/admin/requests/")
        assert '"><img src=x onerror="window.__xss=1">' in page.inner_text("body")
    finally:
        context.close()
    assert dialogs == []
