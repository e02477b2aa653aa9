"""The click window on the integration page (step 5) and in the Data API: RU/EN labels, saved with
«Сохранить», a bad value is a form error (422) with the reason, never a 500."""
from __future__ import annotations

import pytest

from tests.helpers.admin_helpers import signed_in, text
from tests.helpers.integration_screen import connected, integration, save, setup_url

pytestmark = pytest.mark.e2e


@pytest.fixture
def admin(app):
    return signed_in(app)


def test_the_click_window_is_shown_saved_and_checked(admin, app, amo):
    row = connected(admin, amo)
    page = text(admin.get(setup_url(row)))
    assert "Беседы в мессенджерах по клику на кнопку чата на сайте" in page
    assert 'name="click_window_minutes"' in page and 'value="30"' in page

    assert save(admin, row, click_window_minutes="45").status_code == 302
    assert integration(app, row.id).click_window_minutes == 45
    assert save(admin, row, click_window_minutes="0").status_code == 302
    assert integration(app, row.id).click_window_minutes == 0  # switched off

    for bad, message in (("abc", "Укажите окно клика в целых минутах (0 — выключить)."),
                         ("99999", "Окно клика — целое число минут от 0 (выключено) до 1440.")):
        response = save(admin, row, click_window_minutes=bad)
        assert response.status_code == 422 and message in text(response)
    assert integration(app, row.id).click_window_minutes == 0

    admin.get("/lang/en")
    english = text(admin.get(setup_url(row)))
    assert "Messenger chats by the click on the site" in english and "Беседы в мессенджерах" not in english


def test_the_click_window_in_the_data_api(client, api, amo):
    from tests.helpers.pipeline_helpers import connected_integration

    setup = connected_integration(client, api, amo)
    url = f"/api/v1/integrations/{setup.integration_id}"
    assert client.get(url, headers=api).get_json()["click_window_minutes"] == 30
    assert client.patch(url, headers=api, json={"click_window_minutes": 10}).get_json()["click_window_minutes"] == 10
    for bad in (-1, 1441, "30", True, None):
        response = client.patch(url, headers=api, json={"click_window_minutes": bad})
        assert response.status_code in (400, 422), response.get_json()
        assert "click_window_minutes" in str(response.get_json())
    assert client.get(url, headers=api).get_json()["click_window_minutes"] == 10
