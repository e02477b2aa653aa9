"""A messenger chat tied to the site visit by the click on the chat button, in a real browser.

The amoCRM sandbox's demo site (`/site/`, sandbox/site_demo.py) carries amoCRM's button (its
`/js/button.js`), our tracking code and the script for your site, pasted as a site owner would.
The visitor comes from an ad, clicks the button's Telegram icon and writes in "the app": the sandbox
makes the chat as amoCRM does for a messenger — its lead has no session — and, once the chat is
closed, the request is attributed to the visitor's session by the click.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from core.models import MessengerClick
from core.tracking.collect import tracking_snippet
from tests.helpers import http as loopback  # loopback only: never through a proxy
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, post, requests_of

pytestmark = pytest.mark.e2e

VISITOR_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0.0.0 Safari/537.36")
AD_LANDING = "/site/?utm_source=yandex&utm_medium=cpc&utm_campaign=autumn"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture
def page(chromium):
    context = chromium.new_context(user_agent=VISITOR_UA, locale="ru-RU")
    context.set_default_timeout(15_000)
    errors = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], "the page threw: our scripts must never break a site"


def clicks_of(app) -> list[MessengerClick]:
    with app.extensions["chatsource.services"].session_factory() as db:
        return list(db.scalars(sa.select(MessengerClick)))


def test_a_telegram_click_on_the_site_attributes_the_telegram_chat_to_the_visit(app, client, api, live, amo, page):
    setup = connected_integration(client, api, amo)
    integration = client.get(f"/api/v1/integrations/{setup.integration_id}", headers=api).get_json()
    assert integration["click_window_minutes"] == 30
    site = post(client, "/api/v1/sites", api, {"name": "Демо-сайт", "domain": "127.0.0.1"})
    autumn = post(client, "/api/v1/campaigns", api, {
        "name": "Директ: осень", "site_id": site["id"],
        "conditions": [[{"param": "utm_campaign", "op": "eq", "value": "autumn"}]]})
    snippet = tracking_snippet(live.url, SimpleNamespace(site_key=site["site_key"], domain=site["domain"]))
    installed = loopback.post(f"{amo.url}/_sandbox/site", timeout=10,
                              json={"tracking_code": snippet, "site_script": integration["site_script"]})
    assert installed.status_code == 200, installed.text

    page.goto(amo.url + AD_LANDING)
    page.wait_for_function("() => window.Chatsource && Chatsource.getSessionId && Chatsource.getSessionId()")
    sid = int(page.evaluate("Chatsource.getSessionId()"))
    page.wait_for_selector("#amo-button-toggle")
    page.click("#amo-button-toggle")
    with page.expect_request(lambda r: "/t/collect" in r.url and "messenger_click" in (r.post_data or "")) as sent:
        page.click(".amo-button-icon[data-service=telegram]")
    assert '"service":"telegram"' in sent.value.post_data and f'"session_id":"{sid}"' in sent.value.post_data
    for _ in range(200):
        if clicks_of(app):
            break
        page.wait_for_timeout(50)
    [stored] = clicks_of(app)
    assert (stored.session_id, stored.service, stored.channel) == (sid, "telegram", "telegram")

    page.click(".amo-chat-send")  # the visitor writes to the shop in Telegram
    page.wait_for_function("() => document.querySelector('.amo-chat-status').getAttribute('data-talk-id')")
    talk_id = int(page.get_attribute(".amo-chat-status", "data-talk-id"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "click-attribution-telegram.png"))
    talk = amo.state.get_talk(talk_id)
    assert talk["origin"] == "telegram"
    lead = amo.state.leads[talk["entity_id"]]
    assert setup.session_field_id not in lead["cf"]  # a messenger's lead carries no session

    amo.state.close_talk(talk_id, force_close=True, control=True)
    drain(app)
    [request] = requests_of(client, api)
    assert (request["attribution"], request["session_id"], request["campaign_id"]) == ("session", sid, autumn["id"])
    assert request["channel"] == "telegram" and request["utm_campaign"] == "autumn"
    assert request["attribution_reason"].startswith("По клику на кнопку Telegram на сайте за ")
    assert f"до начала беседы, сессия {sid}: РК «Директ: осень»" in request["attribution_reason"]
