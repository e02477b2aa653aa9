"""The dashboard's numbers and its warnings: where chats come from, day by day, and what needs fixing."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from core.models import Integration
from core.platform.db import utcnow
from core.platform.errors import ValidationFailed
from core.reporting import dashboard
from core.tracking.catalog import create_campaign
from tests.helpers.report_data import add_event, add_request, connect, seed_catalog
from web.messages import catalogues

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)  # 12:00 in Moscow


def build(services, account_id, *args, **kwargs):
    with services.session_factory() as session:
        return dashboard.build_dashboard(session, account_id, *args, now=kwargs.pop("now", NOW),
                                         catalogues=kwargs.pop("catalogues", catalogues()), **kwargs)


def test_requests_per_local_day_by_channel_campaign_and_source(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        i = cat.integration_id
        add_request(session, account_id, i, datetime(2026, 11, 22, 10, tzinfo=timezone.utc), channel="telegram",
                    campaign_id=cat.campaign_id)
        add_request(session, account_id, i, datetime(2026, 11, 22, 11, tzinfo=timezone.utc), channel="telegram",
                    campaign_id=cat.campaign_id, attribution="session")
        # 21:30 UTC on the 22nd is 00:30 on the 23rd in Moscow.
        add_request(session, account_id, i, datetime(2026, 11, 22, 21, 30, tzinfo=timezone.utc), channel="site_chat",
                    source_id=cat.source_id, site_id=cat.site_id)
        add_request(session, account_id, i, datetime(2026, 11, 24, 8, tzinfo=timezone.utc), channel="whatsapp",
                    campaign_id=cat.other_campaign_id, attribution="messenger")
        add_request(session, account_id, i, datetime(2026, 11, 19, 8, tzinfo=timezone.utc), channel="vk")  # before the range
        session.commit()
    data = build(services, account_id, "2026-11-21", "2026-11-24")
    assert data["days"] == ["2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"]
    assert data["total"] == 4 and data["range"]["tz"] == "Europe/Moscow"
    channels = {s["key"]: s for s in data["by_channel"]}
    assert channels["telegram"]["per_day"] == [0, 2, 0, 0] and channels["telegram"]["label"] == "Telegram"
    assert channels["site_chat"]["per_day"] == [0, 0, 1, 0] and channels["site_chat"]["label"] == "Онлайн-чат на сайте"
    assert channels["whatsapp"]["per_day"] == [0, 0, 0, 1] and "vk" not in channels
    campaigns = {s["label"]: s["per_day"] for s in data["by_campaign"]}
    assert campaigns == {"Яндекс Директ": [0, 2, 0, 0], "Google Ads": [0, 0, 0, 1], "Без рекламной кампании": [0, 0, 1, 0]}
    assert data["by_campaign"][0]["id"] == cat.campaign_id  # the biggest first
    sources = {s["label"]: s["per_day"] for s in data["by_source"]}
    assert sources == {"Telegram-канал": [0, 0, 1, 0], "Без источника": [0, 2, 0, 1]}
    assert data["attribution"]["per_day"] == {"session": [0, 1, 0, 0], "messenger": [0, 0, 0, 1], "default": [0, 1, 1, 0]}

    utc = build(services, account_id, "2026-11-22", "2026-11-22", tz="UTC", lang="en")
    assert utc["total"] == 3 and {s["key"]: s["total"] for s in utc["by_channel"]} == {"telegram": 2, "site_chat": 1}
    assert {s["label"] for s in utc["by_campaign"]} == {"Яндекс Директ", "No ad campaign"}

    only_other = build(services, account_id, "2026-11-21", "2026-11-24", integration_id=cat.integration_id + 1000)
    assert only_other["total"] == 0 and only_other["by_channel"] == []


def test_many_campaigns_fold_into_other(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        for n in range(12):
            campaign = create_campaign(session, account_id, f"РК {n:02d}", cat.site_id)
            for _ in range(n + 1):
                add_request(session, account_id, cat.integration_id, NOW - timedelta(hours=1), campaign_id=campaign.id)
        session.commit()
    series = build(services, account_id)["by_campaign"]
    assert len(series) == dashboard.TOP_SERIES + 1
    assert [s["label"] for s in series[:2]] == ["РК 11", "РК 10"]
    assert series[-1]["key"] == "other" and series[-1]["label"] == "Другие" and series[-1]["merged"] == 4
    assert series[-1]["total"] == 1 + 2 + 3 + 4 and sum(s["total"] for s in series) == sum(range(1, 13))


def test_attribution_shares_against_the_previous_period(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        i = cat.integration_id
        for kind, n in (("session", 6), ("messenger", 2), ("default", 2)):
            for _ in range(n):
                add_request(session, account_id, i, NOW - timedelta(days=1), attribution=kind)
        for kind, n in (("session", 1), ("default", 3)):
            for _ in range(n):
                add_request(session, account_id, i, NOW - timedelta(days=10), attribution=kind)
        session.commit()
    attribution = build(services, account_id, "2026-11-18", "2026-11-24")["attribution"]
    assert attribution["counts"] == {"session": 6, "messenger": 2, "default": 2}
    assert attribution["shares"] == {"session": 0.6, "messenger": 0.2, "default": 0.2}
    assert attribution["previous"]["counts"] == {"session": 1, "messenger": 0, "default": 3}
    assert attribution["previous"]["shares"]["default"] == 0.75
    assert attribution["labels"]["default"] == "По умолчанию"


def warnings_by_integration(data) -> dict[int, set[str]]:
    result: dict[int, set[str]] = {}
    for w in data["warnings"]:
        result.setdefault(w["integration_id"], set()).add(w["code"])
    return result


def test_health_and_warnings_before_data_is_lost(services, account_id):
    from core.integrations import settings as integrations

    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        healthy = session.get(Integration, cat.integration_id)
        connect(healthy, services, now=NOW)

        def make(name, **fields):
            integration = integrations.create_integration(session, services, account_id, {"name": name})
            connect(integration, services, now=NOW)
            for key, value in fields.items():
                setattr(integration, key, value)
            session.flush()
            return integration

        revoked = make("Отозвана", status="needs_reauth", last_error="invalid_grant", last_error_at=NOW - timedelta(hours=1))
        disabled = make("Хук выключен", webhook_disabled=True)
        missing = make("Хука нет", webhook_registered_at=None)
        old_token = make("Старый токен", token_refreshed_at=NOW - timedelta(days=85))
        stuck = make("Очередь стоит")
        failing = make("Ошибки", last_error="AmoTransient: 503", last_error_at=NOW - timedelta(hours=2))
        spiking = make("Скрипт сломался")
        for _ in range(3):
            add_event(session, account_id, revoked.id, status="parked")
            add_event(session, account_id, stuck.id, status="received", received_at=NOW - timedelta(minutes=40))
            add_event(session, account_id, failing.id, status="failed")
        add_event(session, account_id, healthy.id, status="received", received_at=NOW - timedelta(minutes=1))
        for n in range(30):  # last week 10 % default, this week 80 %
            add_request(session, account_id, spiking.id, NOW - timedelta(days=3), attribution="default" if n < 24 else "session")
            add_request(session, account_id, spiking.id, NOW - timedelta(days=10), attribution="default" if n < 3 else "session")
            add_request(session, account_id, healthy.id, NOW - timedelta(days=3), attribution="session")
            add_request(session, account_id, healthy.id, NOW - timedelta(days=10), attribution="session")
        session.commit()
        ids = {k: v.id for k, v in dict(healthy=healthy, revoked=revoked, disabled=disabled, missing=missing,
                                         old_token=old_token, stuck=stuck, failing=failing, spiking=spiking).items()}

    data = build(services, account_id, "2026-11-18", "2026-11-24")
    found = warnings_by_integration(data)
    assert found == {
        ids["revoked"]: {"needs_reauth"},
        ids["disabled"]: {"webhook_disabled"},
        ids["missing"]: {"webhook_missing"},
        ids["old_token"]: {"refresh_token_old"},
        ids["stuck"]: {"backlog"},
        ids["failing"]: {"events_failed", "last_error"},
        ids["spiking"]: {"default_spike"},
    }  # the healthy integration (a fresh event is no backlog) raises nothing
    errors = [w for w in data["warnings"] if w["severity"] == "error"]
    assert {w["code"] for w in errors} == {"needs_reauth", "webhook_disabled", "webhook_missing"}
    assert data["warnings"][:3] == errors  # errors first
    by_code = {w["code"]: w for w in data["warnings"]}
    assert by_code["needs_reauth"]["params"] == {"parked": 3} and "Подключить" in by_code["needs_reauth"]["message_ru"]
    assert by_code["refresh_token_old"]["params"] == {"age": 85, "left": 5}
    assert by_code["backlog"]["params"] == {"pending": 3, "minutes": 40}
    assert by_code["default_spike"]["params"] == {"current": 80, "previous": 10}
    assert "80%" in by_code["default_spike"]["message_ru"] and "скрипт" in by_code["default_spike"]["message_ru"]
    assert by_code["webhook_disabled"]["message"].startswith("«Хук выключен»: amoCRM disabled the webhook")

    health = {h["id"]: h for h in data["integrations"]}
    assert health[ids["revoked"]]["backlog"] == {"received": 0, "processing": 0, "parked": 3, "failed": 0}
    assert health[ids["old_token"]]["refresh_token_age_days"] == 85
    assert health[ids["old_token"]]["refresh_token_expires_at"].startswith("2026-11-29")
    assert health[ids["healthy"]]["last_request_at"] is not None and health[ids["healthy"]]["webhook_registered"]
    assert health[ids["stuck"]]["oldest_pending_at"].startswith("2026-11-24T08:20")

    with services.session_factory() as session:
        assert {w.code for w in dashboard.integration_warnings(session, account_id, ids["spiking"], now=NOW)} == {"default_spike"}
        assert dashboard.integration_warnings(session, account_id, ids["healthy"], now=NOW) == []


def test_the_default_range_and_bad_ranges(services, account_id):
    data = build(services, account_id, today=date(2026, 11, 24))
    assert data["range"]["date_from"] == "2026-10-26" and data["range"]["date_till"] == "2026-11-24"
    assert data["range"]["previous_till"] == "2026-10-25" and len(data["days"]) == 30
    with services.session_factory() as session:
        for args, field in ((("2026-11-25", "2026-11-24"), "date_from"), (("2025-01-01", "2026-11-24"), "date_from"),
                            (("yesterday", None), "date_from"), ((None, "2026-02-30"), "date_till")):
            with pytest.raises(ValidationFailed) as error:
                dashboard.build_dashboard(session, account_id, *args)
            assert error.value.field == field
        with pytest.raises(ValidationFailed):
            dashboard.build_dashboard(session, account_id, tz="Nowhere/City")


def test_warnings_are_not_raised_by_a_handful_of_chats(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        for _ in range(5):  # 100 % default this week, 0 % before, but too few to judge
            add_request(session, account_id, cat.integration_id, utcnow() - timedelta(days=2), attribution="default")
            add_request(session, account_id, cat.integration_id, utcnow() - timedelta(days=9), attribution="session")
        session.commit()
        assert dashboard.integration_warnings(session, account_id, cat.integration_id) == []
