"""The admin as a marketer uses it (issue 15): each item of the issue, in a real browser (the system
Chromium, headless) against the amoCRM sandbox. One test per behaviour, each on its own data.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.integrations import settings as integrations
from core.models import Integration
from tests.helpers.admin_helpers import PASSWORD, make_user
from tests.helpers.environment import TEST_CLIENT_ID

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser_context(chromium):
    contexts = []

    def make(**kwargs):
        context = chromium.new_context(**{"locale": "ru-RU", "viewport": {"width": 1280, "height": 900}, **kwargs})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def admin(app, live, browser_context):
    """A signed-in admin's page; `admin.errors` collects the JavaScript errors of every page."""
    make_user(app, "admin@example.ru", PASSWORD)
    context = browser_context()
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    sign_in(page, live.url)
    return page


def sign_in(page, base, next_url="/admin/"):
    page.goto(f"{base}/login?next={next_url}")
    page.fill("#email", "admin@example.ru")
    page.fill("#password", PASSWORD)
    page.click("[data-testid=login]")
    page.wait_for_url(lambda url: "/login" not in url)


def new_integration(app, account_id, **data):
    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        row = integrations.create_integration(session, services, account_id, {"name": "Основной amoCRM", **data})
        session.commit()
        return row.id


def integration_rows(app) -> list[Integration]:
    with app.extensions["chatsource.services"].session_factory() as session:
        return list(session.scalars(sa.select(Integration).order_by(Integration.id)))


# -- item 3: a message belongs to the attempt that produced it ---------------------------------------

def test_a_connect_problem_is_shown_at_once_and_not_again_after_the_fix(app, live, amo, account_id, admin):
    integration_id = new_integration(app, account_id)
    page = admin
    page.goto(f"{live.url}/admin/integrations/{integration_id}/")
    page.click("[data-testid=connect]")  # the popup path: the page itself says what is wrong
    page.wait_for_selector("[data-testid=connect-problem]")
    assert "Замените YOURDOMAIN" in page.inner_text("[data-testid=connect-problem]")
    assert "is-invalid" in page.get_attribute("#amocrm_url", "class")
    page.fill("#amocrm_url", amo.url)
    page.fill("#token_url", amo.url + "/oauth2/access_token")
    with page.expect_popup():
        page.click("[data-testid=connect]")
    page.wait_for_selector("[data-testid=connected-account]")
    assert "Замените YOURDOMAIN" not in page.content()
    page.reload()
    assert "Замените YOURDOMAIN" not in page.content()
    assert page.errors == []


def test_without_popups_the_problem_comes_with_the_one_page_that_follows(app, live, account_id, browser_context):
    integration_id = new_integration(app, account_id)
    make_user(app, "admin@example.ru", PASSWORD)
    context = browser_context()
    context.add_init_script("window.open = function () { return null; };")  # a popup blocker
    page = context.new_page()
    sign_in(page, live.url, f"/admin/integrations/{integration_id}/")
    page.click("[data-testid=connect]")
    page.wait_for_selector("[data-testid=connect-problem]")
    assert "Замените YOURDOMAIN" in page.inner_text("[data-testid=connect-problem]")
    page.goto(f"{live.url}/admin/integrations/{integration_id}/")
    assert not page.is_visible("[data-testid=connect-problem]")
    assert "Замените YOURDOMAIN" not in page.content()


# -- item 1: the Token URL is checked before amoCRM, and a correction is said -------------------------

def test_a_token_url_on_another_host_is_refused_before_amocrm_and_nothing_is_kept(app, live, amo, admin):
    page = admin
    page.goto(f"{live.url}/admin/integrations/new")
    page.fill("#name", "Основной amoCRM")
    page.fill("#amocrm_url", amo.url)
    page.fill("#token_url", f"http://localhost:{amo.port}/oauth2/access_token")
    page.click("[data-testid=connect]")
    page.wait_for_selector("[data-testid=connect-problem]")
    problem = page.inner_text("[data-testid=connect-problem]")
    assert "Token URL должен быть на том же адресе" in problem and f"{amo.url}/oauth2/access_token" in problem
    assert "is-invalid" in page.get_attribute("#token_url", "class")
    assert "is-invalid" not in page.get_attribute("#amocrm_url", "class")
    assert integration_rows(app) == []  # no draft from a connect that never reached amoCRM
    assert page.errors == []


def test_a_token_url_corrected_after_the_consent_is_said_on_the_page(app, live, amo, admin):
    page = admin
    page.goto(f"{live.url}/admin/integrations/new")
    page.fill("#name", "Основной amoCRM")
    typed = f"http://localhost:{amo.port}"  # amoCRM answers for the account at 127.0.0.1 (its referer)
    page.fill("#amocrm_url", typed)
    page.fill("#token_url", typed + "/oauth2/access_token")
    with page.expect_popup():
        page.click("[data-testid=connect]")
    page.wait_for_selector("[data-testid=connected-account]")
    assert f"Token URL исправлен на {amo.url}/oauth2/access_token" in page.content()
    assert page.input_value("#token_url") == f"{amo.url}/oauth2/access_token"


def connected_integration(app, account_id, amo, **fields):
    """An integration connected to the sandbox through the real OAuth exchange (no browser)."""
    services = app.extensions["chatsource.services"]
    integration_id = new_integration(app, account_id, amocrm_url=amo.url, token_url=amo.url + "/oauth2/access_token")
    from core.integrations.connect import _exchange_and_finish

    code = amo.control("POST", "/oauth/codes", json={"client_id": TEST_CLIENT_ID})["code"]
    _exchange_and_finish(services, integration_id, code, amo.host, None)
    if fields:
        with services.session_factory() as session:
            row = session.get(Integration, integration_id)
            for key, value in fields.items():
                setattr(row, key, value)
            session.commit()
    return integration_id


# -- item 6: one action, one name ---------------------------------------------------------------------

def test_reconnect_has_one_name_in_step_one_and_in_the_status_panel(app, live, amo, account_id, admin):
    integration_id = connected_integration(app, account_id, amo)
    admin.goto(f"{live.url}/admin/integrations/{integration_id}/")
    assert admin.inner_text("[data-testid=connect]").strip() == "Подключить заново"
    assert admin.inner_text("[data-testid=status-connect]").strip() == "Подключить заново"


# -- item 7: the header badges tell the webhook's state ------------------------------------------------

def test_badges_say_when_amocrm_disabled_the_webhook_of_an_active_integration(app, live, amo, account_id, admin):
    integration_id = connected_integration(app, account_id, amo, is_active=True, webhook_disabled=True)
    for url in (f"/admin/integrations/{integration_id}/", "/admin/integrations/"):
        admin.goto(live.url + url)
        badges = admin.inner_text("[data-testid=badges]")
        assert "webhook отключён amoCRM" in badges and "события не приходят" in badges
        assert "активна" not in badges
    with app.extensions["chatsource.services"].session_factory() as session:
        session.get(Integration, integration_id).webhook_disabled = False
        session.commit()
    admin.reload()
    badges = admin.inner_text("[data-testid=badges]")
    assert "активна" in badges and "webhook зарегистрирован" in badges


# -- item 8: step 7 names the order and links to the main code -----------------------------------------

def test_step_seven_says_the_main_code_goes_first_and_links_to_the_sites_page(app, live, amo, account_id, admin):
    integration_id = connected_integration(app, account_id, amo, session_field_id=1, session_field_name="Сессия UIS")
    admin.goto(f"{live.url}/admin/integrations/{integration_id}/#step-7")
    steps = admin.locator("[data-testid=install-order] li").all_inner_texts()
    assert "Сначала основной код отслеживания" in steps[0] and "Затем этот скрипт" in steps[1]
    admin.click("[data-testid=sites-link]")
    admin.wait_for_url(lambda url: "/admin/sites/" in url)


# -- item 4: a refused «Активен» marks what is missing and keeps the tick as not applied ---------------

def test_a_refused_activation_marks_the_missing_fields_and_keeps_the_tick(app, live, amo, account_id, admin):
    integration_id = connected_integration(app, account_id, amo)
    admin.goto(f"{live.url}/admin/integrations/{integration_id}/")
    admin.click("label[for=is_active]")
    admin.click("[data-testid=save]")
    admin.wait_for_selector("[data-testid=activation-errors]")
    assert admin.is_checked("[data-testid=is-active]")
    assert "не применено" in admin.inner_text("[data-testid=active-not-applied]")
    assert "is-invalid" in admin.get_attribute("[data-testid=session-field]", "class")
    assert "is-invalid" in admin.get_attribute("[data-testid=default-campaign]", "class")
    targets = admin.locator("[data-activation-target]").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert targets == ["#step-3", "#default_campaign_id"]
    admin.click("[data-activation-target=default_campaign_id]")
    assert admin.evaluate("location.hash") == "#default_campaign_id"
    with app.extensions["chatsource.services"].session_factory() as session:
        assert session.get(Integration, integration_id).is_active is False  # not applied indeed


# -- item 5: a reconnect refused in amoCRM; the redirect flow comes back by itself, without the code ----

def test_a_refused_reconnect_says_the_old_connection_works_and_comes_back_without_the_code(
        app, live, amo, account_id, browser_context):
    integration_id = connected_integration(app, account_id, amo)
    amo.state.update_settings({"auto_approve": False})
    make_user(app, "admin@example.ru", PASSWORD)
    context = browser_context()
    context.add_init_script("window.open = function () { return null; };")  # popups blocked: this window
    page = context.new_page()
    addresses = []
    page.on("framenavigated", lambda frame: addresses.append(frame.url) if frame == page.main_frame else None)
    sign_in(page, live.url, f"/admin/integrations/{integration_id}/")
    page.click("[data-testid=status-connect]")
    page.wait_for_url(lambda url: url.startswith(amo.url + "/oauth"))
    page.click("button[value=deny]")
    page.wait_for_url(f"{live.url}/admin/integrations/{integration_id}/")  # back by itself
    banner = page.inner_text(".alert-danger:not(.d-none)")
    assert "Прежнее подключение по-прежнему работает" in banner
    assert page.inner_text("[data-testid=status]") == "подключена"
    # The standalone result page dropped amoCRM's answer from its address at once, before going back.
    callback = [url for url in addresses if url.startswith(live.url + "/oauth/amocrm/callback")]
    assert callback[-1] == live.url + "/oauth/amocrm/callback", addresses
    assert not any("error=" in url or "state=" in url for url in addresses if url.startswith(live.url + "/admin"))


# -- item 2: drafts are drafts, and every integration can be deleted ------------------------------------

def test_a_draft_left_by_an_abandoned_consent_is_named_and_deleted_with_confirmation(app, live, amo, account_id, admin):
    amo.state.update_settings({"auto_approve": False})
    page = admin
    page.goto(f"{live.url}/admin/integrations/new")
    page.fill("#name", "Брошенный")
    page.fill("#amocrm_url", amo.url)
    page.fill("#token_url", amo.url + "/oauth2/access_token")
    with page.expect_popup() as popup_info:
        page.click("[data-testid=connect]")
    popup_info.value.close()  # the admin closed amoCRM's consent page
    page.goto(f"{live.url}/admin/integrations/")
    assert "черновик" in page.inner_text("[data-testid=badges]")
    [draft] = integration_rows(app)
    dialogs = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.click(f"[data-testid=delete-draft-{draft.id}]")
    assert dialogs == ["Удалить черновик «Брошенный»?"] and len(integration_rows(app)) == 1  # dismissed: kept
    page.once("dialog", lambda d: d.accept())
    page.click(f"[data-testid=delete-draft-{draft.id}]")
    page.wait_for_selector("text=Черновик «Брошенный» удалён")
    assert integration_rows(app) == []


def test_deleting_a_connected_integration_keeps_its_requests_and_removes_its_webhook(app, live, amo, account_id, admin):
    from datetime import datetime, timezone

    from tests.helpers.report_data import add_request

    integration_id = connected_integration(app, account_id, amo)
    assert len(amo.state.list_webhooks(None)) == 1
    with app.extensions["chatsource.services"].session_factory() as session:
        add_request(session, account_id, integration_id, datetime.now(timezone.utc), contact_name="Анна Смирнова")
        session.commit()
    page = admin
    page.goto(f"{live.url}/admin/integrations/{integration_id}/")
    page.once("dialog", lambda d: d.accept())
    page.click("[data-testid=delete]")
    page.wait_for_url(f"{live.url}/admin/integrations/")
    said = page.inner_text(".alert-success")
    assert "Интеграция «Основной amoCRM» удалена" in said and "(1)" in said and "webhook удалён из amoCRM" in said
    assert amo.state.list_webhooks(None) == []
    assert "Основной amoCRM" not in page.inner_text(".cs-page")
    assert page.goto(f"{live.url}/admin/integrations/{integration_id}/").status == 404
    page.goto(f"{live.url}/admin/requests/")
    assert "Анна Смирнова" in page.content()


# -- item 10: one time zone, the account's, named once per page ----------------------------------------

def test_every_screen_shows_times_in_the_account_time_zone_named_once(app, live, amo, account_id, admin):
    from datetime import datetime, timezone

    from tests.helpers.report_data import add_event, add_request

    moment = datetime(2026, 11, 24, 7, 5, tzinfo=timezone.utc)  # 10:05 in Moscow, 12:05 in Yekaterinburg
    integration_id = connected_integration(app, account_id, amo, last_event_at=moment)
    with app.extensions["chatsource.services"].session_factory() as session:
        add_request(session, account_id, integration_id, moment, contact_name="Анна Смирнова")
        add_event(session, account_id, integration_id, received_at=moment)
        session.commit()
    page = admin
    page.goto(f"{live.url}/admin/integrations/{integration_id}/")
    assert "10:05" in page.inner_text("[data-testid=last-event]")  # Europe/Moscow, the default
    page.click("[data-testid=time-zone]")
    page.select_option("[data-testid=time-zone-select]", "Asia/Yekaterinburg")
    page.click("[data-testid=save-settings]")
    page.wait_for_selector("text=Часовой пояс сохранён")
    screens = {
        f"/admin/integrations/{integration_id}/": "[data-testid=last-event]",
        "/admin/events/": ".model-list",
        "/admin/requests/?date_from=2026-11-24&date_till=2026-11-24": "body",
        "/admin/?date_from=2026-11-24&date_till=2026-11-24": None,
        "/admin/sites/": None,
    }
    for url, where in screens.items():
        page.goto(live.url + url)
        text = page.inner_text("body")
        assert text.count("Asia/Yekaterinburg") == 1, (url, text.count("Asia/Yekaterinburg"))
        assert "UTC" not in text and "Europe/Moscow" not in text, url
        if where:
            assert "12:05" in page.inner_text(where), url


# -- item 11: date fields in the UI's language, whatever the browser's --------------------------------

def test_date_fields_follow_the_page_language_not_the_browser(app, live, browser_context):
    make_user(app, "admin@example.ru", PASSWORD)
    context = browser_context(locale="en-US")  # an English browser, the Russian admin
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live.url, "/admin/requests/?date_from=2026-11-03&date_till=2026-11-24")
    assert page.input_value("#f-date_from") == "03.11.2026"  # not 11/03/2026
    page.click("#f-date_from")
    calendar = page.locator("#f-date_from ~ [data-testid=calendar]")
    assert "ноябрь 2026" in calendar.inner_text().lower() and "пн" in calendar.inner_text().lower()
    calendar.locator("[data-date='2026-11-10']").click()
    assert page.input_value("#f-date_from") == "10.11.2026"
    page.fill("#f-date_till", "20.11.2026")
    page.locator("#f-date_till").press("Enter")
    page.wait_for_url(lambda url: "date_from=2026-11-10" in url and "date_till=2026-11-20" in url)  # ISO to the server
    page.click("[data-testid=lang-en]")
    page.wait_for_load_state()
    assert page.input_value("#f-date_from") == "2026-11-10"
    page.click("#f-date_from")
    assert "november 2026" in page.locator("#f-date_from ~ [data-testid=calendar]").inner_text().lower()
    assert errors == []


# -- item 17: the sign-in page speaks to a marketer; a favicon; a success resets the count; replay menu ---

def test_the_sign_in_page_a_favicon_and_a_success_that_forgives_earlier_mistakes(app, live, browser_context):
    from core.access.login import FREE_FAILURES
    from core.models import User

    make_user(app, "admin@example.ru", PASSWORD)
    page = browser_context().new_page()
    page.goto(f"{live.url}/login")
    note = page.inner_text("[data-testid=no-access]")
    assert "администратора" in note and "flask" not in note and "EMAIL" not in note
    icon = page.get_attribute("link[rel=icon]", "href")
    assert page.request.get(live.url + icon).ok and page.request.get(live.url + "/favicon.ico").ok

    def attempts(wrong: int):
        for _ in range(wrong):
            page.goto(f"{live.url}/login")
            page.fill("#email", "admin@example.ru")
            page.fill("#password", "not the password")
            page.click("[data-testid=login]")
            page.wait_for_selector("[data-testid=login-error]")
        sign_in(page, live.url)
        assert "/login" not in page.url
        page.click("text=Выйти")
        page.wait_for_url(lambda url: "/login" in url)

    attempts(FREE_FAILURES - 1)
    attempts(FREE_FAILURES - 1)  # would be over the free ones had the success not reset the count
    with app.extensions["chatsource.services"].session_factory() as session:
        assert session.scalar(sa.select(User.failed_logins)) == 0


def test_replay_is_in_the_menu_only_when_there_is_something_to_replay(app, live, amo, account_id, admin):
    from tests.helpers.report_data import add_event

    integration_id = connected_integration(app, account_id, amo)
    admin.goto(f"{live.url}/admin/")
    assert admin.locator("a[href='/admin/replay/']").count() == 0
    with app.extensions["chatsource.services"].session_factory() as session:
        add_event(session, account_id, integration_id, status="failed")
        session.commit()
    admin.reload()
    assert admin.locator(".navbar a[href='/admin/replay/']").count() == 1  # the menu item
    assert admin.locator("[data-testid=health] a[href='/admin/replay/']").count() == 1  # the dashboard's button


# -- item 15: CSV — numbers and phones as they are; two exports, two file names ------------------------

def test_the_two_csv_exports_have_their_own_names_and_phones_stay_as_they_are(app, live, amo, account_id, admin):
    import csv
    import io
    from datetime import datetime, timezone

    from tests.helpers.report_data import add_request

    integration_id = connected_integration(app, account_id, amo)
    with app.extensions["chatsource.services"].session_factory() as session:
        add_request(session, account_id, integration_id, datetime.now(timezone.utc), contact_name="=HYPERLINK(1)",
                    phone="+79161234567")
        session.commit()
    admin.goto(f"{live.url}/admin/requests/")
    names, rows = [], []
    for button, delimiter in (("[data-testid=export-csv]", ","), ("[data-testid=export-csv-excel]", ";")):
        with admin.expect_download() as download:
            admin.click(button)
        names.append(download.value.suggested_filename)
        body = open(download.value.path(), encoding="utf-8-sig").read()
        rows.append(next(csv.DictReader(io.StringIO(body), delimiter=delimiter)))
    assert names[0].endswith(".csv") and not names[0].endswith("-excel.csv") and names[1].endswith("-excel.csv")
    for row in rows:
        assert row["Телефон"] == "+79161234567" and row["Имя контакта"] == "'=HYPERLINK(1)"


# -- item 13: two sites with the same domain are refused ---------------------------------------------

def test_a_second_site_with_the_same_domain_is_refused(app, live, admin):
    for name, domain in (("Магазин диванов", "divan.example.ru"), ("Диваны — копия", "https://www.divan.example.ru/sale")):
        admin.goto(f"{live.url}/admin/sites/new/")
        admin.fill("#name", name)
        admin.fill("#domain", domain)
        admin.click("input[type=submit][value='Сохранить']")
    admin.wait_for_selector("text=уже у сайта «Магазин диванов»")
    admin.goto(f"{live.url}/admin/sites/")
    assert "Диваны — копия" not in admin.content()


# -- item 14: «Атрибуция» beside «Рекламная кампания», its reason whole, columns chosen per user -------

def test_the_requests_table_puts_attribution_by_the_campaign_and_remembers_columns(app, live, amo, account_id, admin):
    from datetime import datetime, timezone

    from tests.helpers.report_data import add_request

    reason = "сессия не найдена: в сделке нет значения поля «Сессия UIS», кампания по умолчанию интеграции «Основной amoCRM»"
    integration_id = connected_integration(app, account_id, amo)
    with app.extensions["chatsource.services"].session_factory() as session:
        add_request(session, account_id, integration_id, datetime.now(timezone.utc), attribution="default",
                    attribution_reason=reason)
        session.commit()
    page = admin
    page.goto(f"{live.url}/admin/requests/")
    headers = page.locator("[data-testid=report-table] thead th").all_inner_texts()
    names = [h.replace("▲", "").replace("▼", "").strip() for h in headers]
    assert names.index("Атрибуция") == names.index("Рекламная кампания") + 1
    shown = page.locator("td[data-column=attribution] .cs-reason")
    assert shown.inner_text() == reason
    box = shown.bounding_box()
    assert shown.evaluate("el => el.scrollWidth <= el.clientWidth + 1") and box["height"] > 20  # wrapped, not cut
    page.click("[data-testid=columns] summary")
    with page.expect_response(lambda r: r.url.endswith("/admin/requests/columns")):
        page.uncheck("[data-column-choice=email] input")
    with page.expect_response(lambda r: r.url.endswith("/admin/requests/columns")):
        page.click("[data-column-choice=integration] [data-move=up]")
    page.reload()  # remembered (on the server: tests/browser/test_admin_last_items.py opens another browser)
    names = [h.replace("▲", "").replace("▼", "").strip()
             for h in page.locator("[data-testid=report-table] thead th:visible").all_inner_texts()]
    assert "E-mail" not in names and not page.is_visible("td[data-column=email]")
    assert names.index("Интеграция") < names.index("Новое или повторное")  # moved up past the column before it
    page.click("[data-testid=columns] summary")
    page.click(".cs-columns-reset")
    assert page.is_visible("td[data-column=email]")


# -- item 12: what tracking received and refused, per site; sessions looked up by id ------------------

VISITOR_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")


def test_the_sites_page_shows_the_last_page_view_and_the_last_refusal_and_sessions_can_be_found(app, live, account_id, admin):
    from core.tracking import catalog
    from tests.helpers import http as loopback

    with app.extensions["chatsource.services"].session_factory() as session:
        site = catalog.create_site(session, account_id, "Магазин", "shop.example.ru")
        session.commit()
        key = site.site_key

    def hit(origin, user_agent=VISITOR_UA, page="https://shop.example.ru/sofa/?utm_source=yandex"):
        return loopback.post(f"{live.url}/t/collect", json={"site_key": key, "url": page},
                             headers={"Origin": origin, "User-Agent": user_agent}, timeout=10)

    admin.goto(f"{live.url}/admin/sites/")
    assert "пока нет" in admin.inner_text("[data-testid=last-view]")
    accepted = hit("https://shop.example.ru")
    assert accepted.status_code == 200
    session_id = accepted.json()["session_id"]
    assert hit("https://evil.example.com").status_code == 403
    admin.reload()
    assert "пока нет" not in admin.inner_text("[data-testid=last-view]")
    assert "страница другого домена: https://evil.example.com" in admin.inner_text("[data-testid=last-refused]")
    hit("https://shop.example.ru", user_agent="Googlebot/2.1 (+http://www.google.com/bot.html)")
    admin.reload()
    assert "бот (не учитывается)" in admin.inner_text("[data-testid=last-refused]")

    admin.goto(f"{live.url}/admin/sessions/")
    admin.goto(f"{live.url}/admin/sessions/?flt0_0={session_id}")
    rows = admin.locator("table.model-list tbody tr")
    assert rows.count() == 1 and str(session_id) in rows.inner_text() and "Магазин" in rows.inner_text()
    assert admin.locator("a[href*='/admin/sessions/edit'], a[href*='/admin/sessions/new']").count() == 0  # read-only
