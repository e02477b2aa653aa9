"""Live accounts, end to end against the sandbox: e-mail conversations are talks too (kept as ignored
until the channel is switched on, then recorded by a replay), foreign phones without "+", and a
session id that sits on the contact while the lead's field is empty or "null"."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.models import WebhookEvent
from core.platform.messages import render
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, events_of, post, requests_of
from web.messages import translations_for

pytestmark = pytest.mark.e2e

EMAIL_REASON = "канал Электронная почта не передаётся: включите его в настройках интеграции"


def close_chat(amo, origin="telegram", lead=None, contact=None):
    chat = amo.state.create_chat(contact=contact or {"name": "Анна"}, lead=lead or {}, origin=origin)
    amo.state.close_talk(chat["talk_id"], force_close=True, control=True)
    return chat


def patch(client, api, integration_id, body):
    response = client.patch(f"/api/v1/integrations/{integration_id}", headers=api, json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_e_mail_talks_are_ignored_until_the_channel_is_switched_on_and_replayed(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    assert client.get(f"/api/v1/integrations/{setup.integration_id}", headers=api).get_json()["excluded_channels"] == ["email"]
    mail = close_chat(amo, origin="com.amocrm.mail")
    close_chat(amo, origin="telegram")
    drain(app)
    assert [r["channel"] for r in requests_of(client, api)] == ["telegram"]
    [event] = [e for e in events_of(client, api) if e["talk_id"] == mail["talk_id"] and e["status"] != "skipped"]
    assert (event["status"], event["status_reason"]) == ("ignored", EMAIL_REASON)

    # replayed while still switched off: ignored again, with the same reason
    post(client, f"/api/v1/events/{event['id']}/replay", api, {})
    drain(app)
    assert len(requests_of(client, api)) == 1

    assert patch(client, api, setup.integration_id, {"excluded_channels": []})["excluded_channels"] == []
    post(client, "/api/v1/events/replay", api, {"integration_id": setup.integration_id, "statuses": ["ignored"]})
    drain(app)
    channels = sorted(r["channel"] for r in requests_of(client, api))
    assert channels == ["email", "telegram"]


def test_switching_a_channel_off_applies_to_events_already_waiting(app, client, api, amo, services):
    setup = connected_integration(client, api, amo)
    close_chat(amo, origin="com.wazzup24.insta")  # stored as received: Instagram is passed
    patch(client, api, setup.integration_id, {"excluded_channels": ["instagram"]})
    drain(app)
    assert requests_of(client, api) == []
    with services.session_factory() as session:
        ignored = session.scalars(sa.select(WebhookEvent).where(WebhookEvent.status == "ignored")).all()
        reasons = [render(e.status_message, translations_for("ru")) for e in ignored]
    assert reasons == ["канал Instagram не передаётся: включите его в настройках интеграции"]


def test_bad_channel_lists_are_422(client, api, amo):
    setup = connected_integration(client, api, amo, activate=False)
    for bad in ("email", ["E-mail"], [1], ["x" * 31]):
        response = client.patch(f"/api/v1/integrations/{setup.integration_id}", headers=api, json={"excluded_channels": bad})
        assert response.status_code == 422 and response.get_json()["error"]["field"] == "excluded_channels", bad


def test_a_foreign_phone_without_plus_becomes_its_country_s_e164_and_the_raw_value_is_kept(app, client, api, amo):
    connected_integration(client, api, amo)
    close_chat(amo, origin="com.wazzup24.wz", contact={"name": "Maria", "phones": ["5521912345678"]})
    close_chat(amo, origin="telegram", contact={"name": "Иван", "phones": ["8 916 123-45-67"]})
    drain(app)
    rows = requests_of(client, api)
    phones = sorted((r["phone"], r["phone_raw"], r["channel"]) for r in rows)
    assert phones == [("+5521912345678", "5521912345678", "whatsapp"), ("+79161234567", "8 916 123-45-67", "telegram")]
    # the reason names the messenger with its capitals (it used to read «wazzup whatsapp»)
    [wazzup] = [r for r in rows if r["channel"] == "whatsapp"]
    assert "для мессенджера Wazzup WhatsApp нет соответствия" in wazzup["attribution_reason"]


@pytest.mark.parametrize("lead_value", [None, "null", "  "])
def test_the_session_is_taken_from_the_contact_when_the_lead_s_field_is_empty(app, client, api, amo, lead_value):
    setup = connected_integration(client, api, amo)
    patch(client, api, setup.integration_id, {"session_field_name": "Сессия UIS"})
    contact_field = amo.state.add_custom_field("contacts", "Сессия UIS")
    visit = post(client, "/api/v1/sessions", api, {"site_id": setup.site_id, "entrance_page": "https://shop.example.ru/"})
    lead = {"custom_fields": {str(setup.session_field_id): lead_value}} if lead_value is not None else {}
    encoded = "".join(f"%{ord(ch):X}" for ch in str(visit["id"]))  # "%31%32" for 12
    close_chat(amo, lead=lead, contact={"name": "Анна", "custom_fields": {str(contact_field["id"]): encoded}})
    drain(app)
    [req] = requests_of(client, api)
    assert req["attribution"] == "session" and req["session_id"] == visit["id"]
    assert "поле сессии пусто в сделке, взято из контакта" in req["attribution_reason"]


def test_null_in_the_field_reads_as_empty_not_as_a_bad_number(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    close_chat(amo, origin="telegram", lead={"custom_fields": {str(setup.session_field_id): "undefined"}})
    drain(app)
    [req] = requests_of(client, api)
    assert req["attribution"] == "messenger"
    assert req["attribution_reason"].startswith("Поле сессии пусто. Мессенджер Telegram")


def test_a_contact_field_session_falls_back_to_the_lead_in_one_batched_call(app, client, api, amo, services):
    setup = connected_integration(client, api, amo)
    contact_field = amo.state.add_custom_field("contacts", "Сессия UIS")
    patch(client, api, setup.integration_id, {"session_field_entity": "contacts", "session_field_id": contact_field["id"],
                                              "session_field_name": "Сессия UIS"})
    visits = [post(client, "/api/v1/sessions", api, {"site_id": setup.site_id, "entrance_page": "https://shop.example.ru/"})
              for _ in range(3)]
    for visit in visits:
        close_chat(amo, lead={"custom_fields": {str(setup.session_field_id): f" #{visit['id']} "}})
    amo.state.reset_stats()
    drain(app)
    calls = amo.state.get_stats()["calls_by_endpoint"]
    assert sum(n for key, n in calls.items() if "leads" in key) == 1, calls
    assert sum(n for key, n in calls.items() if "contacts" in key) == 1, calls
    rows = requests_of(client, api)
    assert sorted(r["session_id"] for r in rows) == sorted(v["id"] for v in visits)
    assert all("поле сессии пусто в контакте, взято из сделки" in r["attribution_reason"] for r in rows)
