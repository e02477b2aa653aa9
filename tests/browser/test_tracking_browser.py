"""The tracking code and the script for the site in a real browser (the system Chromium, headless).

A client's site is served on www.shop.localhost (tracking_pages/): our tracking code in <head>, the
script for the site at the bottom, and a stand-in for amoCRM's chat button that records what its
`setMeta` receives. Our app runs on 127.0.0.1 (another origin: real CORS), the amoCRM sandbox beside it.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from core.integrations.site_script import render_site_script
from core.models import VisitorSession
from core.tracking.collect import tracking_snippet
from tests.browser.tracking_pages.site import SITE_DOMAIN, SiteServer
from tests.helpers import http as loopback  # loopback only: never through a proxy
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, post, requests_of

# pytest-timeout bounds each walk: a browser call stuck without a timeout of its own (`evaluate` has none)
# fails the test with pytest's own outcome instead of hanging CI.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

# Headless Chromium says "HeadlessChrome", which the bot filter rightly drops: visitors get a real UA.
VISITOR_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0.0.0 Safari/537.36")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "tracking"
AUTUMN = "/?utm_source=yandex&utm_medium=cpc&utm_campaign=autumn"
WINTER = "/?utm_source=yandex&utm_medium=cpc&utm_campaign=winter"
LEAD_FIELD = 812345


@pytest.fixture(scope="module")
def browser(chromium):
    """The system Chromium, headless (tests/browser/conftest.py: skipped only without Chromium and
    without REQUIRE_SERVICES=1)."""
    return chromium


@pytest.fixture(scope="module")
def shop():
    server = SiteServer()
    yield server
    server.stop()


def _screenshot_on_failure(request, pages):
    if request.session.testsfailed > request.node.stash.get(_FAILED_BEFORE, 0):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for i, page in enumerate(pages):
            try:
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}.png"), full_page=True)
            except Exception:  # noqa: BLE001 - a closed page has nothing to show
                pass


_FAILED_BEFORE = pytest.StashKey[int]()


@pytest.fixture
def visitor(browser, request):
    """A browser context of one visitor (a real user agent, Russian locale); screenshots on failure."""
    contexts, errors = [], []

    def new(**options):
        context = browser.new_context(**{"user_agent": VISITOR_UA, "locale": "ru-RU", **options})
        context.set_default_timeout(10_000)
        context.on("page", lambda p: p.on("pageerror", lambda exc: errors.append(f"{p.url}: {exc}")))
        contexts.append(context)
        return context

    request.node.stash[_FAILED_BEFORE] = request.session.testsfailed
    yield new
    _screenshot_on_failure(request, [p for c in contexts for p in c.pages])
    for context in contexts:
        # A route still holding a request (the aborted keepalive beacon of the "server unreachable" test) made
        # context.close() hang now and then; Playwright's unroute_all lets go of them first.
        for open_page in context.pages:
            open_page.unroute_all(behavior="ignoreErrors")
        context.unroute_all(behavior="ignoreErrors")
        context.close()
    assert errors == [], "the page threw: our scripts must never break a site"


@pytest.fixture
def page(visitor):
    return visitor().new_page()


@pytest.fixture
def tracked(client, api, live, shop):
    """The client's site in our account with two campaigns and a source, and its tracking code."""
    site = post(client, "/api/v1/sites", api, {"name": "Магазин диванов", "domain": SITE_DOMAIN})
    autumn = post(client, "/api/v1/campaigns", api, {
        "name": "Директ: осень", "site_id": site["id"], "priority": 1,
        "conditions": [[{"param": "utm_campaign", "op": "eq", "value": "autumn"}]]})
    winter = post(client, "/api/v1/campaigns", api, {
        "name": "Директ: зима", "site_id": site["id"], "priority": 2,
        "conditions": [[{"param": "utm_campaign", "op": "eq", "value": "winter"}]]})
    source = post(client, "/api/v1/sources", api, {
        "name": "Яндекс Директ", "conditions": [[{"param": "utm_source", "op": "eq", "value": "yandex"},
                                                 {"param": "channel", "op": "eq", "value": "paid"}]]})
    snippet = tracking_snippet(live.url, SimpleNamespace(site_key=site["site_key"], domain=site["domain"]))
    shop.reset(tracking_code=snippet)
    return SimpleNamespace(site=site, autumn=autumn["id"], winter=winter["id"], source=source["id"], snippet=snippet)


def session_id(page) -> int:
    """The session id once our code has it confirmed by the server."""
    page.wait_for_function("() => window.Chatsource && Chatsource.getSessionId && Chatsource.getSessionId()")
    return int(page.evaluate("Chatsource.getSessionId()"))


def api_session(client, api, sid) -> dict:
    response = client.get(f"/api/v1/sessions/{sid}", headers=api)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def page_views(app, sid) -> int:
    with app.extensions["chatsource.services"].session_factory() as db:
        return db.get(VisitorSession, sid).page_views


def go(page, url):
    page.goto(url)
    return session_id(page)


def click(page, selector):
    with page.expect_navigation():
        page.click(selector)
    return session_id(page)


# --- sessions ---------------------------------------------------------------------------------


def test_landing_with_utms_gives_an_attributed_session_that_navigation_keeps(app, client, api, shop, tracked, page):
    sid = go(page, shop.url + AUTUMN)
    session = api_session(client, api, sid)
    assert (session["campaign_id"], session["source_id"], session["channel"]) == (tracked.autumn, tracked.source, "paid")
    assert (session["utm_source"], session["utm_campaign"]) == ("yandex", "autumn")
    assert session["entrance_page"] == shop.url + AUTUMN
    visitor_id = page.evaluate("Chatsource.getVisitorId()")
    assert session["visitor_id"] == visitor_id and len(visitor_id) >= 16

    # First-party cookies on the site's domain: the visitor for a year, the session for 30 idle minutes.
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["_cs_vid"]["value"] == visitor_id and cookies["_cs_vid"]["domain"].lstrip(".") == SITE_DOMAIN
    assert cookies["_cs_vid"]["expires"] - time.time() > 364 * 86400
    assert 0 < cookies["_cs_sid"]["expires"] - time.time() <= 1800
    assert not any(c["domain"].startswith("127.0.0.1") for c in cookies.values())  # our server sets none

    assert page.evaluate("window.__ready") == {"session": str(sid), "visitor": visitor_id}  # onReady, queued early

    assert click(page, "#catalog") == sid
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/t/collect" in r.url else None)
    page.click("#to-about")
    page.wait_for_url("**/catalog.html#about")
    page.wait_for_timeout(300)
    assert sent == []  # an in-page anchor is not a page view
    assert click(page, "#delivery") == sid
    page.go_back()
    assert session_id(page) == sid
    assert page_views(app, sid) == 4
    assert page.evaluate("Chatsource.getVisitorId()") == visitor_id


def test_idle_limit_and_a_new_campaign_start_new_sessions(app, client, api, shop, tracked, page):
    page.clock.install(time=datetime.now(timezone.utc))
    first = go(page, shop.url + AUTUMN)
    assert click(page, "#catalog") == first

    # 31 minutes pass without a page view — on the visitor's clock and on ours.
    page.clock.fast_forward("31:00")
    move_server_clock(app, first, 31)
    after_idle = click(page, "#delivery")
    assert after_idle != first
    session = api_session(client, api, after_idle)
    assert session["entrance_page"] == shop.url + "/delivery.html" and session["channel"] == "internal"

    # A new utm_campaign within the idle limit: a new session, attributed to the other campaign.
    winter = go(page, shop.url + WINTER)
    assert winter not in (first, after_idle)
    assert api_session(client, api, winter)["campaign_id"] == tracked.winter
    # ...which the next pages keep, and so does reopening the same ad link.
    assert click(page, "#catalog") == winter
    assert go(page, shop.url + WINTER) == winter
    assert len({first, after_idle, winter}) == 3
    assert api_session(client, api, first)["visitor_id"] == api_session(client, api, winter)["visitor_id"]


def set_visibility(page, state):
    page.evaluate("""(s) => {
        Object.defineProperty(document, 'visibilityState', {value: s, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""", state)


def move_server_clock(app, sid, minutes):
    """As if `minutes` had passed on our server since the session's last activity."""
    with app.extensions["chatsource.services"].session_factory() as db:
        vs = db.get(VisitorSession, sid)
        vs.last_activity_at -= timedelta(minutes=minutes)
        db.commit()


def test_a_background_tab_keeps_its_session_and_a_return_after_the_idle_limit_gets_a_new_one(app, client, api, shop, tracked, page):
    shop.reset(tracking_code=tracked.snippet, site_script=render_site_script(LEAD_FIELD), button="amo_social_button")
    page.clock.install(time=datetime.now(timezone.utc))
    sid = go(page, shop.url + AUTUMN)
    handed_value(page, "lead", LEAD_FIELD, sid)

    # The visitor reads for 20 minutes, then switches to another tab: a beacon extends the session.
    page.clock.fast_forward("20:00")
    move_server_clock(app, sid, 20)
    with page.expect_request(lambda r: "/t/collect" in r.url) as beacon:
        set_visibility(page, "hidden")
    assert json.loads(beacon.value.post_data)["event"] == "ping"
    deadline = time.monotonic() + 5
    with app.extensions["chatsource.services"].session_factory() as db:
        while datetime.now(timezone.utc) - db.get(VisitorSession, sid).last_activity_at > timedelta(minutes=1):
            assert time.monotonic() < deadline, "the ping did not extend the session"
            time.sleep(0.05)
            db.expire_all()
        assert db.get(VisitorSession, sid).page_views == 1  # a ping is not a page view

    # Back after 40 minutes away: the old session has ended; the page asks again and the chat button
    # gets the new session, attributed like the first (the address still carries the ad's tags).
    page.clock.fast_forward("40:00")
    move_server_clock(app, sid, 40)
    set_visibility(page, "visible")
    page.wait_for_function("(old) => Chatsource.getSessionId() !== old", arg=str(sid))
    new_sid = int(page.evaluate("Chatsource.getSessionId()"))
    assert handed_value(page, "lead", LEAD_FIELD, new_sid) == str(new_sid)
    session = api_session(client, api, new_sid)
    assert (session["campaign_id"], session["entrance_page"]) == (tracked.autumn, shop.url + AUTUMN)


def test_with_cookies_blocked_the_session_lives_in_the_tab(app, client, api, shop, tracked, visitor):
    context = visitor()
    # A browser that refuses every cookie: document.cookie writes are dropped.
    context.add_init_script("Object.defineProperty(Document.prototype, 'cookie', "
                            "{get: function () { return ''; }, set: function () {}, configurable: true});")
    page = context.new_page()
    sid = go(page, shop.url + AUTUMN)
    assert click(page, "#catalog") == sid
    assert [c["name"] for c in context.cookies()] == []
    # A new tab has its own session storage: a new visitor (session-only fallback).
    other = context.new_page()
    other_sid = go(other, shop.url + "/catalog.html")
    assert other_sid != sid
    assert other.evaluate("Chatsource.getVisitorId()") != page.evaluate("Chatsource.getVisitorId()")


def test_when_our_server_is_unreachable_the_page_goes_on_with_the_stored_session(shop, tracked, page):
    sid = go(page, shop.url + AUTUMN)
    page.route("**/t/collect", lambda route: route.abort("connectionrefused"))
    page.goto(shop.url + "/catalog.html")
    assert session_id(page) == sid
    page.evaluate("document.getElementById('catalog').click()")  # the page still works
    page.wait_for_url("**/catalog.html")


def test_headless_browsers_are_bots_and_get_no_session(app, shop, tracked, visitor):
    page = visitor(user_agent=None).new_page()  # Chromium's own "HeadlessChrome" user agent
    with page.expect_response(lambda r: "/t/collect" in r.url) as answer:
        page.goto(shop.url + AUTUMN)
    assert answer.value.status == 200 and answer.value.json()["tracked"] is False
    assert page.evaluate("Chatsource.getSessionId()") is None
    with app.extensions["chatsource.services"].session_factory() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(VisitorSession)) == 0


# --- the script for the site and amoCRM's button ------------------------------------------------


def handed_value(page, entity, field_id, expected):
    page.wait_for_function("([e, f, v]) => window.__fieldValue(e, f) === v", arg=[entity, field_id, str(expected)])
    return page.evaluate("([e, f]) => window.__fieldValue(e, f)", [entity, field_id])


@pytest.mark.parametrize("button, entity", [("amo_social_button", "lead"), ("crm_plugin", "contact")])
def test_button_first_then_our_session(shop, tracked, page, button, entity):
    """amoCRM's button exists before our code has a session (its snippet above ours, our script async)."""
    shop.reset(tracking_code=tracked.snippet, site_script=render_site_script(LEAD_FIELD, entity), button=button)
    sid = go(page, shop.url + AUTUMN)
    assert handed_value(page, entity, LEAD_FIELD, sid) == str(sid)
    calls = page.evaluate("window.__meta")
    assert page.evaluate("window.__buttonAt") < calls[0]["at"]
    assert {c["button"] for c in calls} == {button}
    assert calls[0]["meta"] == {entity: {"custom_fields": [{"id": LEAD_FIELD, "values": [{"value": str(sid)}]}]}}
    # Handed once per session, not on every poll.
    page.wait_for_timeout(600)
    assert len(page.evaluate("window.__meta")) == 1
    # The next page hands the same session again (each page load is a new button).
    assert click(page, "#catalog") == sid
    assert handed_value(page, entity, LEAD_FIELD, sid) == str(sid)


def test_our_session_first_then_the_button_and_again_when_the_session_changes(client, api, shop, tracked, page):
    """Our code is ready before amoCRM's button appears (lazy loading, a tag manager), and a new
    campaign arriving in a single-page app changes the session: the button gets the new id."""
    shop.reset(tracking_code=tracked.snippet, site_script=render_site_script(LEAD_FIELD, "lead"), button=None)
    sid = go(page, shop.url + "/catalog.html")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__meta") == []
    page.evaluate("__installButton('amo_social_button')")
    assert handed_value(page, "lead", LEAD_FIELD, sid) == str(sid)

    with page.expect_response(lambda r: "/t/collect" in r.url):
        page.evaluate(f"history.pushState({{}}, '', {json.dumps(WINTER)})")
    page.wait_for_function("(old) => Chatsource.getSessionId() !== old", arg=str(sid))
    new_sid = int(page.evaluate("Chatsource.getSessionId()"))
    assert new_sid != sid
    assert handed_value(page, "lead", LEAD_FIELD, new_sid) == str(new_sid)
    assert api_session(client, api, new_sid)["campaign_id"] == tracked.winter


@pytest.mark.parametrize("button, installed_first", [("amo_social_button", True), ("crm_plugin", True),
                                                     ("amo_social_button", False)])
def test_the_session_is_handed_again_when_the_chat_opens_or_a_messenger_is_chosen(shop, tracked, page, button, installed_first):
    """Live sites show the first setMeta is not always applied: opening the chat (onChatShow) or
    choosing a messenger (onButtonClick) hands the same session again, whichever loaded first."""
    shop.reset(tracking_code=tracked.snippet, site_script=render_site_script(LEAD_FIELD, "lead"),
               button=button if installed_first else None)
    sid = go(page, shop.url + AUTUMN)
    if not installed_first:
        page.evaluate(f"__installButton({json.dumps(button)})")
    assert handed_value(page, "lead", LEAD_FIELD, sid) == str(sid)
    assert len(page.evaluate("window.__meta")) == 1
    # The script subscribes from its poll; amoCRM fires the callback once it is registered.
    page.wait_for_function("() => window.__fire('onButtonClick', 'whatsapp', 'https://wa.me/1') > 0")
    assert len(page.evaluate("window.__meta")) == 2
    assert page.evaluate("window.__fire('onChatShow')") == 1
    calls = page.evaluate("window.__meta")
    assert len(calls) == 3 and {c["button"] for c in calls} == {button}
    assert all(c["meta"] == {"lead": {"custom_fields": [{"id": LEAD_FIELD, "values": [{"value": str(sid)}]}]}} for c in calls)


# --- end to end with the amoCRM sandbox ---------------------------------------------------------


def test_a_site_chat_carries_the_session_into_amocrm_and_becomes_an_attributed_request(app, client, api, live, amo, shop, page):
    setup = connected_integration(client, api, amo)
    integration = client.get(f"/api/v1/integrations/{setup.integration_id}", headers=api).get_json()
    assert integration["site_script"] and integration["is_active"]
    site = post(client, "/api/v1/sites", api, {"name": "Магазин диванов", "domain": SITE_DOMAIN})
    campaign = post(client, "/api/v1/campaigns", api, {
        "name": "Директ: осень", "site_id": site["id"],
        "conditions": [[{"param": "utm_campaign", "op": "eq", "value": "autumn"}]]})
    snippet = tracking_snippet(live.url, SimpleNamespace(site_key=site["site_key"], domain=site["domain"]))
    shop.reset(tracking_code=snippet, site_script=integration["site_script"], button="amo_social_button")

    chats = []

    def start_chat(meta_json: str) -> int:
        """What amoCRM does when the visitor writes: a contact, a lead with the handed fields, a talk."""
        lead = json.loads(meta_json).get("lead") or {}
        response = loopback.post(f"{amo.url}/_sandbox/chats", timeout=10, json={
            "contact": {"name": "Ольга Иванова", "phones": ["+7 916 555-12-34"]},
            "lead": {"name": "Заявка из чата на сайте", "custom_fields": lead.get("custom_fields") or []},
            "origin": "livechat"})
        assert response.status_code in (200, 201), response.text
        chats.append(response.json())
        return response.json()["talk_id"]

    page.expose_function("__amoStartChat", start_chat)
    sid = go(page, shop.url + AUTUMN)
    assert click(page, "#catalog") == sid
    handed_value(page, "lead", setup.session_field_id, sid)
    talk_id = page.evaluate("window.__startChat()")

    [chat] = chats
    # The lead amoCRM made carries our session id in the integration's field.
    [value] = amo.state.leads[chat["lead_id"]]["cf"][setup.session_field_id]
    assert value["value"] == str(sid)
    amo.state.close_talk(talk_id, force_close=True, control=True)
    drain(app)

    [req] = requests_of(client, api)
    assert (req["attribution"], req["session_id"], req["campaign_id"]) == ("session", sid, campaign["id"])
    assert (req["site_id"], req["utm_campaign"], req["contact_name"]) == (site["id"], "autumn", "Ольга Иванова")
    assert req["talk_id"] == talk_id
