"""A visitor's browser as the tracking endpoint sees it: `send` posts one /t/collect beacon."""
from __future__ import annotations

import json

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
ORIGIN = "https://www.shop.example.ru"
LANDING = "https://www.shop.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=autumn"


def send(client, site_key, body=None, *, origin=ORIGIN, content_type="text/plain;charset=UTF-8", raw=None, ua=CHROME, **headers):
    payload = raw if raw is not None else json.dumps({"site_key": site_key, **(body or {})})
    if origin:
        headers["Origin"] = origin
    return client.post("/t/collect", data=payload, content_type=content_type, headers={"User-Agent": ua, **headers})


def shop_site(client, api) -> dict:
    """The site shop.example.ru with the campaign «Яндекс Директ» (utm_source=yandex), through the Data API."""
    site = client.post("/api/v1/sites", headers=api, json={"name": "Магазин", "domain": "shop.example.ru"}).get_json()
    campaign = client.post("/api/v1/campaigns", headers=api, json={
        "name": "Яндекс Директ", "site_id": site["id"],
        "conditions": [[{"param": "utm_source", "op": "eq", "value": "yandex"}]],
    }).get_json()
    site["campaign_id"] = campaign["id"]
    return site
