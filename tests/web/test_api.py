"""The Data API: auth, errors, validation, and tenancy (a token of account A never sees account B)."""
from __future__ import annotations

from tests.helpers.apps import other_account_headers


def test_no_token_or_a_wrong_one_is_401_json(client):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = client.get("/api/v1/sites", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_sites_sources_campaigns_round_trip(client, api):
    site = client.post("/api/v1/sites", headers=api, json={"name": "Магазин", "domain": "https://www.Shop.example.ru/path"}).get_json()
    assert site["domain"] == "shop.example.ru" and len(site["site_key"]) >= 16
    source = client.post("/api/v1/sources", headers=api, json={"name": "Google", "priority": 5, "conditions": [
        [{"param": "referrer_domain", "op": "contains", "value": "google"}]]})
    assert source.status_code == 201 and source.get_json()["conditions"][0][0]["exclude"] is False
    campaign = client.post("/api/v1/campaigns", headers=api, json={"name": "РК", "site_id": site["id"]})
    assert campaign.status_code == 201
    listing = client.get("/api/v1/campaigns", headers=api).get_json()
    assert listing["total"] == 1 and listing["data"][0]["name"] == "РК"


def test_validation_errors_are_422_naming_the_field(client, api):
    cases = [
        ("/api/v1/sites", {"name": "", "domain": "x.ru"}, "name"),
        ("/api/v1/sites", {"name": "a", "domain": "not a domain"}, "domain"),
        ("/api/v1/sources", {"name": "a", "conditions": [[{"param": "utm_source", "op": "regex", "value": "("}]]}, "conditions"),
        ("/api/v1/campaigns", {"name": "a", "site_id": 999}, "site_id"),
        ("/api/v1/integrations", {"name": "x", "amocrm_url": "https://evil.example.com"}, "amocrm_url"),
    ]
    for path, payload, field in cases:
        response = client.post(path, headers=api, json=payload)
        assert response.status_code == 422, (path, response.get_json())
        assert response.get_json()["error"]["field"] == field


def test_bad_json_and_bad_parameters_are_400(client, api):
    assert client.post("/api/v1/sites", headers=api, data="{", content_type="application/json").status_code == 400
    assert client.post("/api/v1/sites", headers=api, json=[1]).status_code == 400
    assert client.get("/api/v1/requests?limit=abc", headers=api).status_code == 400
    assert client.get("/api/v1/requests?date_from=yesterday", headers=api).status_code == 400
    assert client.get("/api/v1/events?status=weird", headers=api).status_code == 400


def test_activating_too_early_names_what_is_missing(client, api):
    integration = client.post("/api/v1/integrations", headers=api, json={"name": "amo"}).get_json()
    assert integration["amocrm_url"] == "https://YOURDOMAIN.amocrm.ru" and integration["status"] == "new"
    response = client.patch(f"/api/v1/integrations/{integration['id']}", headers=api, json={"is_active": True})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "cannot_activate" and len(error["missing"]) == 3
    connect = client.post(f"/api/v1/integrations/{integration['id']}/connect", headers=api, json={})
    assert connect.status_code == 422 and connect.get_json()["error"]["code"] == "yourdomain"


def test_account_b_cannot_read_or_change_account_a(app, client, api):
    site = client.post("/api/v1/sites", headers=api, json={"name": "A", "domain": "a.ru"}).get_json()
    integration = client.post("/api/v1/integrations", headers=api, json={"name": "A amo"}).get_json()
    session = client.post("/api/v1/sessions", headers=api, json={"site_id": site["id"]}).get_json()
    b = other_account_headers(app)
    assert client.get("/api/v1/sites", headers=b).get_json() == {"data": [], "total": 0}
    assert client.get("/api/v1/integrations", headers=b).get_json()["total"] == 0
    assert client.get(f"/api/v1/integrations/{integration['id']}", headers=b).status_code == 404
    assert client.patch(f"/api/v1/integrations/{integration['id']}", headers=b, json={"name": "mine"}).status_code == 404
    assert client.post(f"/api/v1/integrations/{integration['id']}/connect", headers=b, json={}).status_code == 404
    assert client.get(f"/api/v1/sessions/{session['id']}", headers=b).status_code == 404
    assert client.post("/api/v1/campaigns", headers=b, json={"name": "x", "site_id": site["id"]}).status_code == 422
    assert client.post("/api/v1/sessions", headers=b, json={"site_id": site["id"]}).status_code == 422
    assert client.get("/api/v1/requests", headers=b).get_json()["total"] == 0
    assert client.get("/api/v1/events", headers=b).get_json()["total"] == 0
    # B's own integration cannot point its defaults at A's campaign.
    b_integration = client.post("/api/v1/integrations", headers=b, json={"name": "B amo"}).get_json()
    a_campaign = client.post("/api/v1/campaigns", headers=api, json={"name": "A", "site_id": site["id"]}).get_json()
    response = client.patch(f"/api/v1/integrations/{b_integration['id']}", headers=b, json={"default_campaign_id": a_campaign["id"]})
    assert response.status_code == 422
    assert client.get(f"/api/v1/integrations/{integration['id']}", headers=api).get_json()["name"] == "A amo"


def test_session_created_with_rules_applied(client, api):
    site = client.post("/api/v1/sites", headers=api, json={"name": "S", "domain": "s.ru"}).get_json()
    campaign = client.post("/api/v1/campaigns", headers=api, json={"name": "Директ", "site_id": site["id"], "conditions": [
        [{"param": "utm_source", "op": "eq", "value": "yandex"}, {"param": "utm_medium", "op": "eq", "value": "cpc"}]]}).get_json()
    response = client.post("/api/v1/sessions", headers=api, json={"site_id": site["id"], "utm_source": "yandex", "utm_medium": "cpc",
                                                                  "entrance_page": "https://s.ru/?utm_source=yandex"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["campaign_id"] == campaign["id"] and body["channel"] == "paid"
    assert client.get(f"/api/v1/sessions/{body['id']}", headers=api).get_json()["id"] == body["id"]


def test_healthz(client):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["db"] == "ok" and body["broker"] == "embedded"


def test_an_integration_id_that_cannot_travel_in_a_header_is_refused(client, api):
    """amoCRM's integration ID goes into the X-Client-UUID header of every call to amoCRM: a value
    outside visible ASCII would make each of them fail (found by the OpenAPI fuzz), so it is refused."""
    integration = client.post("/api/v1/integrations", headers=api, json={"name": "amo"}).get_json()
    url = f"/api/v1/integrations/{integration['id']}"
    for bad in ("ид-интеграции", "1f2e 3d4c", "\U000e34f9abc", ""):
        response = client.patch(url, headers=api, json={"client_id": bad})
        assert response.status_code == 422 and response.get_json()["error"]["field"] == "client_id", bad
    good = "1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718"
    assert client.patch(url, headers=api, json={"client_id": f" {good} "}).get_json()["client_id"] == good
