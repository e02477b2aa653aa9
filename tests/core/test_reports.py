"""The Raw data report's core: filters, search, sorting, paging — what a marketer sees in the table."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.platform.errors import ValidationFailed
from core.reporting import report as reports
from core.reporting.report import NONE_ID, RequestFilter, Sort, page_requests
from tests.helpers.report_data import add_request, seed_catalog

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def data(services, account_id):
    """A small account: 8 requests differing in one thing each, plus an integration of another account."""
    from core.access.accounts import create_account

    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        a, i = account_id, cat.integration_id
        rows = {
            "ivan": add_request(session, a, i, T0, contact_name="Иван Петров", phone="+79151234567", email="ivan@example.ru",
                                channel="telegram", campaign_id=cat.campaign_id, site_id=cat.site_id, attribution="session"),
            "anna": add_request(session, a, i, T0 + timedelta(hours=1), contact_name="Анна", phone="+79260000000",
                                email="ANNA.K@gmail.com", channel="whatsapp", origin="waba", campaign_id=cat.other_campaign_id,
                                site_id=cat.site_id, attribution="messenger"),
            "site": add_request(session, a, i, T0 + timedelta(hours=2), contact_name="Ольга", channel="site_chat",
                                source_id=cat.source_id, site_id=cat.other_site_id),
            "nobody": add_request(session, a, i, T0 + timedelta(days=1), channel="telegram"),
            "pct": add_request(session, a, i, T0 + timedelta(days=2), contact_name="100% скидка_акция", channel="vk"),
            "foreign": add_request(session, a, i, T0 + timedelta(days=3), contact_name="John", phone="+4915112300000",
                                   channel="other"),
            # 2026-11-23 21:30 UTC is already 2026-11-24 00:30 in Moscow.
            "late": add_request(session, a, i, datetime(2026, 11, 23, 21, 30, tzinfo=timezone.utc), contact_name="Поздний",
                                channel="other"),
            "early": add_request(session, a, i, datetime(2026, 11, 23, 20, 30, tzinfo=timezone.utc), contact_name="Ранний",
                                 channel="other"),
        }
        other = create_account(session, "Другой клиент")
        other_cat = seed_catalog(session, services, other.id)
        add_request(session, other.id, other_cat.integration_id, T0, contact_name="Иван Чужой", phone="+79151234567")
        session.commit()
        return cat, {k: v.id for k, v in rows.items()}


def ids(services, account_id, flt=None, sort=None, **kw):
    with services.session_factory() as session:
        page = page_requests(session, account_id, flt, sort, limit=500, **kw)
        return [r.id for r in page.rows]


def test_each_filter_narrows_the_report(services, account_id, data):
    cat, rid = data
    assert sorted(ids(services, account_id)) == sorted(rid.values())  # the other account's request never shows
    cases = {
        "channel": (RequestFilter(channel="telegram"), {"ivan", "nobody"}),
        "campaign": (RequestFilter(campaign_id=cat.campaign_id), {"ivan"}),
        "without campaign": (RequestFilter(campaign_id=NONE_ID, site_id=cat.other_site_id), {"site"}),
        "source": (RequestFilter(source_id=cat.source_id), {"site"}),
        "site": (RequestFilter(site_id=cat.site_id), {"ivan", "anna"}),
        "attribution": (RequestFilter(attribution="messenger"), {"anna"}),
        "integration": (RequestFilter(integration_id=cat.integration_id, attribution="session"), {"ivan"}),
        "dates": (RequestFilter(date_from=T0 + timedelta(minutes=30), date_till=T0 + timedelta(hours=2)), {"anna", "site"}),
    }
    for name, (flt, expected) in cases.items():
        assert set(ids(services, account_id, flt)) == {rid[k] for k in expected}, name


def test_a_bare_date_is_a_whole_local_day(services, account_id, data):
    _, rid = data
    moscow = RequestFilter.from_params({"date_from": "2026-11-24", "date_till": "2026-11-24"})
    assert set(ids(services, account_id, moscow)) == {rid["late"]}
    utc = RequestFilter.from_params({"date_from": "2026-11-23", "date_till": "2026-11-23"}, tz="UTC")
    assert set(ids(services, account_id, utc)) == {rid["late"], rid["early"], rid["foreign"]}
    moscow_23 = RequestFilter.from_params({"date_from": "2026-11-23", "date_till": "2026-11-23"})
    assert set(ids(services, account_id, moscow_23)) == {rid["early"], rid["foreign"]}
    explicit = RequestFilter.from_params({"date_from": "2026-11-23T21:00:00Z", "date_till": "2026-11-23T22:00:00+00:00"})
    assert set(ids(services, account_id, explicit)) == {rid["late"]}


@pytest.mark.parametrize("typed", ["8 915 123", "+7 (915) 123-45-67", "915123", "79151234567", "8(915)1234567", "4567"])
def test_phone_search_finds_the_number_however_it_is_typed(services, account_id, data, typed):
    _, rid = data
    assert ids(services, account_id, RequestFilter(q=typed)) == [rid["ivan"]]


@pytest.mark.parametrize("typed, expected", [
    ("иван", {"ivan"}), ("ИВАН ПЕТРОВ", {"ivan"}), ("петров", {"ivan"}),  # Cyrillic, any case, part of the name
    ("gmail", {"anna"}), ("Anna.K@", {"anna"}),  # part of the email, any case
    ("100%", {"pct"}), ("_акция", {"pct"}), ("%", {"pct"}), ("_", {"pct"}),  # LIKE's wildcards are literal
    ("8 916", set()), ("+49 151 123", {"foreign"}), ("нет такого", set()),
])
def test_search_by_name_email_or_phone(services, account_id, data, typed, expected):
    _, rid = data
    assert set(ids(services, account_id, RequestFilter(q=typed))) == {rid[k] for k in expected}


def test_sorting_by_whitelisted_columns_with_a_stable_tie_break(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        same_time = [add_request(session, account_id, cat.integration_id, T0, contact_name=name).id
                     for name in ("Борис", None, "Анна", "борис", "Вера")]
        session.commit()
    assert ids(services, account_id) == sorted(same_time, reverse=True)  # newest first, then the higher id
    assert ids(services, account_id, sort="created_at") == sorted(same_time)
    by_name = ids(services, account_id, sort="contact_name")
    assert by_name[0] == same_time[1]  # no name sorts first
    assert by_name.index(same_time[2]) < by_name.index(same_time[0]) < by_name.index(same_time[4])
    with pytest.raises(ValidationFailed) as error:
        Sort.parse("price")
    assert error.value.field == "sort" and "created_at" in error.value.message


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "contact_name", "-campaign", "channel", "-id", "phone"])
def test_keyset_pages_walk_every_row_exactly_once_in_order(services, account_id, sort):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        for n in range(37):
            add_request(session, account_id, cat.integration_id, T0 + timedelta(minutes=n % 5),  # many equal times
                        contact_name=["Анна", "Борис", None][n % 3], channel=["telegram", "vk"][n % 2],
                        phone=None if n % 4 else f"+7915000{n:04d}",
                        campaign_id=[cat.campaign_id, cat.other_campaign_id, None][n % 3])
        session.commit()
    expected = ids(services, account_id, sort=sort)
    walked, cursor = [], None
    with services.session_factory() as session:
        for _ in range(20):
            page = page_requests(session, account_id, None, sort, limit=5, cursor=cursor)
            walked += [r.id for r in page.rows]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert walked == expected and len(walked) == 37
    with services.session_factory() as session:
        offset_page = page_requests(session, account_id, None, sort, limit=5, offset=10)
    assert [r.id for r in offset_page.rows] == expected[10:15] and offset_page.total == 37


def test_a_cursor_only_fits_its_own_sort(services, account_id, data):
    with services.session_factory() as session:
        cursor = page_requests(session, account_id, None, "-created_at", limit=2).next_cursor
        assert cursor
        for bad_sort, bad_cursor in (("contact_name", cursor), ("-created_at", "garbage"), ("-created_at", cursor[:-3] + "xyz")):
            with pytest.raises(ValidationFailed) as error:
                page_requests(session, account_id, None, bad_sort, limit=2, cursor=bad_cursor)
            assert error.value.field == "cursor"


@pytest.mark.parametrize("params, field", [
    ({"date_from": "yesterday"}, "date_from"),
    ({"date_till": "2026-13-01"}, "date_till"),
    ({"date_from": "2026-11-25", "date_till": "2026-11-24"}, "date_from"),
    ({"integration_id": "abc"}, "integration_id"),
    ({"integration_id": "none"}, "integration_id"),
    ({"campaign_id": "-3"}, "campaign_id"),
    ({"site_id": "1.5"}, "site_id"),
    ({"attribution": "magic"}, "attribution"),
    ({"q": "x" * 201}, "q"),
    ({"channel": "telegram\x01"}, "channel"),
])
def test_bad_filter_values_name_the_field(params, field):
    with pytest.raises(ValidationFailed) as error:
        RequestFilter.from_params(params)
    assert error.value.field == field and error.value.message


def test_time_zone_names_are_checked():
    for bad in ("Mars/Olympus", "../../etc/passwd", "Europe", "x" * 80, "Europe/Moscow'; drop table requests; --"):
        with pytest.raises(ValidationFailed) as error:
            reports.get_zone(bad)
        assert error.value.field == "tz"
    assert reports.get_zone("Asia/Kolkata").key == "Asia/Kolkata"


def test_the_search_text_is_filled_for_bulk_inserts_too(services, account_id):
    from core.models import ChatRequest
    from tests.helpers.report_data import add_requests_bulk, request_values

    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        add_requests_bulk(session, [request_values(account_id, cat.integration_id, T0, contact_name=f"Клиент {n}",
                                                   phone=f"+7999000{n:04d}") for n in range(3)])
        session.commit()
        texts = sorted(session.scalars(__import__("sqlalchemy").select(ChatRequest.search_text)))
    assert texts == [f"клиент {n}\n\n7999000{n:04d}" for n in range(3)]
    assert len(ids(services, account_id, RequestFilter(q="8 999 000 0002"))) == 1


def test_lead_and_contact_links_use_the_amocrm_address(services, account_id, data):
    _, rid = data
    with services.session_factory() as session:
        page = page_requests(session, account_id, RequestFilter(q="иван"))
        row = reports.request_to_dict(page.rows[0], page.refs)
    assert row["amo_lead_url"] == f"https://shop.amocrm.ru/leads/detail/{row['amo_lead_id']}"
    assert row["amo_contact_url"] == f"https://shop.amocrm.ru/contacts/detail/{row['amo_contact_id']}"
    assert row["campaign_name"] == "Яндекс Директ" and row["site_name"] == "Магазин"
    assert row["integration_name"] == "Основной amoCRM" and row["source_name"] is None
