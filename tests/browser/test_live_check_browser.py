"""«Проверить на тестовом обращении» and «Период повторности» in a real browser, against the amoCRM
sandbox: the stages of a test chat appear on the integration page by themselves (polling, no reload),
each with its time, ending in a link to the request; a second chat of the same contact shows as
repeat in Raw data, and changing the window recomputes it with the progress shown."""
from __future__ import annotations

import pytest

from tests.helpers import http as loopback
from tests.helpers.admin_helpers import PASSWORD, make_user
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, post

pytestmark = pytest.mark.e2e


def test_a_test_chat_is_followed_live_and_a_second_one_is_repeat(chromium, screenshots, app, live, amo, client, api):
    setup = connected_integration(client, api, amo)
    make_user(app, "admin@example.ru", PASSWORD)
    visit = post(client, "/api/v1/sessions", api, {"site_id": setup.site_id, "entrance_page": "https://shop.example.ru/sofa"})
    context = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    screenshots.prefix = "live-check-"
    try:
        page.goto(f"{live.url}/login?next=/admin/integrations/{setup.integration_id}/")
        page.fill("#email", "admin@example.ru")
        page.fill("#password", PASSWORD)
        page.click("[data-testid=login]")
        page.click("[data-testid=live-check-start]")
        page.wait_for_selector("[data-testid=live-check][data-status=waiting]")
        assert "Ждём следующую беседу" in page.inner_text("[data-testid=live-status]")
        screenshots(page, "waiting")

        # The visitor writes in the site chat with our session in the lead's field, and the manager closes it.
        chat = loopback.post(f"{amo.url}/_sandbox/chats", timeout=10, json={
            "contact": {"name": "Ольга Иванова", "phones": ["+7 916 555-12-34"]},
            "lead": {"name": "Заявка из чата", "custom_fields": {str(setup.session_field_id): str(visit["id"])}},
            "origin": "onlinechat"}).json()
        assert loopback.post(f"{amo.url}/_sandbox/talks/{chat['talk_id']}/close", timeout=10).status_code == 200
        page.wait_for_selector("[data-stage=webhook][data-state=done]")  # the page was not reloaded
        assert page.get_attribute("[data-stage=fetched]", "data-state") == "waiting"
        drain(app)
        page.wait_for_selector("[data-testid=live-check][data-status=done]")
        states = {li.get_attribute("data-stage"): li.get_attribute("data-state")
                  for li in page.locator("[data-testid=live-stages] li").all()}
        assert set(states.values()) == {"done"} and len(states) == 6
        assert page.locator("[data-testid=stage-time]").count() == 6
        assert f"сессия {visit['id']}" in page.inner_text("[data-stage=session_field]")
        assert "Онлайн-чат на сайте" in page.inner_text("[data-stage=webhook]")  # the channel in the page's language
        page.locator("#live-check").scroll_into_view_if_needed()
        screenshots(page, "done")
        page.click("[data-testid=live-request-link]")
        page.wait_for_selector("[data-testid=report-table]")
        assert "Ольга Иванова" in page.inner_text("[data-testid=report-table]")

        # The same contact writes again: a repeat request pointing at the first.
        again = loopback.post(f"{amo.url}/_sandbox/chats", timeout=10, json={
            "contact_id": chat["contact_id"], "lead": None, "origin": "telegram"}).json()
        loopback.post(f"{amo.url}/_sandbox/talks/{again['talk_id']}/close", timeout=10)
        drain(app)
        page.goto(f"{live.url}/admin/requests/?is_repeat=true")
        assert page.locator("[data-testid=report-table] tbody tr").count() == 1
        assert page.locator("[data-repeat=true]").count() == 1
        page.wait_for_selector("[data-testid=first-request-link]")
        screenshots(page, "repeat")

        # Changing the window: refused out of range by the form, then recomputed by the worker with the progress shown.
        page.goto(f"{live.url}/admin/requests/")
        page.fill("#repeat-window-days", "0")
        page.click("[data-testid=repeat-window-save]")  # the browser refuses 0 (min=1): nothing is sent
        assert page.input_value("#repeat-window-days") == "0"
        page.fill("#repeat-window-days", "7")
        page.click("[data-testid=repeat-window-save]")
        page.wait_for_selector("[data-testid=repeat-progress][data-status=queued]")
        drain(app)
        page.wait_for_selector("[data-testid=repeat-progress][data-status=done]")  # polled, not reloaded
        assert "пересчитаны для 7 дн." in page.inner_text("[data-testid=repeat-progress]")
    except Exception:
        page.screenshot(path=str(screenshots.folder / "live-check-failed.png"), full_page=True)
        raise
    finally:
        context.close()
    assert errors == []
