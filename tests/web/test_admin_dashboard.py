"""The dashboard (the admin's first page), its alarms on the dashboard and on the integration page,
and replay by filter from the admin: the numbers match the data, the warnings lead to their fix,
a replay re-queues only what matches and only once, and nothing crosses accounts."""
from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.inbox import worker_health
from core.integrations import settings as integrations
from core.models import Integration, ReplayRun, WebhookEvent
from core.platform.db import utcnow
from tests.helpers.admin_helpers import csrf_from, signed_in, text
from tests.helpers.report_data import add_event, add_request, connect, seed_catalog

MSK = timezone(timedelta(hours=3))


def at(day: int, hour: int = 12, minute: int = 0, month: int = 10) -> datetime:
    """A moment in Moscow time, October 2026 by default."""
    return datetime(2026, month, day, hour, minute, tzinfo=MSK)


@pytest.fixture
def admin(app, account_id):
    return signed_in(app)


@pytest.fixture
def month(services, account_id):
    """1–10 October 2026 (Moscow): each day i telegram × i (session, a campaign and a source), site chat × 2
    (default, none), WhatsApp × 1 on even days (messenger, the other campaign); one more telegram at 23:30
    on the 10th and one at 00:10 on the 11th (outside); five requests in the ten days before."""
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        iid = cat.integration_id
        for day in range(1, 11):
            for n in range(day):
                add_request(session, account_id, iid, at(day, 10, n), channel="telegram", attribution="session",
                            campaign_id=cat.campaign_id, source_id=cat.source_id)
            for n in range(2):
                add_request(session, account_id, iid, at(day, 15, n), channel="site_chat", attribution="default")
            if day % 2 == 0:
                add_request(session, account_id, iid, at(day, 18), channel="whatsapp", attribution="messenger",
                            campaign_id=cat.other_campaign_id)
        add_request(session, account_id, iid, at(10, 23, 30), channel="telegram", attribution="session", campaign_id=cat.campaign_id,
                    source_id=cat.source_id)
        add_request(session, account_id, iid, at(11, 0, 10), channel="telegram", attribution="session")
        for day in range(21, 26):
            add_request(session, account_id, iid, at(day, month=9), channel="telegram", attribution="session")
        session.commit()
        return cat


def chart_data(page: str) -> dict:
    raw = re.search(r'<script type="application/json" id="cs-dashboard-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(raw)


def legend(page: str, testid: str) -> dict[str, int]:
    table = page[page.index(f'data-testid="{testid}"'):]
    table = table[:table.index("</table>")]
    return {key: int(total) for key, total in re.findall(r'<tr data-key="([^"]+)".*?data-total="(\d+)"', table, re.S)}


def kpi(page: str, name: str) -> str:
    return re.search(rf'data-testid="kpi-{name}">.*?class="cs-kpi-value" data-value="([^"]*)"', page, re.S).group(1)


def test_the_dashboard_shows_counts_that_match_the_data(admin, client, api, month):
    response = admin.get("/admin/?date_from=2026-10-01&date_till=2026-10-10")
    assert response.status_code == 200
    page = text(response)
    assert kpi(page, "total") == "81"
    assert legend(page, "legend-channel") == {"telegram": 56, "site_chat": 20, "whatsapp": 5}
    assert legend(page, "legend-attribution") == {"session": 56, "default": 20, "messenger": 5}
    assert legend(page, "legend-campaign") == {str(month.campaign_id): 56, "none": 20, str(month.other_campaign_id): 5}
    assert legend(page, "legend-source") == {str(month.source_id): 56, "none": 25}
    assert kpi(page, "session") == "69.1" and "69,1%" in page  # 56 of 81, the number to watch
    assert kpi(page, "default") == "24.7" and kpi(page, "messenger") == "6.2"
    assert "к предыдущим 10 дн. (5)" in page and "▲ 1\xa0520%" in page

    data = chart_data(page)
    assert data["days"] == [f"2026-10-{d:02d}" for d in range(1, 11)]
    channels = {s["label"]: s["data"] for s in data["channel"]}
    assert channels == {"Telegram": [1, 2, 3, 4, 5, 6, 7, 8, 9, 11], "Онлайн-чат на сайте": [2] * 10,
                        "WhatsApp": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]}
    assert data["session_share"][0] == round(1 / 3 * 100, 1) and data["session_share"][9] == round(11 / 14 * 100, 1)
    assert [a["count"] for a in data["attribution"]] == [56, 5, 20]

    # The same numbers as the Data API's dashboard.
    body = client.get("/api/v1/dashboard", headers=api, query_string={"date_from": "2026-10-01", "date_till": "2026-10-10"}).get_json()
    assert body["total"] == 81 and body["attribution"]["counts"] == {"session": 56, "messenger": 5, "default": 20}
    assert {s["key"]: s["total"] for s in body["by_channel"]} == legend(page, "legend-channel")

    # Every series links to its rows in the Raw data report, which counts the same.
    link = html.unescape(re.search(r'<tr data-key="whatsapp">.*?<a href="([^"]+)"', page, re.S).group(1))
    assert "channel=whatsapp" in link and "date_from=2026-10-01" in link
    assert 'data-total="5"' in text(admin.get(link))
    one = text(admin.get(f"/admin/?date_from=2026-10-10&date_till=2026-10-10&integration_id={month.integration_id}"))
    assert kpi(one, "total") == "14"


def test_range_presets_and_bad_ranges(admin, month):
    today = datetime.now(MSK).date()
    for query, days in (("", 30), ("?days=7", 7), ("?days=90", 90)):
        page = text(admin.get("/admin/" + query))
        data = chart_data(page)
        assert len(data["days"]) == days and data["days"][-1] == today.isoformat()
        assert re.search(rf'class="btn btn-primary" data-testid="preset-{days}"', page)
    for query, message in (("?days=5", "Выберите 7, 30 или 90 дней или укажите даты."),
                           ("?date_from=2026-10-11&date_till=2026-10-01", "Дата начала позже даты окончания."),
                           ("?date_from=11.10.2026", "Укажите даты в виде 2026-11-24."),
                           ("?date_from=2024-01-01&date_till=2026-01-01", "Период длиннее 366 дней"),
                           ("?days=7&date_from=2026-10-01", "Выберите 7, 30 или 90 дней или укажите даты."),
                           ("?integration_id=abc", "Выберите интеграцию из списка.")):
        response = admin.get("/admin/" + query)
        assert response.status_code == 400, query
        assert message in text(response) and len(chart_data(text(response))["days"]) == 30, query


@pytest.fixture
def troubled(app, services, account_id):
    """Three integrations in trouble: «Основной» (webhook disabled by amoCRM, two failed events and one
    waiting for half an hour), «Старый» (amoCRM revoked the tokens; two parked events) and «Сайт» (the
    default share jumped: last week all default, the weeks before all session)."""
    now = utcnow()
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        main = session.get(Integration, cat.integration_id)
        main.webhook_disabled = True
        failed = [add_event(session, account_id, main.id, status="failed").id for _ in range(2)]
        add_event(session, account_id, main.id, status="received", received_at=now - timedelta(minutes=30))
        old = integrations.create_integration(session, services, account_id, {"name": "Старый amoCRM"})
        connect(old, services, "https://old.amocrm.ru")
        old.status = "needs_reauth"
        session.flush()
        for _ in range(2):
            add_event(session, account_id, old.id, status="parked")
        site = integrations.create_integration(session, services, account_id, {"name": "Сайт amoCRM"})
        connect(site, services, "https://site.amocrm.ru")
        session.flush()
        for n in range(25):
            add_request(session, account_id, site.id, now - timedelta(days=2, minutes=n), attribution="default")
            add_request(session, account_id, site.id, now - timedelta(days=10, minutes=n), attribution="session")
            add_request(session, account_id, site.id, now - timedelta(days=40, minutes=n), attribution="session")
        session.commit()
    # A worker runs (its heartbeat is fresh) but this backlog is stuck: the «backlog» warning, not «no_worker».
    worker_health.beat(None)
    yield {"main": main.id, "old": old.id, "site": site.id, "failed": failed}
    worker_health.forget_local_beat()


def warnings_of(page: str) -> dict[tuple[str, int], list[str]]:
    """(code, integration id) → the links of its fixes."""
    found = {}
    for code, iid, body in re.findall(r'data-warning="(\w+)" data-integration="(\d*)">(.*?)</div>\s*</div>', page, re.S):
        found[(code, int(iid))] = [html.unescape(u) for u in re.findall(r'href="([^"]+)"', body)]
    return found


def test_alarms_show_on_the_dashboard_with_the_way_to_fix_them(admin, troubled):
    main, old, site = troubled["main"], troubled["old"], troubled["site"]
    page = text(admin.get("/admin/"))
    found = warnings_of(page)
    assert set(found) == {("webhook_disabled", main), ("events_failed", main), ("backlog", main), ("needs_reauth", old),
                          ("default_spike", site)}
    assert found[("webhook_disabled", main)] == [f"/admin/integrations/{main}/#step-2"]
    assert found[("needs_reauth", old)] == [f"/admin/integrations/{old}/#step-1"]
    assert found[("events_failed", main)][0] == f"/admin/replay/?integration_id={main}&statuses=failed"
    assert "amoCRM отключил вебхук" in page and "amoCRM отозвал авторизацию" in page and "доля обращений «по умолчанию» выросла" in page
    assert re.search(r'alert-danger[^>]*data-warning="webhook_disabled"', page)  # errors first, in red
    assert page.index('data-warning="needs_reauth"') < page.index('data-warning="events_failed"')

    # Every fix opens, and the event lists are filtered the way the warning says.
    for links in found.values():
        for link in links:
            assert admin.get(link.split("#")[0]).status_code == 200, link
    failed_list = text(admin.get(found[("events_failed", main)][1]))
    assert failed_list.count('data-status="failed"') == 2 and 'data-status="parked"' not in failed_list
    spike = found[("default_spike", site)][0]
    assert f"integration_id={site}" in spike and "attribution=default" in spike
    assert 'data-total="25"' in text(admin.get(spike))

    # The health table says the same.
    row = page[page.index(f'<tr data-integration="{main}">'):]
    row = row[:row.index("</tr>")]
    assert "отключён amoCRM" in row and 'data-count="failed">ошибка: 2<' in row and 'data-count="pending">в очереди: 1<' in row


def test_an_integration_page_shows_its_own_warnings(admin, troubled):
    main_page = text(admin.get(f"/admin/integrations/{troubled['main']}/"))
    assert set(c for c, _i in warnings_of(main_page)) == {"webhook_disabled", "events_failed", "backlog"}
    assert set(c for c, _i in warnings_of(text(admin.get(f"/admin/integrations/{troubled['old']}/")))) == {"needs_reauth"}
    site = text(admin.get(f"/admin/integrations/{troubled['site']}/"))
    assert [c for c, _i in warnings_of(site)] == ["default_spike"] and "выросла до 100%" in site


def test_a_quiet_account_shows_how_to_start(admin):
    page = text(admin.get("/admin/"))
    assert 'data-testid="getting-started"' in page and 'data-testid="connect-account"' in page
    assert kpi(page, "total") == "0" and kpi(page, "session") == "" and "За этот период обращений нет." in page
    assert 'data-testid="warnings"' not in page and "<canvas" not in page


def test_the_dashboard_speaks_russian_and_english(admin, month):
    page = text(admin.get("/admin/?date_from=2026-10-01&date_till=2026-10-10"))
    for phrase in ("Откуда приходят чаты", "Обращения по дням и каналам", "Как определён источник обращений", "По сессии",
                   "главная цифра", "Доля по сессии по дням", "Сырые данные", "Дашборд", "01.10.2026 — 10.10.2026", "10 дней"):
        assert phrase in page, phrase
    admin.get("/lang/en")
    page = text(admin.get("/admin/?date_from=2026-10-01&date_till=2026-10-10"))
    for phrase in ("Where chats come from", "Requests per day by channel", "How requests were attributed", "Attributed by session",
                   "watch this", "Session share by day", "Raw data", "Dashboard", "Oct 1, 2026 — Oct 10, 2026", "10 days",
                   "Website chat", "69.1%"):
        assert phrase in page, phrase
    assert "Откуда" not in page and "Онлайн-чат" not in page
    assert chart_data(page)["text"]["session_share"] == "Session share"


def test_another_account_sees_none_of_it(app, month, troubled):
    b = signed_in(app, email="b@example.ru", account_name="Аккаунт Б")
    page = text(b.get("/admin/?date_from=2026-10-01&date_till=2026-10-10"))
    assert kpi(page, "total") == "0" and 'data-testid="warnings"' not in page
    for name in ("Основной amoCRM", "Старый amoCRM", "Сайт amoCRM", "Яндекс Директ"):
        assert name not in page
    assert b.get(f"/admin/?integration_id={month.integration_id}").status_code == 400
    assert b.get(f"/admin/integrations/{troubled['main']}/").status_code == 404


# --- replay by filter ------------------------------------------------------------------------------

@pytest.fixture
def inbox(app, services, account_id):
    now = utcnow()
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        other = integrations.create_integration(session, services, account_id, {"name": "Другой amoCRM"})
        connect(other, services, "https://other.amocrm.ru")
        session.flush()
        main = cat.integration_id
        ev = {
            "failed": [add_event(session, account_id, main, status="failed", received_at=now - timedelta(hours=h)).id for h in (1, 2, 3)],
            "parked": add_event(session, account_id, main, status="parked", received_at=now - timedelta(hours=4)).id,
            "old": add_event(session, account_id, main, status="failed", received_at=now - timedelta(days=20)).id,
            "done": add_event(session, account_id, main, status="done").id,
            "not_closed": add_event(session, account_id, main, status="failed", closed=False).id,
            "other": add_event(session, account_id, other.id, status="failed").id,
        }
        session.commit()
    app.extensions["chatsource.broker"].flush_all()
    return {"main": main, "other": other.id, **ev}


def statuses(app) -> dict[int, tuple[str, int | None]]:
    with app.extensions["chatsource.services"].session_factory() as session:
        return {e.id: (e.status, e.replay_run_id) for e in session.scalars(sa.select(WebhookEvent))}


def replay(client, **form):
    page = text(client.get("/admin/replay/"))
    return client.post("/admin/replay/", data={"csrf_token": csrf_from(page), **form})


def test_replay_by_filter_requeues_only_what_matches_and_only_once(app, admin, inbox):
    since = (datetime.now(MSK) - timedelta(days=2)).date().isoformat()
    response = replay(admin, integration_id=str(inbox["main"]), date_from=since, statuses=["failed", "parked"])
    assert response.status_code == 302
    run_id = int(re.search(r"run=(\d+)", response.headers["Location"]).group(1))
    now = statuses(app)
    queued = inbox["failed"] + [inbox["parked"]]
    assert {i for i, (status, run) in now.items() if run == run_id} == set(queued)
    assert all(now[i] == ("received", run_id) for i in queued)
    assert now[inbox["old"]] == ("failed", None) and now[inbox["other"]] == ("failed", None)
    assert now[inbox["done"]] == ("done", None) and now[inbox["not_closed"]] == ("failed", None)
    assert app.extensions["chatsource.broker"].queues["talks"].qsize() == 1  # one message drains the integration

    page = text(admin.get(response.headers["Location"]))
    assert "4 события снова поставлены в очередь." in page and "незавершённые беседы" in page
    row = page[page.index(f'<tr data-run="{run_id}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-finished="false"' in row and 'data-field="total">4<' in row and 'data-field="pending">4<' in row
    assert "Основной amoCRM" in row and "admin@example.ru" in row

    # The same filter again: everything it matches is already queued, so nothing is queued twice.
    again = replay(admin, integration_id=str(inbox["main"]), date_from=since, statuses=["failed", "parked"])
    assert "Под фильтр не подходит ни одно событие" in text(admin.get(again.headers["Location"]))
    assert statuses(app) == now
    with app.extensions["chatsource.services"].session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ReplayRun)) == 1

    # Progress, as the page polls it: the worker finished three, one failed again.
    progress = admin.get(f"/admin/replay/progress?ids={run_id}").get_json()["data"][0]
    assert (progress["total"], progress["pending"], progress["finished"]) == (4, 4, False)
    with app.extensions["chatsource.services"].session_factory() as session:
        for i, event_id in enumerate(queued):
            session.get(WebhookEvent, event_id).status = "failed" if i == 0 else "done"
        session.commit()
    progress = admin.get(f"/admin/replay/progress?ids={run_id}").get_json()["data"][0]
    assert (progress["done"], progress["failed"], progress["pending"], progress["finished"]) == (3, 1, 0, True)
    finished = text(admin.get("/admin/replay/"))
    row = finished[finished.index(f'<tr data-run="{run_id}"'):]
    assert 'data-finished="true"' in row[:200] and 'data-field="done">3<' in row and "завершён" in row[:row.index("</tr>")]


def test_replay_of_every_integration_and_status(app, admin, inbox):
    response = replay(admin, statuses=["failed"])
    assert response.status_code == 302
    now = statuses(app)
    assert {i for i, (s, run) in now.items() if run} == set(inbox["failed"] + [inbox["old"], inbox["other"]])
    assert now[inbox["parked"]] == ("parked", None)


@pytest.mark.parametrize("form, message", [
    ({}, "Отметьте хотя бы один статус"),
    ({"statuses": ["done"]}, "Отметьте хотя бы один статус"),
    ({"statuses": ["failed"], "date_from": "вчера"}, "Укажите дату в виде 2026-11-24."),
    ({"statuses": ["failed"], "date_from": "2026-10-20", "date_till": "2026-10-01"}, "Дата начала позже даты окончания."),
    ({"statuses": ["failed"], "integration_id": "x"}, "Выберите интеграцию из списка."),
    ({"statuses": ["failed"], "integration_id": "999"}, "Выберите интеграцию из списка."),
])
def test_a_bad_replay_form_is_explained(app, admin, inbox, form, message):
    before = statuses(app)
    response = replay(admin, **form)
    assert response.status_code == 422 and message in text(response)
    assert statuses(app) == before


def test_replay_needs_the_form_token_and_stays_in_the_account(app, admin, inbox):
    assert admin.post("/admin/replay/", data={"statuses": ["failed"]}).status_code == 400  # no CSRF token
    response = replay(admin, statuses=["failed"], integration_id=str(inbox["main"]))
    run_id = int(re.search(r"run=(\d+)", response.headers["Location"]).group(1))

    b = signed_in(app, email="b@example.ru", account_name="Аккаунт Б")
    before = statuses(app)
    refused = replay(b, statuses=["failed"], integration_id=str(inbox["main"]))
    assert refused.status_code == 422 and "Выберите интеграцию из списка." in text(refused)
    assert replay(b, statuses=["failed", "parked"]).status_code == 302  # B's own (empty) inbox: nothing
    assert statuses(app) == before
    assert b.get(f"/admin/replay/progress?ids={run_id}").get_json() == {"data": []}
    assert b.get("/admin/replay/progress").get_json() == {"data": []}
    page = text(b.get("/admin/replay/"))
    assert f'data-run="{run_id}"' not in page and "Основной amoCRM" not in page and "Повторов ещё не было." in page
    assert b.get("/admin/replay/progress?ids=abc").status_code == 400


def test_the_replay_page_in_english(admin, inbox):
    admin.get("/lang/en")
    page = text(admin.get(f"/admin/replay/?integration_id={inbox['main']}&statuses=failed"))
    assert "Replay events" in page and "Which events to process again" in page and "The inbox now" in page
    assert re.search(rf'<option value="{inbox["main"]}" selected>', page)
    assert 'value="failed" checked' in page and 'value="parked" data-testid' in page  # only what the link asked for
    events = text(admin.get("/admin/events/"))
    assert 'href="/admin/replay/" data-testid="replay-by-filter"' in events and "Replay by filter" in events
