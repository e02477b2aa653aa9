"""A returning visitor's next page — on PostgreSQL answered in front of Flask by one statement
(web/collect_fast.py) — keeps every rule of `POST /t/collect`: the site's domain only, no session of
another site or account, bots not counted, the answer and headers the same as the general way."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.access.accounts import create_account
from core.models import VisitorSession
from core.tracking.catalog import create_site
from core.tracking.collect import origin_allowed, origin_domains
from tests.helpers.tracking_http import CHROME, LANDING, ORIGIN, send, shop_site

NEXT_PAGE = "https://www.shop.example.ru/catalog/sofas/"


@pytest.fixture
def visitor(client, api):
    site = shop_site(client, api)
    first = send(client, site["site_key"], {"url": LANDING}).get_json()
    assert first["new_session"] is True
    return site, first


def _session(app, session_id) -> tuple:
    with app.extensions["chatsource.services"].session_factory() as session:
        vs = session.get(VisitorSession, session_id)
        return vs.last_activity_at, vs.page_views


def test_the_next_page_continues_the_session_with_the_same_answer(app, client, visitor):
    site, first = visitor
    before = _session(app, first["session_id"])
    response = send(client, site["site_key"], {"url": NEXT_PAGE, "visitor_id": first["visitor_id"]})
    assert response.status_code == 200
    assert response.get_json() == {"session_id": first["session_id"], "visitor_id": first["visitor_id"],
                                   "new_session": False, "tracked": True, "idle_timeout": 1800}
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN and "Origin" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store" and "Set-Cookie" not in response.headers
    after = _session(app, first["session_id"])
    assert after[0] > before[0] and after[1] == before[1] + 1
    # A ping extends it without a page view; the answer never grants CORS without an Origin.
    ping = send(client, site["site_key"], {"url": NEXT_PAGE, "visitor_id": first["visitor_id"], "event": "ping"},
                origin=None, Referer=NEXT_PAGE)
    assert ping.status_code == 200 and ping.get_json()["session_id"] == first["session_id"]
    assert "Access-Control-Allow-Origin" not in ping.headers
    assert _session(app, first["session_id"])[1] == after[1]


@pytest.mark.parametrize("origin", ["https://evil-shop.example.ru", "https://shop.example.ru.evil.com", "null",
                                    "https://example.ru", "ftp://shop.example.ru"])
def test_a_foreign_page_cannot_extend_a_live_session(app, client, visitor, origin):
    site, first = visitor
    before = _session(app, first["session_id"])
    response = send(client, site["site_key"], {"url": NEXT_PAGE, "visitor_id": first["visitor_id"],
                                               "session_id": first["session_id"]}, origin=origin)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert _session(app, first["session_id"]) == before


def test_another_accounts_site_never_touches_the_session(app, client, visitor):
    """The visitor id and session id are the script's to send: on another account's site of the same
    domain they start that site's own session and leave this one alone."""
    site, first = visitor
    with app.extensions["chatsource.services"].session_factory() as session:
        other = create_site(session, create_account(session, "Другой клиент").id, "Копия", "shop.example.ru")
        session.commit()
        other_key, other_account = other.site_key, other.account_id
    before = _session(app, first["session_id"])
    response = send(client, other_key, {"url": NEXT_PAGE, "visitor_id": first["visitor_id"],
                                        "session_id": first["session_id"]})
    data = response.get_json()
    assert response.status_code == 200 and data["new_session"] is True and data["session_id"] != first["session_id"]
    assert _session(app, first["session_id"]) == before
    with app.extensions["chatsource.services"].session_factory() as session:
        assert session.get(VisitorSession, data["session_id"]).account_id == other_account


def test_a_bot_on_a_live_session_is_not_counted(app, client, visitor):
    site, first = visitor
    before = _session(app, first["session_id"])
    response = send(client, site["site_key"], {"url": NEXT_PAGE, "visitor_id": first["visitor_id"]},
                    ua="Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)")
    assert response.status_code == 200 and response.get_json()["tracked"] is False
    assert _session(app, first["session_id"]) == before


def test_bad_input_on_a_returning_visit_still_says_why(client, visitor):
    site, first = visitor
    response = send(client, site["site_key"], {"url": "javascript:alert(1)", "visitor_id": first["visitor_id"]})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "url"
    response = send(client, site["site_key"], raw='{"site_key": "%s", "url": [[[' % site["site_key"])
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_json"


def test_the_pages_of_an_ended_session_start_a_new_one(app, client, visitor):
    site, first = visitor
    with app.extensions["chatsource.services"].session_factory() as session:
        vs = session.get(VisitorSession, first["session_id"])
        vs.last_activity_at -= timedelta(minutes=31)  # as if the visitor had left half an hour ago
        session.commit()
    data = send(client, site["site_key"], {"url": NEXT_PAGE, "visitor_id": first["visitor_id"],
                                           "session_id": first["session_id"]}, ua=CHROME).get_json()
    assert data["new_session"] is True and data["session_id"] != first["session_id"]


label = st.text("abcxyz-", min_size=1, max_size=4)
host = st.lists(label, min_size=1, max_size=4).map(".".join)


@given(domain=host, origin_host=host, www=st.booleans(), scheme=st.sampled_from(["https", "http", "ftp"]))
def test_the_one_statement_origin_rule_never_admits_more_than_origin_allowed(domain, origin_host, www, scheme):
    """The statement matches the site's stored domain against `origin_domains(origin)`: whatever it
    admits, `origin_allowed` (the general way's rule) admits too."""
    origin = f"{scheme}://{'www.' if www else ''}{origin_host}"
    if domain in origin_domains(origin):
        assert origin_allowed(domain, origin)
    if origin_allowed(domain, origin) and not domain.startswith("www."):
        assert domain in origin_domains(origin)  # a normalised domain is never sent the general way for nothing
