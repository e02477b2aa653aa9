"""The tracking code's HTTP side: GET /t/<site_key>.js and POST /t/collect (CORS, errors, caching)."""
from __future__ import annotations

import gzip

import pytest

from core.models import VisitorSession
from tests.helpers.tracking_http import LANDING, ORIGIN, send, shop_site


@pytest.fixture
def site(client, api):
    return shop_site(client, api)


def test_script_is_the_sites_own_small_cacheable_and_versioned(client, site, app):
    response = client.get(f"/t/{site['site_key']}.js")
    assert response.status_code == 200 and response.mimetype == "application/javascript"
    body = response.get_data(as_text=True)
    assert f'"k":"{site["site_key"]}"' in body and '"d":"shop.example.ru"' in body
    public_url = app.extensions["chatsource.settings"].public_url
    assert f'"e":"{public_url}/t/collect"' in body
    assert "//" not in body.split("\n", 1)[1].replace("://", "")  # comment lines stripped
    assert "max-age=3600" in response.headers["Cache-Control"] and response.headers["ETag"]
    assert body.startswith("/*! Chatsource ")
    assert "Set-Cookie" not in response.headers
    # Revalidation is a 304 without a body.
    again = client.get(f"/t/{site['site_key']}.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_script_is_gzipped_within_the_1500_byte_budget(client, site):
    response = client.get(f"/t/{site['site_key']}.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in response.headers["Vary"]
    assert len(response.data) <= 1500, f"the tracking script is {len(response.data)} bytes gzipped; the budget is 1,500"
    assert gzip.decompress(response.data).decode().startswith("/*! Chatsource ")


def test_unknown_site_key_is_404(client):
    assert client.get("/t/nosuchkey.js").status_code == 404
    response = send(client, "nosuchkey", {"url": LANDING})
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "unknown_site"


def test_a_beacon_page_view_creates_the_attributed_session(client, api, site, app):
    response = send(client, site["site_key"], {"url": LANDING, "referrer": "https://yandex.ru/", "title": "Диваны"})
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["tracked"] is True and data["new_session"] is True and data["visitor_id"]
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN and "Origin" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers  # the visitor id is the site's first-party cookie, set by the script
    session = client.get(f"/api/v1/sessions/{data['session_id']}", headers=api).get_json()
    assert session["campaign_id"] == site["campaign_id"] and session["channel"] == "paid"
    assert session["visitor_id"] == data["visitor_id"] and session["entrance_page"] == LANDING

    # The next page, sent as application/json, continues it.
    nxt = send(client, site["site_key"], {"url": "https://www.shop.example.ru/catalog", "visitor_id": data["visitor_id"],
                                          "session_id": data["session_id"]}, content_type="application/json")
    assert nxt.status_code == 200 and nxt.get_json()["session_id"] == data["session_id"]
    with app.extensions["chatsource.services"].session_factory() as db:
        vs = db.get(VisitorSession, data["session_id"])
        assert (vs.page_views, vs.entrance_title) == (2, "Диваны") and vs.ip_hash and "127.0.0.1" not in vs.ip_hash


def test_a_foreign_origin_is_refused_without_cors_and_nothing_is_stored(client, api, site, app):
    for origin in ("https://evil.example.com", "https://shop.example.ru.evil.com", "null"):
        response = send(client, site["site_key"], {"url": LANDING}, origin=origin)
        assert response.status_code == 403, origin
        assert response.get_json()["error"]["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in response.headers
    # No Origin and no Referer (not a browser page): refused too, with the reason.
    response = send(client, site["site_key"], {"url": LANDING}, origin=None)
    assert response.status_code == 403 and "shop.example.ru" in response.get_json()["error"]["message"]
    # A Referer from the site is enough when a browser sends no Origin.
    assert send(client, site["site_key"], {"url": LANDING}, origin=None, Referer=LANDING).status_code == 200
    with app.extensions["chatsource.services"].session_factory() as db:
        assert db.query(VisitorSession).count() == 1


def test_preflight_allows_the_sites_origins_only(client, site):
    key = site["site_key"]
    ok = client.options(f"/t/collect?site_key={key}", headers={
        "Origin": "https://m.shop.example.ru", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://m.shop.example.ru"
    assert "POST" in ok.headers["Access-Control-Allow-Methods"] and "Content-Type" in ok.headers["Access-Control-Allow-Headers"]
    bad = client.options(f"/t/collect?site_key={key}", headers={"Origin": "https://evil.example.com",
                                                                 "Access-Control-Request-Method": "POST"})
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers
    assert client.options("/t/collect?site_key=nosuchkey", headers={"Origin": ORIGIN}).status_code == 404


@pytest.mark.parametrize("raw, status, code", [
    ("not json", 400, "bad_json"),
    ("[1, 2]", 400, "bad_json"),
    ("", 400, "bad_json"),
    ('{"site_key": "%s"}', 400, "invalid"),
    ('{"site_key": "%s", "url": "javascript:alert(1)"}', 400, "invalid"),
    ('{"site_key": "%s", "url": "https://www.shop.example.ru/", "session_id": "x"}', 400, "invalid"),
])
def test_bad_input_is_a_clear_400(client, site, raw, status, code):
    response = send(client, site["site_key"], raw=raw.replace("%s", site["site_key"]))
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]


def test_too_large_a_body_is_413(client, site):
    response = send(client, site["site_key"], {"url": LANDING, "title": "x" * 20000})
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"


def test_bots_get_no_session(client, site, app):
    response = send(client, site["site_key"], {"url": LANDING}, ua="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert response.status_code == 200 and response.get_json()["session_id"] is None
    assert response.get_json()["tracked"] is False
    with app.extensions["chatsource.services"].session_factory() as db:
        assert db.query(VisitorSession).count() == 0


def test_only_post_and_options(client):
    assert client.get("/t/collect").status_code == 405


def test_no_csrf_token_needed(app, site):
    app.config["WTF_CSRF_ENABLED"] = True
    response = send(app.test_client(), site["site_key"], {"url": LANDING})
    assert response.status_code == 200
