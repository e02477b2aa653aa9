"""Issue 15's last admin items, each in a real browser (the system Chromium, headless): channel names in
the reader's language (items 9/16), the sweeper's note as a message (9), the parked OAuth
confirmation in the account's time zone (10), Flask-Admin's filter date pickers in the page's
language (11) and the Raw data columns kept per user on the server (14). The browser speaks English
(`en-US`) where the page is Russian, so nothing here can pass by following the browser's locale.
"""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from core.amocrm.messengers import messenger_said
from core.inbox import attribution_reasons as reasons
from core.inbox import talk_processing
from core.models import OAuthState, User, WebhookEvent, stored_message
from core.platform import time_zones
from core.platform.db import utcnow
from tests.helpers import http as loopback
from tests.helpers.admin_helpers import PASSWORD, login, make_user, post_form, text
from tests.helpers.apps import api_headers_for
from tests.helpers.report_data import add_event, add_request, seed_catalog

pytestmark = pytest.mark.e2e

EMAIL = "marketing@example.ru"


@pytest.fixture
def browser(chromium):
    """New contexts of one browser (each one is "another browser": no cookies, no storage shared)."""
    contexts = []

    def make(**kwargs):
        context = chromium.new_context(**{"locale": "en-US", "timezone_id": "Europe/Moscow",
                                          "viewport": {"width": 1440, "height": 900}, **kwargs})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def signed_in(browser, base, email=EMAIL, lang="ru"):
    page = browser().new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(f"{base}/login?next=/admin/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("[data-testid=login]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{base}/lang/{lang}?next=/admin/")
    return page


def cells(page, selector) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


# -- items 9/16: the site chat and e-mail are named in the reader's language everywhere ---------------

@pytest.fixture
def chats_of_every_kind(app, services, account_id):
    """A site-chat request attributed by its mapping, an e-mail one by the default (its messenger
    unmapped), a Telegram one, and an inbox event from the site chat — as core records them."""
    with services.session_factory() as session:
        seed = seed_catalog(session, services, account_id)
        now = utcnow()
        said = {
            ("onlinechat", "site_chat", "messenger"): reasons.MESSENGER(
                notes=[reasons.FIELD_EMPTY()], messenger=messenger_said("onlinechat"),
                target=reasons.TO_CAMPAIGN(name="«Яндекс Директ»")),
            ("com.amocrm.mail", "email", "default"): reasons.DEFAULT(
                notes=[reasons.FIELD_EMPTY(), reasons.NO_MAPPING(messenger=messenger_said("com.amocrm.mail"))],
                target=reasons.TO_CAMPAIGN(name="«Яндекс Директ»")),
            ("telegram", "telegram", "messenger"): reasons.MESSENGER(
                notes=[reasons.FIELD_EMPTY()], messenger=messenger_said("telegram"),
                target=reasons.TO_CAMPAIGN(name="«Яндекс Директ»")),
        }
        for n, ((origin, channel, kind), message) in enumerate(said.items()):
            code, params = stored_message(message)
            add_request(session, account_id, seed.integration_id, now - timedelta(hours=n + 1), origin=origin, channel=channel,
                        attribution=kind, attribution_reason_code=code, attribution_reason_params=params,
                        campaign_id=seed.campaign_id, contact_name=f"Client {n}")
        event = add_event(session, account_id, seed.integration_id, status="done")
        event.item = {**event.item, "origin": "onlinechat"}
        session.commit()
    make_user(app, EMAIL, PASSWORD)
    return seed


NAMES = {"ru": ("Онлайн-чат на сайте", "Электронная почта"), "en": ("Website chat", "Email")}


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_site_chat_and_email_are_named_in_the_pages_language(browser, screenshots, app, live, account_id,
                                                                  chats_of_every_kind, lang):
    site_chat, email = NAMES[lang]
    page = signed_in(browser, live.url, lang=lang)
    page.goto(f"{live.url}/admin/requests/")
    channels = cells(page, "td[data-column=channel]")
    assert set(channels) == {site_chat, email, "Telegram"}
    why = " ".join(cells(page, "td[data-column=attribution]"))
    assert site_chat in why and email in why and "Telegram" in why
    options = cells(page, "select[name=channel] option")
    assert site_chat in options and email in options
    screenshots.prefix = f"channel-names-{lang}-"
    screenshots(page, "requests")
    shown = page.evaluate("() => document.body.innerText")
    assert "Online chat" not in shown and ("Email" not in shown if lang == "ru" else "Электронная" not in shown)

    page.goto(f"{live.url}/admin/events/")
    assert site_chat in cells(page, "td.col-origin")

    page.goto(f"{live.url}/admin/?range=7")
    legend = page.inner_text("[data-testid=legend-channel]")
    assert site_chat in legend and email in legend

    page.goto(f"{live.url}/admin/requests/")
    csv = page.request.get(live.url + page.get_attribute("[data-testid=export-csv]", "href"))
    assert csv.ok and site_chat in csv.text() and email in csv.text() and "Online chat" not in csv.text()

    api = api_headers_for(app, account_id)
    rows = loopback.get(f"{live.url}/api/v1/requests?lang={lang}", headers=api, timeout=10).json()["data"]
    said = " ".join(r["attribution_reason"] for r in rows)
    assert site_chat in said and email in said and "Online chat" not in said
    assert page.errors == []


# -- item 9: the sweeper's note on an event it released is a message, not Russian words in `error` ----

def test_an_event_a_worker_left_behind_says_why_in_the_readers_language(browser, app, live, services, account_id):
    with services.session_factory() as session:
        seed = seed_catalog(session, services, account_id)
        event = add_event(session, account_id, seed.integration_id, status="processing",
                          claimed_at=utcnow() - timedelta(hours=1), claim_token="dead-worker")
        session.commit()
        event_id = event.id
        talk_processing.sweep_stuck(session)
        session.commit()
    with services.session_factory() as session:
        row = session.get(WebhookEvent, event_id)
        assert (row.status, row.error, row.status_reason_code) == ("received", None, "event.worker_released")
    make_user(app, EMAIL, PASSWORD)
    page = signed_in(browser, live.url, lang="ru")
    for lang, words in (("ru", "рабочий процесс прервался во время обработки; событие обрабатывается повторно"),
                        ("en", "the worker was interrupted while processing; the event is processed again")):
        page.goto(f"{live.url}/lang/{lang}?next=/admin/events/")
        assert words in page.inner_text(f"tr:has(input[value='{event_id}']) td.col-status_reason_code").lower()
        page.goto(f"{live.url}/admin/events/details/?id={event_id}")
        assert words in page.inner_text("table").lower()
        api = loopback.get(f"{live.url}/api/v1/events?lang={lang}", headers=api_headers_for(app, account_id), timeout=10)
        (shown,) = [e for e in api.json()["data"] if e["id"] == event_id]
        assert shown["status_reason"] == words and shown["error"] is None
    assert "прервался" not in page.inner_text("body")  # the English page holds no Russian note


# -- item 10: the parked OAuth confirmation says its time in the account's zone ------------------------

def test_the_oauth_confirmation_page_tells_the_codes_expiry_in_the_accounts_time_zone(browser, screenshots, app, live, amo,
                                                                                       services, account_id):
    with services.session_factory() as session:
        time_zones.set_time_zone(session, account_id, "Asia/Vladivostok")
        session.commit()
    make_user(app, EMAIL, PASSWORD, account_id=account_id)
    starter = app.test_client()
    assert login(starter, email=EMAIL).status_code == 302
    started = post_form(starter, "/admin/integrations/new", {
        "name": "amoCRM", "amocrm_url": amo.url, "token_url": f"{amo.url}/oauth2/access_token"})
    assert started.status_code == 302, text(started)[:300]
    callback = loopback.get(started.headers["Location"], allow_redirects=False, timeout=10).headers["Location"]

    page = signed_in(browser, live.url, lang="ru")  # the same user in another browser must confirm
    page.goto(callback)
    page.wait_for_selector("[data-result=confirm]")
    assert "/oauth/amocrm/confirm/" in urlsplit(page.url).path
    with services.session_factory() as session:
        pending_since = session.scalar(sa.select(OAuthState.pending_since).where(OAuthState.confirm_hash.is_not(None)))
    from zoneinfo import ZoneInfo

    local = (pending_since + timedelta(minutes=20)).astimezone(ZoneInfo("Asia/Vladivostok")).strftime("%H:%M")
    said = page.inner_text("[data-testid=code-expires]")
    assert said == f"Код авторизации amoCRM действует до {local} по времени Asia/Vladivostok (20 минут)."
    assert "UTC" not in page.inner_text("body")
    screenshots.prefix = "oauth-confirm-"
    screenshots(page, "ru")
    page.goto(f"{live.url}/lang/en?next={urlsplit(page.url).path}")
    assert page.inner_text("[data-testid=code-expires]") == \
        f"The authorisation code from amoCRM is valid until {local}, Asia/Vladivostok time (20 minutes)."


# -- item 11: Flask-Admin's filter date pickers follow the page's language ---------------------------

def _picker(page):
    return page.locator(".daterangepicker:visible")


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_filter_date_pickers_speak_the_pages_language(browser, screenshots, app, live, services, account_id, lang):
    with services.session_factory() as session:
        seed = seed_catalog(session, services, account_id)
        today = add_event(session, account_id, seed.integration_id, status="done")
        old = add_event(session, account_id, seed.integration_id, status="done", received_at=utcnow() - timedelta(days=20))
        session.commit()
        today_id, old_id = today.id, old.id
    make_user(app, EMAIL, PASSWORD)
    page = signed_in(browser, live.url, lang=lang)
    page.goto(f"{live.url}/admin/events/")
    page.click("text=" + ("Добавить фильтр" if lang == "ru" else "Add Filter"))
    page.click("a.filter:has-text('%s')" % ("Получено" if lang == "ru" else "Received"))
    field = page.locator("#filter_form .filter-val").last
    field.click()
    picker = _picker(page)
    picker.wait_for()
    shown = picker.inner_text()
    months_ru, months_en = "Январь Февраль Март Декабрь".split(), "January February March December".split()
    weekdays = re.findall(r"\b(Пн|Вт|Ср|Чт|Пт|Сб|Вс|Mo|Tu|We|Th|Fr|Sa|Su|Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b", shown)
    if lang == "ru":
        assert all(m in shown for m in months_ru) and not any(m in shown for m in months_en)
        assert weekdays[:7] == ["Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"]  # Monday first
        assert "Применить" in shown and "Отмена" in shown
    else:
        assert all(m in shown for m in months_en) and not re.search(r"[А-Яа-я]", shown)
        assert weekdays[:7] == ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    screenshots.prefix = f"filter-dates-{lang}-"
    screenshots(page, "events-picker")
    picker.locator(".applyBtn").click()
    value = field.input_value()
    day = r"\d\d\.\d\d\.\d{4}" if lang == "ru" else r"\d{4}-\d\d-\d\d"
    assert re.fullmatch(rf"{day}{' — ' if lang == 'ru' else ' to '}{day}", value), value
    page.click("#filter_form button[type=submit]")
    page.wait_for_url(lambda url: "flt" in url)
    ids = {int(v) for v in page.locator("input.action-checkbox").evaluate_all("els => els.map(e => e.value)")}
    assert today_id in ids and old_id not in ids  # the range is today, in the account's zone
    assert page.locator("#filter_form .filter-val").last.input_value() == value  # shown back as typed
    assert page.errors == []

    page.goto(f"{live.url}/admin/sessions/")
    page.click("text=" + ("Добавить фильтр" if lang == "ru" else "Add Filter"))
    page.click("a.filter:has-text('%s')" % ("Начата" if lang == "ru" else "Started"))
    page.locator("#filter_form tr").last.locator(".select2-choice").click()  # the operation: «с» / «from», one day
    page.click("#select2-drop .select2-result-label >> text='%s'" % ("с" if lang == "ru" else "from"))
    page.locator("#filter_form .filter-val").last.click()
    single = _picker(page)
    single.wait_for()
    assert ("Декабрь" in single.inner_text()) == (lang == "ru") and ("December" in single.inner_text()) == (lang == "en")


# -- item 14: the Raw data columns are kept per user on the server -----------------------------------

def test_the_columns_a_user_chose_follow_them_to_another_browser(browser, screenshots, app, live, services, account_id):
    with services.session_factory() as session:
        seed = seed_catalog(session, services, account_id)
        add_request(session, account_id, seed.integration_id, utcnow() - timedelta(hours=1), email="a@example.ru")
        session.commit()
    make_user(app, EMAIL, PASSWORD)
    make_user(app, "colleague@example.ru", PASSWORD)

    first = signed_in(browser, live.url)
    first.goto(f"{live.url}/admin/requests/")
    first.click("[data-testid=columns] summary")
    with first.expect_response(lambda r: r.url.endswith("/admin/requests/columns") and r.request.method == "POST") as saved:
        first.uncheck("[data-column-choice=email] input")
    assert saved.value.status == 200
    with first.expect_response(lambda r: r.url.endswith("/admin/requests/columns")) as saved:
        first.click("[data-column-choice=integration] [data-move=up]")
    assert saved.value.status == 200

    def visible_columns(page):
        return page.locator("[data-testid=report-table] thead th:visible").evaluate_all(
            "els => els.map(e => e.getAttribute('data-column'))")

    chosen = visible_columns(first)
    assert "email" not in chosen and chosen.index("integration") < chosen.index("is_repeat")

    other_browser = signed_in(browser, live.url)  # no cookies, no localStorage of the first
    other_browser.goto(f"{live.url}/admin/requests/")
    assert visible_columns(other_browser) == chosen
    assert not other_browser.is_visible("td[data-column=email]")
    screenshots.prefix = "columns-"
    screenshots(other_browser, "another-browser")

    colleague = signed_in(browser, live.url, email="colleague@example.ru")  # per user: a colleague keeps all
    colleague.goto(f"{live.url}/admin/requests/")
    assert "email" in visible_columns(colleague)

    # The page's POST needs its CSRF token, and a choice that is not one is a 400 with a message.
    refused = other_browser.request.post(f"{live.url}/admin/requests/columns", data={"order": [], "hidden": []})
    assert refused.status == 400
    token = other_browser.get_attribute("meta[name=csrf-token]", "content")
    bad = other_browser.request.post(f"{live.url}/admin/requests/columns", data={"hidden": ["password_hash"]},
                                     headers={"X-CSRFToken": token})
    assert bad.status == 400 and "columns the report does not have" in bad.json()["error"]["message"]
    with services.session_factory() as session:
        stored = session.scalar(sa.select(User.report_columns).where(User.email == EMAIL))
        assert "email" in stored["hidden"]

    other_browser.click("[data-testid=columns] summary")
    with other_browser.expect_response(lambda r: r.url.endswith("/admin/requests/columns")):
        other_browser.click(".cs-columns-reset")
    first.reload()
    assert first.is_visible("td[data-column=email]")
