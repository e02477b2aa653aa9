"""POST /t/collect with event messenger_click: the click on the chat button's messenger icon."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.models import MessengerClick, VisitorSession
from tests.helpers.tracking_http import LANDING, ORIGIN, send, shop_site


@pytest.fixture
def site(client, api):
    return shop_site(client, api)


def clicks(app) -> list[MessengerClick]:
    with app.extensions["chatsource.services"].session_factory() as db:
        return list(db.scalars(sa.select(MessengerClick).order_by(MessengerClick.id)))


def test_a_click_of_a_live_session_is_stored_and_answered_with_cors(app, client, site):
    view = send(client, site["site_key"], {"url": LANDING}).get_json()
    body = {"event": "messenger_click", "url": LANDING, "visitor_id": view["visitor_id"],
            "session_id": view["session_id"], "service": "telegram", "link": "https://t.me/shop"}
    response = send(client, site["site_key"], body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"tracked": True, "visitor_id": view["visitor_id"], "session_id": view["session_id"],
                                   "new_session": False}
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN and response.headers["Cache-Control"] == "no-store"
    [click] = clicks(app)
    assert (click.session_id, click.service, click.channel, click.site_id) == (view["session_id"], "telegram", "telegram",
                                                                               site["id"])
    # An unknown service name is read by the link it opens.
    send(client, site["site_key"], {**body, "service": "tgbutton", "link": "https://wa.me/7999"})
    assert clicks(app)[-1].channel == "whatsapp"


def test_a_click_without_a_session_starts_none_and_stores_nothing(app, client, site):
    response = send(client, site["site_key"], {"event": "messenger_click", "url": LANDING, "service": "telegram",
                                               "visitor_id": "visitor-never-seen"})
    assert response.status_code == 200 and response.get_json()["tracked"] is False
    assert clicks(app) == []
    with app.extensions["chatsource.services"].session_factory() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(VisitorSession)) == 0


def test_a_click_without_its_service_is_a_clear_400(client, site):
    response = send(client, site["site_key"], {"event": "messenger_click", "url": LANDING})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid" and error["field"] == "service" and "onButtonClick" in error["message"]


def test_a_click_from_a_foreign_page_is_refused(app, client, site):
    response = send(client, site["site_key"], {"event": "messenger_click", "url": LANDING, "service": "telegram"},
                    origin="https://evil.example.com")
    assert response.status_code == 403 and clicks(app) == []
