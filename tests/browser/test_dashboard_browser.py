"""A marketer opens the dashboard in a real browser (the system Chromium, headless) and sees where chats
come from without reading a table; follows a warning to its fix, a channel to its rows in «Сырые
данные → Обращения и цели», downloads the CSV, and replays the failed events watching the progress.

Data: a realistic month and a half of a furniture shop (tests/helpers/dashboard_data.py). Screenshots go to
test-artifacts/browser/dashboard-*.png; `UPDATE_SCREENSHOTS=1` also refreshes the README's
docs/screenshots/dashboard.png. Runs once, on PostgreSQL when configured.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil

import pytest
import sqlalchemy as sa

from core.models import WebhookEvent
from core.platform.settings import PROJECT_ROOT
from tests.helpers.admin_helpers import PASSWORD, make_user
from tests.helpers.dashboard_data import seed_demo

pytestmark = pytest.mark.e2e
DOCS_SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


@pytest.fixture
def demo(app, services, account_id):
    with services.session_factory() as session:
        data = seed_demo(session, services, account_id)
        session.commit()
    make_user(app, "marketing@example.ru", PASSWORD)
    return data


def test_a_marketer_reads_the_dashboard_and_follows_it(chromium, screenshots, app, live, demo):
    context = chromium.new_context(locale="ru-RU", viewport={"width": 1440, "height": 900}, reduced_motion="reduce",
                                   accept_downloads=True)
    context.set_default_timeout(10_000)
    errors = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    screenshots.prefix = "dashboard-"
    try:
        _walk(page, screenshots, live.url, app, demo)
    except Exception:
        page.screenshot(path=str(screenshots.folder / "dashboard-failed.png"), full_page=True)
        raise
    finally:
        context.close()
    assert errors == [], "the dashboard threw JavaScript errors"


def charts_ready(page):
    page.wait_for_selector("html[data-charts-ready='1']", state="attached")
    for canvas in ("chart-channels", "chart-attribution", "chart-breakdown", "chart-session-share"):
        painted = page.evaluate(
            """id => { const c = document.getElementById(id); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                       let n = 0; for (let i = 3; i < d.length; i += 4 * 97) if (d[i] > 0) n++; return n; }""", canvas)
        assert painted > 20, f"{canvas} is blank"


def kpi_total(page) -> int:
    return int(page.get_attribute("[data-testid=kpi-total] .cs-kpi-value", "data-value"))


def shown_days(page) -> list[str]:
    """The first and last day the dashboard shows (days of the account's zone, Moscow)."""
    return page.evaluate("(() => { const d = JSON.parse(document.getElementById('cs-dashboard-data').textContent).days;"
                         " return [d[0], d[d.length - 1]]; })()")


def _walk(page, shot, base, app, demo):
    page.goto(base + "/admin/")
    page.fill("#email", "marketing@example.ru")
    page.fill("#password", PASSWORD)
    page.click("[data-testid=login]")
    page.wait_for_url(base + "/admin/")
    charts_ready(page)

    # --- the first page: where chats come from, the number to watch, the alarms --------------------
    assert page.inner_text("h4") == "Откуда приходят чаты"
    month_total, month_days = kpi_total(page), shown_days(page)
    assert 500 < month_total < demo.total
    session_share = page.inner_text("[data-testid=kpi-session] .cs-kpi-value")
    assert re.fullmatch(r"\d\d(,\d)?%", session_share)
    assert page.inner_text("[data-testid=legend-attribution] tr[data-key=session] td:last-child") == session_share
    warning = page.locator("[data-warning=webhook_disabled]")
    assert "Филиал в Санкт-Петербурге" in warning.inner_text() and "отключил вебхук" in warning.inner_text()
    assert page.locator("[data-warning=events_failed]").count() == 1
    path = shot(page, "ru", full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / "dashboard.png")

    # --- a shorter period; ad campaigns ↔ sources ---------------------------------------------------
    page.click("[data-testid=preset-7]")
    page.wait_for_url(re.compile(r"days=7"))
    charts_ready(page)
    week_total = kpi_total(page)
    assert 0 < week_total < month_total
    assert page.evaluate("JSON.parse(document.getElementById('cs-dashboard-data').textContent).days.length") == 7
    assert page.is_visible("[data-testid=legend-campaign]") and not page.is_visible("[data-testid=legend-source]")
    page.click("[data-breakdown=source]")
    assert page.is_visible("[data-testid=legend-source]") and not page.is_visible("[data-testid=legend-campaign]")
    assert "Прямые заходы" in page.inner_text("[data-testid=legend-source]")

    # --- a channel → its rows in the Raw data report ------------------------------------------------
    whatsapp = int(page.get_attribute("[data-testid=legend-channel] tr[data-key=whatsapp] td[data-total]", "data-total"))
    page.click("[data-testid=legend-channel] tr[data-key=whatsapp] a")
    page.wait_for_url(re.compile(r"/admin/requests/\?.*channel=whatsapp"))
    assert int(page.get_attribute("[data-testid=report-total]", "data-total")) == whatsapp
    assert page.input_value("[data-testid=filter-channel]") == "whatsapp"
    assert set(page.locator("[data-testid=report-table] tbody td:nth-child(2)").all_inner_texts()) == {"WhatsApp"}
    page.click("th[data-column=contact_name] a")
    page.wait_for_url(re.compile(r"sort=contact_name"))
    names = page.locator("[data-testid=report-table] tbody td:nth-child(3)").all_inner_texts()
    assert names == sorted(names) and len(names) == min(whatsapp, 50)
    page.fill("[data-testid=filter-q]", names[0])
    page.click("[data-testid=apply]")
    page.wait_for_url(re.compile(r"q="))
    assert names[0] in page.inner_text("[data-testid=report-table] tbody tr:first-child")
    shot(page, "report")
    page.click("[data-testid=reset]")
    page.select_option("[data-testid=filter-channel]", "avito")
    page.click("[data-testid=apply]")
    page.wait_for_url(re.compile(r"channel=avito"))
    total = int(page.get_attribute("[data-testid=report-total]", "data-total"))
    with page.expect_download() as download_info:
        page.click("[data-testid=export-csv]")
    body = open(download_info.value.path(), encoding="utf-8-sig").read()
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert len(rows) == total > 0 and {r["Канал"] for r in rows} == {"Авито"}
    assert download_info.value.suggested_filename.startswith("requests_")

    # --- a warning → its fix: replay the failed events and watch them finish -----------------------
    page.goto(base + "/admin/")
    page.click("[data-warning=events_failed] a:has-text('Повторить события с ошибкой')")
    page.wait_for_url(re.compile(r"/admin/replay/\?integration_id=\d+&statuses=failed"))
    page.click("[data-testid=replay-submit]")
    page.wait_for_url(re.compile(r"/admin/replay/\?run=\d+"))
    assert "3 события снова поставлены в очередь." in page.content()
    run = page.locator("[data-testid=replay-runs] tr[data-run]").first
    assert run.get_attribute("data-finished") == "false" and run.locator("[data-field=total]").inner_text() == "3"
    with app.extensions["chatsource.services"].session_factory() as session:  # what the worker does meanwhile
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.replay_run_id.is_not(None)).values(status="done"))
        session.commit()
    page.wait_for_selector("[data-testid=replay-runs] tr[data-run][data-finished=true]")  # refreshed by itself
    assert run.locator("[data-field=done]").inner_text() == "3" and "100%" in run.inner_text()
    shot(page, "replay")

    # --- the integration page carries the same warning ----------------------------------------------
    page.goto(base + "/admin/")
    page.click("[data-warning=webhook_disabled] a")
    page.wait_for_url(re.compile(r"/admin/integrations/\d+/#step-2"))
    assert page.locator("[data-warning=webhook_disabled]").count() == 1

    # --- English ----------------------------------------------------------------------------------------
    page.goto(base + "/admin/")
    page.click("[data-testid=lang-en]")
    page.wait_for_function("document.title.startsWith('Dashboard')")
    charts_ready(page)
    assert page.inner_text("h4") == "Where chats come from"
    if shown_days(page) == month_days:  # else Moscow's midnight passed during the walk: the 30 days moved on
        assert kpi_total(page) == month_total
    shot(page, "en")
