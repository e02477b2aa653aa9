"""Every POST of the integration page needs the page's CSRF token: a forged form from another site
(connect, register the webhook, disconnect, check, save) is refused and changes nothing."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.models import Integration
from tests.helpers.admin_helpers import signed_in, text
from tests.helpers.report_data import seed_catalog

ACTIONS = ("connect", "webhook", "disconnect", "check", "save")


@pytest.fixture
def connected(app, services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        session.commit()
        return cat.integration_id


def _url(integration_id: int, action: str) -> str:
    return f"/admin/integrations/{integration_id}/" + ("" if action == "save" else action)


def _state(services, integration_id: int) -> tuple:
    with services.session_factory() as session:
        row = session.get(Integration, integration_id)
        return row.name, row.status, row.is_active, row.access_token_enc, row.webhook_registered_at, row.updated_at


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("token", [None, "forged-token"])
def test_a_post_without_the_page_token_is_refused(app, services, connected, action, token):
    admin = signed_in(app)
    before = _state(services, connected)
    data = {"name": "Переименована злоумышленником", "amocrm_url": "https://evil.amocrm.ru",
            "token_url": "https://evil.amocrm.ru/oauth2/access_token", "is_active": "y"}
    if token:
        data["csrf_token"] = token
    response = admin.post(_url(connected, action), data=data)
    assert response.status_code == 400
    assert "CSRF" in text(response) or "csrf" in text(response).lower()
    assert _state(services, connected) == before


def test_the_same_post_with_the_page_token_goes_through(app, services, connected):
    """The refusal above is the token's doing: with it, «Отключить» does disconnect."""
    from tests.helpers.admin_helpers import csrf_from

    admin = signed_in(app)
    token = csrf_from(text(admin.get(_url(connected, "save"))))
    response = admin.post(_url(connected, "disconnect"), data={"csrf_token": token})
    assert response.status_code == 302
    with services.session_factory() as session:
        assert session.scalar(sa.select(Integration.status).where(Integration.id == connected)) != "connected"
