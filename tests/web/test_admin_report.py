"""«Сырые данные → Обращения и цели» in the admin: the same rows as the Data API for every filter,
search, sort and page; the same CSV; nothing of another account; clear 400s for bad filters."""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime, timedelta, timezone

import pytest

from core.models import Integration
from core.platform.db import utcnow
from tests.helpers.admin_helpers import signed_in, text
from tests.helpers.report_data import add_request, connect, seed_catalog

T0 = datetime(2026, 10, 5, 6, 0, tzinfo=timezone.utc)
ROW = re.compile(r'<tr data-id="(\d+)">')
NEXT = re.compile(r'<a class="page-link" href="([^"]+)" rel="next"')


@pytest.fixture
def report(app, services, account_id):
    """40 requests of two integrations: channels, campaigns (and none), sites, sources, attributions,
    names, phones and e-mails, over twenty days; one referrer that a spreadsheet would run."""
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        from core.integrations import settings as integrations

        other = integrations.create_integration(session, services, account_id, {"name": "Второй amoCRM"})
        connect(other, services, "https://second.amocrm.ru")
        session.flush()
        ids = []
        for n in range(40):
            ids.append(add_request(
                session, account_id, (cat.integration_id, other.id)[n % 5 == 0], T0 + timedelta(hours=11 * n),
                channel=("telegram", "site_chat", "whatsapp", "vk")[n % 4],
                campaign_id=(cat.campaign_id, cat.other_campaign_id, None)[n % 3],
                site_id=(cat.site_id, cat.other_site_id, None)[n % 3 if n % 4 else 2],
                source_id=cat.source_id if n % 6 == 0 else None,
                attribution=("session", "messenger", "default")[n % 3],
                contact_name=f"Клиент {n:02d}" if n % 4 else None, phone=f"+7915{n:07d}" if n % 2 else None,
                email=f"client{n}@example.ru" if n % 3 else None, utm_source="yandex" if n % 3 == 0 else None,
                utm_campaign="divany_cpc" if n % 3 == 0 else None, entrance_page="https://shop.example.ru/sofa/" if n % 3 == 0 else None,
                referrer="=HYPERLINK(\"http://evil.example\")" if n == 9 else None, session_id=None,
            ).id)
        session.commit()
        return cat, other.id, ids


@pytest.fixture
def admin(app, account_id):
    return signed_in(app)


def headers(page: str) -> list[str]:
    cells = re.findall(r"<th [^>]*data-column=[^>]*>(.*?)</th>", page, re.S)
    return [re.sub(r"<[^>]+>|[▲▼]", "", c).strip() for c in cells]


def admin_ids(client, **params) -> tuple[list[int], int]:
    """Every row the Raw data screen shows for `params`, walking its «next» links; and its total."""
    response = client.get("/admin/requests/", query_string=params)
    assert response.status_code == 200, text(response)[:2000]
    page = text(response)
    total = int(re.search(r'data-testid="report-total" data-total="(\d+)"', page).group(1))
    ids: list[int] = []
    for _ in range(100):
        ids += [int(i) for i in ROW.findall(page)]
        link = NEXT.search(page)
        if not link or link.group(1) == "#":
            return ids, total
        page = text(client.get(html.unescape(link.group(1))))
    raise AssertionError("the pages never ended")


def api_ids(client, api, **params) -> tuple[list[int], int]:
    ids, offset = [], 0
    while True:
        body = client.get("/api/v1/requests", headers=api, query_string=dict(params, limit=17, offset=offset)).get_json()
        ids += [r["id"] for r in body["data"]]
        offset += 17
        if offset >= body["total"]:
            return ids, body["total"]


FILTERS = [
    {},
    {"channel": "telegram"},
    {"attribution": "session", "sort": "created_at"},
    {"campaign_id": "none", "sort": "-campaign"},
    {"site_id": "none", "date_from": "2026-10-08", "date_till": "2026-10-14"},
    {"q": "8 (915) 000-00-21"},
    {"q": "клиент 1", "sort": "contact_name"},
    {"q": "CLIENT22@"},
    {"sort": "integration"},
    {"sort": "-phone"},
    {"sort": "source", "channel": "vk"},
    {"date_from": "2026-10-06", "date_till": "2026-10-06"},
]


@pytest.mark.parametrize("params", FILTERS)
def test_the_raw_data_screen_shows_the_same_rows_as_the_data_api(admin, client, api, report, params):
    shown, total = admin_ids(admin, per_page=25, **params)
    expected, api_total = api_ids(client, api, **params)
    assert total == api_total and shown == expected
    assert len(shown) == total and len(set(shown)) == total


def test_filters_by_integration_campaign_source_and_site(admin, client, api, report):
    cat, other_id, _ids = report
    for params in ({"integration_id": other_id}, {"campaign_id": cat.other_campaign_id}, {"source_id": cat.source_id},
                   {"site_id": cat.other_site_id}, {"integration_id": cat.integration_id, "channel": "site_chat", "attribution": "messenger"}):
        shown, total = admin_ids(admin, **params)
        assert (shown, total) == api_ids(client, api, **params) and 0 < total < 40, params


def test_a_row_has_every_column_and_opens_amocrm(admin, report, services):
    cat, _other, ids = report
    page = text(admin.get("/admin/requests/", query_string={"q": "client13@example.ru"}))
    assert ROW.findall(page) == [str(ids[13])]
    row = page[page.index(f'data-id="{ids[13]}"'):]
    row = row[:row.index("</tr>")]
    # 2026-10-05 06:00 UTC + 143 h = 2026-10-11 05:00 UTC = 08:00 in Moscow
    assert "11.10.2026 08:00:00" in row and "Онлайн-чат на сайте" in row and "Клиент 13" in row and "+79150000013" in row
    assert "client13@example.ru" in row and "Google Ads" in row and "Блог" in row and "Основной amoCRM" in row
    assert "Мессенджер" in row and "нет сессии" in row
    lead = re.search(r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer" data-testid="lead-link">', row)
    contact = re.search(r'href="([^"]+)" target="_blank" rel="noopener noreferrer" data-testid="contact-link"', row)
    with services.session_factory() as session:
        from core.models import ChatRequest

        request = session.get(ChatRequest, ids[13])
        assert lead.group(1) == f"https://shop.amocrm.ru/leads/detail/{request.amo_lead_id}"
        assert contact.group(1) == f"https://shop.amocrm.ru/contacts/detail/{request.amo_contact_id}"
    assert headers(page) == ["Дата и время", "Канал", "Имя контакта", "Телефон", "E-mail", "Сайт", "Рекламная кампания",
                             "Атрибуция", "Источник", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
                             "Реферер", "Страница входа", "ID сессии", "Новое или повторное", "Интеграция", "amoCRM"]
    utm = text(admin.get("/admin/requests/", query_string={"q": "Клиент 06"}))
    assert "divany_cpc" in utm and 'href="https://shop.example.ru/sofa/"' in utm


def test_the_phone_as_amocrm_held_it_is_shown_beside_its_e164_reading(admin, report, services):
    _cat, _other, ids = report
    with services.session_factory() as session:
        from core.models import ChatRequest

        session.get(ChatRequest, ids[13]).phone_raw = "8 (915) 000-00-13"
        session.commit()
    page = text(admin.get("/admin/requests/", query_string={"q": "client13@example.ru"}))
    row = page[page.index(f'data-id="{ids[13]}"'):]
    assert 'title="Как в amoCRM: 8 (915) 000-00-13"' in row[:row.index("</tr>")]


def test_pages_by_number_and_by_cursor_agree(admin, report):
    first = text(admin.get("/admin/requests/?per_page=25"))
    next_url = html.unescape(NEXT.search(first).group(1))
    assert "cursor=" in next_url and "page=2" in next_url
    by_cursor = ROW.findall(text(admin.get(next_url)))
    by_number = ROW.findall(text(admin.get("/admin/requests/?per_page=25&page=2")))
    assert by_cursor == by_number and len(by_cursor) == 15
    prev_page = text(admin.get(next_url))
    prev_url = html.unescape(re.search(r'href="([^"]+)" rel="prev"', prev_page).group(1))
    assert ROW.findall(text(admin.get(prev_url))) == ROW.findall(first)
    # A mangled cursor is not an error: the page by its number.
    assert ROW.findall(text(admin.get("/admin/requests/?per_page=25&page=2&cursor=abc"))) == by_number
    assert ROW.findall(text(admin.get("/admin/requests/?per_page=25&page=9"))) == []


def csv_link(page: str, testid: str = "export-csv") -> str:
    return html.unescape(re.search(rf'href="([^"]+)" data-testid="{testid}"', page).group(1))


@pytest.mark.parametrize("params", [{}, {"channel": "whatsapp", "sort": "-campaign"}, {"q": "клиент", "campaign_id": "none"},
                                    {"date_from": "2026-10-08", "date_till": "2026-10-12", "attribution": "default"}])
def test_the_csv_of_the_admin_equals_the_api_csv(admin, client, api, report, params):
    page = text(admin.get("/admin/requests/", query_string=params))
    for testid, delimiter in (("export-csv", "comma"), ("export-csv-excel", "semicolon")):
        response = admin.get(csv_link(page, testid))
        assert response.status_code == 200 and response.is_streamed
        assert response.headers["Content-Disposition"].startswith('attachment; filename="requests_')
        from_api = client.get("/api/v1/requests.csv", headers=api, query_string=dict(params, lang="ru", delimiter=delimiter))
        assert response.get_data() == from_api.get_data()
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"), newline=""), delimiter=";"))
    assert rows[0][:3] == ["ID обращения", "Дата и время (Europe/Moscow)", "Канал"]
    assert [int(r[0]) for r in rows[1:]] == api_ids(client, api, **params)[0]


def test_the_csv_keeps_spreadsheets_from_running_formulas(admin, report):
    body = admin.get(csv_link(text(admin.get("/admin/requests/")))).get_data(as_text=True)
    rows = {r["ID обращения"]: r for r in csv.DictReader(io.StringIO(body.lstrip("\ufeff"), newline=""))}
    _cat, _other, ids = report
    assert rows[str(ids[9])]["Реферер"] == "'=HYPERLINK(\"http://evil.example\")"
    assert rows[str(ids[9])]["Телефон"] == "+79150000009"  # a phone cannot run as a formula: as it is
    english = admin.get("/admin/requests/export.csv?lang=en").get_data(as_text=True)
    assert english.lstrip("\ufeff").startswith("Request ID,Date and time (Europe/Moscow),Channel,")


@pytest.mark.parametrize("params, message", [
    ({"date_from": "вчера"}, "Укажите дату в виде 2026-11-24."),
    ({"date_from": "2026-10-20", "date_till": "2026-10-01"}, "Дата начала позже даты окончания."),
    ({"campaign_id": "yandex"}, "Выберите рекламную кампанию из списка."),
    ({"integration_id": "none"}, "Выберите интеграцию из списка."),
    ({"attribution": "magic"}, "Выберите атрибуцию из списка."),
    ({"sort": "price"}, "Так таблицу не отсортировать"),
    ({"page": "0"}, "Номер страницы — целое число от 1."),
    ({"per_page": "7"}, "Можно показать 25, 50, 100 или 200 строк"),
    ({"q": "x" * 201}, "Строка поиска длиннее 200 символов."),
    ({"q": "a\x01b"}, "управляющие символы"),
])
def test_a_bad_filter_is_explained_with_a_400(admin, report, params, message):
    paging = "page" in params or "per_page" in params  # the CSV has every row: it takes no page
    for url in ("/admin/requests/",) + (() if paging else ("/admin/requests/export.csv",)):
        response = admin.get(url, query_string=params)
        assert response.status_code == 400, (url, params)
        assert message in text(response) and 'data-testid="report-problem"' in text(response)
    assert admin.get("/admin/requests/export.csv?delimiter=pipe").status_code == 400


def test_another_account_sees_none_of_it(app, report):
    cat, other_id, ids = report
    b = signed_in(app, email="b@example.ru", account_name="Аккаунт Б")
    page = text(b.get("/admin/requests/"))
    assert ROW.findall(page) == [] and "Клиент" not in page and "Основной amoCRM" not in page and "Яндекс Директ" not in page
    assert "Обращений пока нет" in page
    for params in ({"integration_id": cat.integration_id}, {"campaign_id": cat.campaign_id}, {"q": "клиент"}):
        assert ROW.findall(text(b.get("/admin/requests/", query_string=params))) == []
    export = b.get("/admin/requests/export.csv").get_data(as_text=True)
    assert export.lstrip("\ufeff").splitlines() == [export.lstrip("\ufeff").splitlines()[0]]  # the header alone


def test_the_report_in_english_and_without_signing_in(app, admin, report):
    assert app.test_client().get("/admin/requests/").headers["Location"].startswith("/login?next=")
    assert app.test_client().get("/admin/requests/export.csv").status_code == 302
    russian = text(admin.get("/admin/requests/"))
    assert "Сырые данные" in russian and "Обращения и цели" in russian and "Онлайн-чат на сайте" in russian
    assert "Скачать CSV" in russian and "Телефон, e-mail или имя" in russian
    admin.get("/lang/en")
    english = text(admin.get("/admin/requests/"))
    assert "Raw data" in english and "Requests and goals" in english and "Website chat" in english
    assert "Download CSV" in english and "Phone, e-mail or name" in english and "40 requests" in english
    assert "Обращения и цели" not in english and "Скачать" not in english


def test_a_request_closed_today_is_on_top(admin, report, services, account_id):
    cat, _other, _ids = report
    with services.session_factory() as session:
        fresh = add_request(session, account_id, cat.integration_id, utcnow() - timedelta(minutes=3), contact_name="Свежий Клиент",
                            channel="avito")
        session.get(Integration, cat.integration_id).name = "Основной amoCRM (Москва)"
        session.commit()
    page = text(admin.get("/admin/requests/?per_page=25"))
    assert ROW.findall(page)[0] == str(fresh.id) and "Свежий Клиент" in page and "Авито" in page
