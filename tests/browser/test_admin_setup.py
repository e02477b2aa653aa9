"""A new admin sets up the amoCRM integration in a real browser (the system Chromium, headless),
against the amoCRM sandbox through the real redirects, and sees the first request arrive.

Sign in (and fail to) → add a site and an ad campaign with a rule → «Подключить учетную запись» →
YOURDOMAIN left in place is explained → «Подключить»: amoCRM's consent page in a popup → back on
the integration, connected → pick the session field → switch the traffic type (and back, input
kept) → map two messengers → «Активен» too early: the reasons → choose the default, «Активен»,
«Сохранить» → «Webhook url» and «Скрипт для вашего сайта» with copy buttons → «Проверить
интеграцию» → a chat closed in the sandbox becomes a request in the admin → switch to English.

Every step is saved as test-artifacts/browser/NN-step.png. `UPDATE_SCREENSHOTS=1` also refreshes the
two README screenshots in docs/screenshots/. The walk runs once, on PostgreSQL when configured.
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from core.platform.settings import PROJECT_ROOT
from core.tracking import catalog
from tests.helpers.admin_helpers import PASSWORD, make_user

pytestmark = pytest.mark.e2e
DOCS_SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


@pytest.fixture
def site(app, account_id):
    """What an account already has besides what the test creates by hand."""
    with app.extensions["chatsource.services"].session_factory() as session:
        source = catalog.create_source(session, account_id, "Мессенджеры")
        session.commit()
        return source.id


def test_a_new_admin_sets_up_amocrm_in_the_browser(chromium, screenshots, app, live, amo, account_id, site):
    from web import start_embedded_worker

    make_user(app, "admin@example.ru", PASSWORD)
    start_embedded_worker(app)  # chats are processed in the background, as in `make run`
    amo.state.update_settings({"auto_approve": False})  # the real consent page, «Разрешить»
    for n in range(1, 56):  # more than amoCRM's 50 fields per page
        amo.state.add_custom_field("leads", f"Поле {n:02d}", "text")

    context = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    context.set_default_timeout(15_000)
    errors = []
    context.on("page", lambda p: p.on("pageerror", lambda exc: errors.append(f"{p.url}: {exc}")))
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    shot = screenshots
    try:
        _walk(page, context, shot, live.url, amo)
    except Exception:
        page.screenshot(path=str(shot.folder / "failed-walk.png"), full_page=True)  # where it stopped
        raise
    finally:
        context.close()
    assert errors == [], "the admin's pages threw JavaScript errors"


def _walk(page, context, shot, base, amo):
    # --- sign in, and fail to ----------------------------------------------------------------------
    page.goto(base + "/admin/")
    assert "/login" in page.url
    shot(page, "login")
    page.fill("#email", "admin@example.ru")
    page.fill("#password", "not the password")
    page.click("[data-testid=login]")
    assert "Неверный e-mail или пароль" in page.inner_text("[data-testid=login-error]")
    shot(page, "login-failed")
    page.fill("#password", PASSWORD)
    page.click("[data-testid=login]")
    page.wait_for_url(base + "/admin/")
    assert "Подключить учетную запись" in page.content()
    shot(page, "home")

    # --- dictionaries: a site, and ad campaigns (one with a rule, through the condition editor) -------
    page.goto(base + "/admin/sites/new/")
    page.fill("#name", "Магазин диванов")
    page.fill("#domain", "https://www.divan.example.ru/")
    page.click("input[type=submit][value='Сохранить']")
    page.wait_for_selector("[data-testid=tracking-code], code")
    assert "divan.example.ru" in page.content()
    shot(page, "site")
    for name, rule in (("Яндекс Директ", "yandex"), ("Без РК", None), ("Telegram-канал", None), ("WhatsApp-рассылка", None)):
        page.goto(base + "/admin/campaigns/new/")
        page.fill("#name", name)
        page.select_option("#site_id", label="Магазин диванов (divan.example.ru)")
        if rule:
            page.click(".cs-add-group")
            page.select_option(".cs-param", "utm_source")
            page.select_option(".cs-op", "regex")
            page.fill(".cs-value", "yandex(")  # a broken regex: a form error, not a 500
            page.click("input[type=submit][value='Сохранить']")
            page.wait_for_selector(".cs-cond-editor .cs-value.is-invalid")  # the condition at fault is marked
            assert "регулярное выражение с ошибкой" in page.inner_text(".invalid-feedback")
            assert "Не удалось создать запись" in page.content()  # Flask-Admin's own Russian, compiled fresh
            shot(page, "campaign-bad-regex")
            page.fill(".cs-value", rule)
            page.select_option(".cs-op", "eq")
        page.click("input[type=submit][value='Сохранить']")
        page.wait_for_url(lambda url: url.split("?")[0].endswith("/admin/campaigns/"))
    page.goto(base + "/admin/campaigns/")
    shot(page, "campaigns")

    # --- step 1: «Подключить учетную запись», YOURDOMAIN left in place ------------------------------
    page.goto(base + "/admin/")
    page.click("[data-testid=connect-account]")
    assert page.input_value("#amocrm_url") == "https://YOURDOMAIN.amocrm.ru"
    page.fill("#name", "Основной amoCRM")
    page.click("[data-testid=connect]")
    page.wait_for_selector("[data-testid=connect-problem]")
    assert "Замените YOURDOMAIN" in page.inner_text("[data-testid=connect-problem]")
    shot(page, "yourdomain-left")

    # --- «Подключить»: amoCRM's consent in a popup, back on the integration --------------------------
    page.fill("#amocrm_url", amo.url)
    page.fill("#token_url", amo.url + "/oauth2/access_token")
    with page.expect_popup() as popup_info:
        page.click("[data-testid=connect]")
    popup = popup_info.value
    popup.wait_for_selector("button[value=allow]")
    shot(popup, "amocrm-consent")
    popup.click("button[value=allow]")
    page.wait_for_selector("[data-testid=connected-account]")
    assert "Песочница" in page.inner_text("[data-testid=connected-account]") or "sandbox" in page.inner_text("[data-testid=connected-account]")
    assert "зарегистрирован в amoCRM" in page.inner_text("[data-testid=webhook-state]")
    shot(page, "connected")

    # --- step 3: the session field (from every page of amoCRM's fields) -----------------------------
    labels = page.locator("[data-testid=session-field] option").all_inner_texts()
    assert "Поле 55" in labels and "Сессия UIS" in labels
    page.select_option("[data-testid=session-field]", label="Сессия UIS")

    # --- step 4: the traffic type switches the pickers and keeps what was chosen --------------------
    page.click("label[for=traffic-source]")
    assert page.is_visible("[data-testid=default-source]") and not page.is_visible("[data-testid=default-campaign]")
    page.select_option("[data-testid=default-source]", label="Мессенджеры")
    page.locator("#step-4").scroll_into_view_if_needed()
    shot(page, "traffic-type-source")
    page.click("label[for=traffic-campaign]")
    assert page.is_visible("[data-testid=default-campaign]") and not page.is_visible("[data-testid=default-source]")
    page.click("label[for=traffic-source]")
    assert page.input_value("[data-testid=default-source]") != ""  # nothing lost by switching
    page.click("label[for=traffic-campaign]")

    # --- step 5: two messengers ---------------------------------------------------------------------
    page.select_option("[data-testid=map-campaign-telegram]", label="Telegram-канал (Магазин диванов)")
    page.select_option("[data-testid=map-campaign-waba]", label="WhatsApp-рассылка (Магазин диванов)")
    page.locator("#step-5").scroll_into_view_if_needed()
    shot(page, "messengers")

    # --- step 6: «Активен» too early (no default campaign yet) ---------------------------------------
    page.click("label[for=is_active]")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=activation-errors]")
    assert "выберите рекламную кампанию по умолчанию" in page.inner_text("[data-testid=activation-errors]")
    assert page.input_value("[data-testid=map-campaign-telegram]") != ""  # the rest was saved
    page.locator("#step-6").scroll_into_view_if_needed()
    shot(page, "activate-too-early")

    page.select_option("[data-testid=default-campaign]", label="Без РК (Магазин диванов)")
    if not page.is_checked("[data-testid=is-active]"):
        page.click("label[for=is_active]")
    page.click("[data-testid=save]")
    page.wait_for_url(lambda url: url.endswith("#step-7"))
    assert "Настройки сохранены" in page.content()
    script = page.input_value("[data-testid=site-script]")
    assert "setMeta" in script
    webhook_url = page.input_value("[data-testid=webhook-url]")
    assert webhook_url.startswith(base + "/webhooks/amocrm/")

    # README screenshots of the setup screen: the top (steps 1–2 and the status panel), the bottom (5–7).
    page.evaluate("window.scrollTo(0, 0)")
    top = shot(page, "setup-top")
    page.evaluate("document.getElementById('step-7').scrollIntoView({block: 'end'})")
    bottom = shot(page, "setup-bottom")

    # --- step 7 and step 2: copy buttons -------------------------------------------------------------
    page.click("#step-7 .cs-copy-btn")
    page.wait_for_selector("#step-7 .cs-copied")
    assert page.evaluate("navigator.clipboard.readText()") == script
    page.click("#step-2 .cs-copy-btn")
    page.wait_for_function("navigator.clipboard.readText().then(t => t.includes('/webhooks/amocrm/'))")
    shot(page, "saved-script")

    # --- «Проверить интеграцию» ---------------------------------------------------------------------
    page.click("[data-testid=check]")
    page.wait_for_selector("[data-testid=checks]")
    results = {li.get_attribute("data-check"): li.get_attribute("data-ok") for li in page.locator("[data-testid=checks] li").all()}
    assert results["token"] == results["webhook"] == results["session_field"] == results["defaults"] == "passed"
    assert results["active"] == "passed" and results["last_talk"] == "pending"
    page.locator("#diagnostics").scroll_into_view_if_needed()
    shot(page, "check")

    # --- a chat closed in the sandbox becomes a request -----------------------------------------------
    sandbox = context.new_page()
    sandbox.goto(amo.url + "/")
    sandbox.fill("input[name=name]", "Анна Смирнова")
    sandbox.fill("input[name=phone]", "8 (916) 123-45-67")
    sandbox.select_option("select[name=origin]", "telegram")
    sandbox.click("button:has-text('Начать чат')")
    sandbox.click("button:has-text('Закрыть беседу')")
    sandbox.wait_for_selector("text=закрыта")
    shot(sandbox, "sandbox-chat-closed")
    sandbox.close()

    page.goto(base + "/admin/requests/")
    deadline = time.monotonic() + 20
    while "Анна Смирнова" not in page.content() and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    content = page.content()
    assert "Анна Смирнова" in content and "+79161234567" in content and "Telegram-канал" in content
    shot(page, "request-arrived")

    # --- English -------------------------------------------------------------------------------------
    page.click("[data-testid=lang-en]")
    page.wait_for_function("document.title.startsWith('Requests')")
    page.goto(base + "/admin/integrations/")
    page.click("text=Основной amoCRM")
    assert "Script for your site" in page.content() and "Messengers and sources" in page.content()
    shot(page, "english")

    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(top, DOCS_SCREENSHOTS / "setup-connect.png")
        shutil.copyfile(bottom, DOCS_SCREENSHOTS / "setup-script.png")


def test_connect_comes_back_in_the_same_window_when_popups_are_blocked(chromium, screenshots, app, live, amo):
    from core.integrations import settings as integrations

    _, account_id = make_user(app, "admin@example.ru", PASSWORD)
    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        row = integrations.create_integration(session, services, account_id, {"name": "Без всплывающих окон"})
        session.commit()
        integration_id = row.id
    amo.state.update_settings({"auto_approve": False})
    context = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script("window.open = function () { return null; };")  # a popup blocker
    page = context.new_page()
    try:
        page.goto(f"{live.url}/login?next=/admin/integrations/{integration_id}/")
        page.fill("#email", "admin@example.ru")
        page.fill("#password", PASSWORD)
        page.click("[data-testid=login]")
        page.fill("#amocrm_url", amo.url)
        page.fill("#token_url", amo.url + "/oauth2/access_token")
        page.click("[data-testid=connect]")
        page.wait_for_url(lambda url: url.startswith(amo.url + "/oauth"))  # amoCRM in this very window
        page.click("button[value=allow]")
        page.wait_for_url(f"{live.url}/admin/integrations/{integration_id}/")
        page.wait_for_selector("[data-testid=connected-account]")
        assert "amoCRM подключён" in page.content()
        screenshots.prefix = "redirect-"
        screenshots(page, "connected-without-popup")
    finally:
        context.close()
