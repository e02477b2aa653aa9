"""One account never sees another's rows through the admin's edit and details pages: the page answers
with a redirect to its own list (or 404), and not one of the other account's values is on any page."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from core.access.accounts import create_account
from core.integrations import settings as integrations
from core.models import WebhookEvent
from core.tracking import catalog
from tests.helpers.admin_helpers import csrf_from, signed_in, text

# Values only the other account has: none of them may appear on a page of ours.
SECRET_VALUES = ("ЧУЖОЙ-САЙТ", "chuzhoy.example", "ЧУЖОЙ-ИСТОЧНИК", "ЧУЖАЯ-РК", "ЧУЖОЙ-AMOCRM", "ЧУЖАЯ-ОШИБКА", "9876543210")


@pytest.fixture
def other(app):
    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        account = create_account(session, "Чужой аккаунт")
        site = catalog.create_site(session, account.id, "ЧУЖОЙ-САЙТ", "chuzhoy.example")
        source = catalog.create_source(session, account.id, "ЧУЖОЙ-ИСТОЧНИК")
        campaign = catalog.create_campaign(session, account.id, "ЧУЖАЯ-РК", site.id)
        integration = integrations.create_integration(session, services, account.id, {"name": "ЧУЖОЙ-AMOCRM"})
        event = WebhookEvent(account_id=account.id, integration_id=integration.id, dedupe_key="x", action="update",
                             talk_id=9876543210, item={"talk_id": "9876543210", "is_in_work": "0", "origin": "telegram"},
                             status="failed", error="ЧУЖАЯ-ОШИБКА")
        session.add(event)
        session.commit()
        return {"sites": site.id, "sources": source.id, "campaigns": campaign.id, "events": event.id,
                "integration": integration.id}


@pytest.fixture
def ours(app):
    return signed_in(app, email="b@example.ru", account_name="Наш аккаунт")


def _no_secret(page: str, where: str) -> None:
    for value in SECRET_VALUES:
        assert value not in page, f"{where} shows {value!r} of another account"


@pytest.mark.parametrize("view,page", [(v, p) for v in ("sites", "sources", "campaigns") for p in ("edit", "details")]
                         + [("events", "details")])  # events have no edit page
def test_edit_and_details_of_another_accounts_row_redirect_to_our_list(ours, other, view, page):
    response = ours.get(f"/admin/{view}/{page}/?id={other[view]}")
    assert response.status_code in (302, 404), response.status_code
    if response.status_code == 302:
        assert urlsplit(response.headers["Location"]).path == f"/admin/{view}/"
    _no_secret(text(response), f"{view}/{page}")
    _no_secret(text(ours.get(f"/admin/{view}/{page}/?id={other[view]}", follow_redirects=True)), f"{view}/{page} (followed)")


def test_the_integration_page_of_another_account_is_404_and_says_nothing(ours, other):
    response = ours.get(f"/admin/integrations/{other['integration']}/")
    assert response.status_code == 404
    _no_secret(text(response), "integration page")


def test_a_forged_edit_of_another_accounts_site_changes_nothing(app, ours, other):
    token = csrf_from(text(ours.get("/admin/sites/")))
    response = ours.post(f"/admin/sites/edit/?id={other['sites']}",
                         data={"name": "Взломан", "domain": "hacked.example", "csrf_token": token})
    assert response.status_code in (302, 404)
    with app.extensions["chatsource.services"].session_factory() as session:
        from core.models import Site

        assert session.get(Site, other["sites"]).name == "ЧУЖОЙ-САЙТ"


@pytest.mark.parametrize("url", ["/admin/", "/admin/sites/", "/admin/sources/", "/admin/campaigns/", "/admin/events/",
                                 "/admin/integrations/", "/admin/requests/", "/admin/replay/"])
def test_no_list_shows_another_accounts_values(ours, other, url):
    response = ours.get(url)
    assert response.status_code == 200
    _no_secret(text(response), url)
