"""The Data API side of the Raw data report, the CSV export, the dashboard and replay by filter."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from core.models import Integration
from core.platform.db import utcnow
from tests.helpers.apps import other_account_headers
from tests.helpers.report_data import add_event, add_request, seed_catalog

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)


@pytest.fixture
def report(services, account_id):
    """30 requests: three channels, two campaigns and none, names, phones, emails, over ten days."""
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        ids = []
        for n in range(30):
            ids.append(add_request(
                session, account_id, cat.integration_id, T0 + timedelta(hours=7 * n),
                channel=("telegram", "site_chat", "whatsapp")[n % 3],
                campaign_id=(cat.campaign_id, cat.other_campaign_id, None)[n % 3 if n % 5 else 2],
                site_id=cat.site_id if n % 2 else None, source_id=cat.source_id if n % 7 == 0 else None,
                attribution=("session", "messenger", "default")[n % 3],
                contact_name=(f"Клиент {n}" if n % 4 else None), phone=f"+7915{n:07d}" if n % 2 else None,
                email=f"client{n}@example.ru" if n % 3 else None, utm_source="yandex" if n % 3 == 0 else None,
                referrer="=cmd|' /C calc'!A0" if n == 7 else None,
            ).id)
        session.commit()
        return cat, ids


def get(client, api, path, **params):
    response = client.get(path, headers=api, query_string=params)
    return response


def all_pages(client, api, **params) -> list[dict]:
    rows, cursor = [], None
    for _ in range(100):
        query = dict(params, limit=7, **({"cursor": cursor} if cursor else {}))
        body = get(client, api, "/api/v1/requests", **query).get_json()
        rows += body["data"]
        cursor = body["next_cursor"]
        if not cursor:
            return rows
    raise AssertionError("the cursor never ended")


def test_requests_filters_search_sort_and_cursor(client, api, report):
    cat, ids = report
    body = get(client, api, "/api/v1/requests").get_json()
    assert body["total"] == 30 and len(body["data"]) == 30 and body["next_cursor"] is None
    assert [r["id"] for r in body["data"]] == sorted(ids, reverse=True)
    first = body["data"][-1]
    assert first["integration_name"] == "Основной amoCRM" and first["amo_lead_url"].startswith("https://shop.amocrm.ru/leads/detail/")

    telegram = get(client, api, "/api/v1/requests", channel="telegram").get_json()
    assert telegram["total"] == 10 and {r["channel"] for r in telegram["data"]} == {"telegram"}
    none = get(client, api, "/api/v1/requests", campaign_id="none").get_json()
    assert none["total"] > 0 and {r["campaign_id"] for r in none["data"]} == {None}
    found = get(client, api, "/api/v1/requests", q="8 (915) 000-00-21").get_json()
    assert [r["phone"] for r in found["data"]] == ["+79150000021"]
    assert get(client, api, "/api/v1/requests", q="CLIENT22@").get_json()["total"] == 1
    by_name = get(client, api, "/api/v1/requests", sort="contact_name", limit=3).get_json()["data"]
    assert [r["contact_name"] for r in by_name] == [None, None, None]

    walked = all_pages(client, api, sort="-campaign")
    assert len(walked) == 30 and len({r["id"] for r in walked}) == 30
    names = [r["campaign_name"] or "" for r in walked]
    assert names == sorted(names, reverse=True)


@pytest.mark.parametrize("params, field", [
    ({"chanel": "telegram"}, "chanel"),  # a typo must not silently return everything
    ({"channel": ""}, "channel"),
    ({"date_from": "вчера"}, "date_from"),
    ({"campaign_id": "yandex"}, "campaign_id"),
    ({"sort": "price"}, "sort"),
    ({"tz": "Moscow"}, "tz"),
    ({"cursor": "abc"}, "cursor"),
    ({"cursor": "abc", "offset": "10"}, "cursor"),
    ({"limit": "501"}, "limit"),
    ({"limit": "５"}, "limit"),
])
def test_bad_report_parameters_are_400_naming_the_parameter(client, api, params, field):
    response = get(client, api, "/api/v1/requests", **params)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "bad_parameter" and error.get("field") == field and error["message"]
    if field == "chanel":
        assert "channel" in error["message"]  # it says what the endpoint takes


def csv_rows(response) -> list[dict]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


@pytest.mark.parametrize("params", [{}, {"channel": "telegram"}, {"q": "клиент 1", "sort": "contact_name"},
                                    {"campaign_id": "none", "date_from": "2026-11-22", "date_till": "2026-11-26"},
                                    {"attribution": "session", "sort": "-created_at"}])
def test_the_csv_and_the_api_agree(client, api, report, params):
    api_rows = all_pages(client, api, **params)
    response = get(client, api, "/api/v1/requests.csv", **params)
    assert response.status_code == 200
    rows = csv_rows(response)
    assert [int(r["ID обращения"]) for r in rows] == [r["id"] for r in api_rows]
    moscow = ZoneInfo("Europe/Moscow")
    for line, row in zip(rows, api_rows):
        created = datetime.fromisoformat(row["created_at"]).astimezone(moscow).strftime("%Y-%m-%d %H:%M:%S")
        assert line["Дата и время (Europe/Moscow)"] == created
        assert line["Имя контакта"] == (row["contact_name"] or "")
        assert line["Телефон"] == (row["phone"] or "")  # an E.164 phone is written as it is: it cannot run as a formula
        assert line["Email"] == (row["email"] or "")
        assert line["Рекламная кампания"] == (row["campaign_name"] or "")
        assert line["Сайт"] == (row["site_name"] or "") and line["Источник"] == (row["source_name"] or "")
        assert line["Сделка в amoCRM"] == row["amo_lead_url"] and line["Контакт в amoCRM"] == row["amo_contact_url"]
        assert line["ID беседы amoCRM"] == str(row["talk_id"])
        assert line["Реферер"] == ("'" + row["referrer"] if row["referrer"] else "")


def test_the_csv_download(client, api, report):
    response = get(client, api, "/api/v1/requests.csv", lang="en", delimiter="semicolon", tz="UTC")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="requests_')
    text = response.get_data(as_text=True)
    assert text.splitlines()[0].lstrip("\ufeff").startswith("Request ID;Date and time (UTC);Channel;")
    assert len(text.splitlines()) == 31
    assert get(client, api, "/api/v1/requests.csv", lang="de").status_code == 400
    assert get(client, api, "/api/v1/requests.csv", delimiter="|").status_code == 400
    assert client.get("/api/v1/requests.csv").status_code == 401


def test_the_dashboard(client, api, report, services, account_id):
    cat, _ = report
    with services.session_factory() as session:
        session.get(Integration, cat.integration_id).status = "needs_reauth"
        add_event(session, account_id, cat.integration_id, status="parked")
        session.commit()
    body = get(client, api, "/api/v1/dashboard", date_from="2026-11-20", date_till="2026-11-29").get_json()
    assert body["total"] == 30 and len(body["days"]) == 10
    assert sum(s["total"] for s in body["by_channel"]) == 30
    assert body["attribution"]["counts"] == {"session": 10, "messenger": 10, "default": 10}
    assert [w["code"] for w in body["warnings"]] == ["needs_reauth"]
    assert body["integrations"][0]["backlog"]["parked"] == 1
    english = get(client, api, "/api/v1/dashboard", date_from="2026-11-20", date_till="2026-11-29", lang="en").get_json()
    assert {s["label"] for s in english["by_channel"]} == {"Telegram", "Website chat", "WhatsApp"}
    for params, field in (({"date_from": "2026-11-30", "date_till": "2026-11-29"}, "date_from"),
                          ({"date_till": "29.11.2026"}, "date_till"), ({"tz": "Moon/Base"}, "tz"), ({"lang": "fr"}, "lang")):
        response = get(client, api, "/api/v1/dashboard", **params)
        assert response.status_code == 400 and response.get_json()["error"]["field"] == field
    assert get(client, api, "/api/v1/dashboard", integration_id=cat.integration_id + 99).get_json()["total"] == 0


def test_an_integration_shows_its_warnings(client, api, services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        session.get(Integration, cat.integration_id).webhook_disabled = True
        session.commit()
    body = get(client, api, f"/api/v1/integrations/{cat.integration_id}").get_json()
    assert [w["code"] for w in body["warnings"]] == ["webhook_disabled"]
    assert body["warnings"][0]["severity"] == "error" and "вебхук" in body["warnings"][0]["message_ru"]
    assert get(client, api, "/api/v1/integrations").get_json()["data"][0]["warnings"][0]["code"] == "webhook_disabled"


def test_replay_by_filter(app, client, api, services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        failed = [add_event(session, account_id, cat.integration_id, status="failed").id for _ in range(3)]
        add_event(session, account_id, cat.integration_id, status="failed", received_at=utcnow() - timedelta(days=30))
        session.commit()
    app.extensions["chatsource.broker"].flush_all()
    response = client.post("/api/v1/events/replay", headers=api, json={
        "integration_id": cat.integration_id, "date_from": (utcnow() - timedelta(days=1)).date().isoformat()})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["queued"] == 3 and body["skipped"] == {} and body["progress_url"] == f"/api/v1/replays/{body['replay_id']}"
    assert app.extensions["chatsource.broker"].queues["talks"].qsize() == 1  # one message drains the integration

    progress = client.get(body["progress_url"], headers=api).get_json()
    assert progress["total"] == 3 and progress["pending"] == 3 and progress["finished"] is False
    listed = get(client, api, "/api/v1/events", replay_id=body["replay_id"]).get_json()
    assert sorted(e["id"] for e in listed["data"]) == sorted(failed)

    again = client.post("/api/v1/events/replay", headers=api, json={"integration_id": cat.integration_id})
    assert again.status_code == 202 and again.get_json()["queued"] == 1  # only the old one was left
    assert client.post("/api/v1/events/replay", headers=api, json={}).get_json() == {
        "replay_id": None, "queued": 0, "skipped": {}, "progress_url": None}

    b = other_account_headers(app)
    assert client.get(body["progress_url"], headers=b).status_code == 404
    refused = client.post("/api/v1/events/replay", headers=b, json={"integration_id": cat.integration_id})
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "integration_id"
    for payload, field in (({"statuses": ["done"]}, "statuses"), ({"status": ["failed"]}, "status"),
                           ({"date_from": "вчера"}, "date_from"), ({"integration_id": "1"}, "integration_id"),
                           ({"tz": 3}, "tz")):
        response = client.post("/api/v1/events/replay", headers=api, json=payload)
        assert response.status_code == 422, (payload, response.get_json())
        assert response.get_json()["error"]["field"] == field
    assert client.post("/api/v1/events/replay", headers=api, data="nope", content_type="application/json").status_code == 400


def test_unknown_api_urls_and_methods_answer_json(client, api):
    for path in ("/api/v1/nothing-here", "/api/v1/sessions/abc", "/api/v1/integrations/-1"):
        response = client.get(path, headers=api)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found", path
    response = client.delete("/api/v1/sites", headers=api)
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert client.get(f"/api/v1/integrations/{2**70}", headers=api).status_code == 404
    assert client.post("/api/v1/sources", headers=api, json={"name": "x", "priority": 2**70}).status_code == 422
    assert client.post("/api/v1/sites", headers=api, json={"name": "a\x00b", "domain": "x.ru"}).status_code == 400
    assert client.get("/not-an-api-page").mimetype == "text/html"  # the rest of the site keeps its own pages


def test_reasons_are_said_in_the_requested_language_with_their_codes(client, api, services, account_id):
    """Reasons are stored as code + params; the API says them in `lang` (Russian by default)."""
    from core.inbox import attribution_reasons as reasons
    from core.inbox import event_reasons
    from core.models import stored_message

    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        code, params = stored_message(reasons.MESSENGER(notes=[reasons.FIELD_EMPTY()], messenger="Telegram",
                                                        target=reasons.TO_CAMPAIGN(name="«Яндекс Директ»")))
        add_request(session, account_id, cat.integration_id, utcnow(), attribution="messenger",
                    attribution_reason_code=code, attribution_reason_params=params)
        event = add_event(session, account_id, cat.integration_id, status="failed")
        event.status_message = event_reasons.FAILED_AFTER_ATTEMPTS(attempts=8)
        session.commit()
    ru = get(client, api, "/api/v1/requests").get_json()["data"][0]
    en = get(client, api, "/api/v1/requests", lang="en").get_json()["data"][0]
    assert ru["attribution_reason"] == "Поле сессии пусто. Мессенджер Telegram: РК «Яндекс Директ»"
    assert en["attribution_reason"] == "The session field is empty. Messenger Telegram: ad campaign «Яндекс Директ»"
    assert ru["attribution_reason_code"] == en["attribution_reason_code"] == "attribution.messenger"
    events = {lang: get(client, api, "/api/v1/events", lang=lang).get_json()["data"][0] for lang in ("ru", "en")}
    assert (events["ru"]["status_reason"], events["en"]["status_reason"]) == ("не удалось после 8 попыток",
                                                                            "failed after 8 attempts")
    assert events["en"]["status_reason_code"] == "event.failed_after_attempts"
    assert get(client, api, "/api/v1/events", lang="de").status_code == 400
