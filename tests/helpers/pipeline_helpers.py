"""Setting up an account and a connected integration the way an admin would, through the Data API
and the real OAuth redirects against the amoCRM sandbox."""
from __future__ import annotations

from dataclasses import dataclass

import requests

from tests.helpers import http as loopback  # loopback only: never through a proxy
from tests.helpers.admin_helpers import confirm_connect


@dataclass
class Setup:
    integration_id: int
    site_id: int
    default_campaign_id: int
    telegram_campaign_id: int
    session_field_id: int
    webhook_url: str


def post(client, path, headers, json):
    response = client.post(path, headers=headers, json=json)
    assert response.status_code in (200, 201, 202), (path, response.status_code, response.get_json())
    return response.get_json()


def connect_through_oauth(client, api, integration_id) -> requests.Response:
    url = post(client, f"/api/v1/integrations/{integration_id}/connect", api, {})["authorize_url"]
    # The sandbox auto-approves and redirects to our callback on the live server; a connect started
    # through the API has no admin session, so a user of the account signs in and confirms it.
    browser = loopback.loopback_session()
    return confirm_connect(client.application, browser, browser.get(url, timeout=20))


def connected_integration(client, api, amo, *, activate=True, name="Сайт amoCRM") -> Setup:
    site = post(client, "/api/v1/sites", api, {"name": "Сайт", "domain": "shop.example.ru"})
    default = post(client, "/api/v1/campaigns", api, {"name": "Без РК", "site_id": site["id"], "priority": 1000})
    telegram = post(client, "/api/v1/campaigns", api, {"name": "Telegram-канал", "site_id": site["id"]})
    post(client, "/api/v1/campaigns", api, {
        "name": "Яндекс Директ", "site_id": site["id"], "priority": 1,
        "conditions": [[{"param": "utm_source", "op": "eq", "value": "yandex"}]],
    })
    integration = post(client, "/api/v1/integrations", api, {
        "name": name, "amocrm_url": amo.url, "token_url": f"{amo.url}/oauth2/access_token",
    })
    page = connect_through_oauth(client, api, integration["id"])
    assert page.status_code == 200, page.text
    assert 'data-result="connected"' in page.text
    fields = client.get(f"/api/v1/integrations/{integration['id']}/custom-fields", headers=api).get_json()["data"]
    session_field = next(f for f in fields if f["entity"] == "leads" and f["name"] == "Сессия UIS")
    patch = {
        "session_field_id": session_field["id"], "session_field_entity": "leads", "traffic_type": "campaign",
        "default_campaign_id": default["id"],
        "messenger_mappings": [{"origin": "telegram", "campaign_id": telegram["id"]}],
    }
    if activate:
        patch["is_active"] = True
    response = client.patch(f"/api/v1/integrations/{integration['id']}", headers=api, json=patch)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return Setup(integration["id"], site["id"], default["id"], telegram["id"], session_field["id"], body["webhook_url"])


def requests_of(client, api, **params):
    response = client.get("/api/v1/requests", headers=api, query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def events_of(client, api, **params):
    return client.get("/api/v1/events", headers=api, query_string=params).get_json()["data"]
