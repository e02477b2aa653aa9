"""«Обращений сегодня» on the integrations list and page: today is the account's day, not UTC's.

Regression: it counted from UTC midnight, so every evening in Moscow (from 21:00 UTC until midnight
UTC) the requests of the new local day were missing, and from midnight until 03:00 Moscow yesterday's
evening was counted as today."""
from __future__ import annotations

from datetime import datetime, timezone

from core.access.accounts import create_account
from core.integrations import settings as integrations
from core.integrations.diagnostics import requests_today
from core.platform.time_zones import set_time_zone
from tests.helpers.report_data import add_request, connect, seed_catalog

NOW = datetime(2026, 11, 24, 22, 30, tzinfo=timezone.utc)  # 01:30 on the 25th in Moscow


def recorded(session, account_id, integration_id, when):
    add_request(session, account_id, integration_id, when, recorded_at=when)


def test_today_starts_at_the_accounts_midnight(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        second = integrations.create_integration(session, services, account_id, {"name": "Второй amoCRM"})
        connect(second, services, "https://second.amocrm.ru")
        quiet = integrations.create_integration(session, services, account_id, {"name": "Без обращений"})
        i = cat.integration_id
        recorded(session, account_id, i, datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc))  # 00:00 on the 25th
        recorded(session, account_id, i, datetime(2026, 11, 24, 22, 10, tzinfo=timezone.utc))  # 01:10 on the 25th
        recorded(session, account_id, i, datetime(2026, 11, 24, 20, 59, tzinfo=timezone.utc))  # 23:59 on the 24th
        recorded(session, account_id, i, datetime(2026, 11, 24, 0, 30, tzinfo=timezone.utc))  # UTC's today, not ours
        recorded(session, account_id, second.id, datetime(2026, 11, 24, 21, 30, tzinfo=timezone.utc))
        session.commit()
        assert requests_today(session, account_id, [i, second.id, quiet.id], now=NOW) == {i: 2, second.id: 1, quiet.id: 0}

        set_time_zone(session, account_id, "UTC")
        assert requests_today(session, account_id, [i], now=NOW) == {i: 4}  # the whole 24th in UTC


def test_another_accounts_integration_is_not_counted(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        recorded(session, account_id, cat.integration_id, datetime(2026, 11, 24, 21, 30, tzinfo=timezone.utc))
        other = create_account(session, "Другой клиент")
        session.commit()
        assert requests_today(session, other.id, [cat.integration_id], now=NOW) == {cat.integration_id: 0}
