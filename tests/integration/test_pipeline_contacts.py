"""End to end with the amoCRM sandbox: what the contact and the session field look like in real
accounts — a session of another account, the field on the contact, contacts without phone or e-mail,
deleted contacts, leads without contacts, several phones and e-mails, a talk closed twice."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.access.accounts import create_account
from tests.helpers.apps import api_headers_for, drain
from tests.helpers.pipeline_helpers import connected_integration, post, requests_of

pytestmark = pytest.mark.e2e


def close(amo, talk_id):
    amo.state.close_talk(talk_id, force_close=True, control=True)


def test_a_session_of_another_account_gives_no_attribution(app, client, api, amo, services):
    setup = connected_integration(client, api, amo)
    with services.session_factory() as session:
        other = create_account(session, "Чужой кабинет").id
        session.commit()
    other_api = api_headers_for(app, other, "other")
    other_site = post(client, "/api/v1/sites", other_api, {"name": "Чужой сайт", "domain": "other.example.ru"})
    other_campaign = post(client, "/api/v1/campaigns", other_api, {
        "name": "Чужая РК", "site_id": other_site["id"], "conditions": [[{"param": "utm_source", "op": "eq", "value": "x"}]]})
    foreign = post(client, "/api/v1/sessions", other_api, {"site_id": other_site["id"], "utm_source": "x"})
    assert foreign["campaign_id"] == other_campaign["id"]

    chat = amo.state.create_chat(contact={"name": "Ольга"}, origin="viber",
                                 lead={"custom_fields": {str(setup.session_field_id): str(foreign["id"])}})
    close(amo, chat["talk_id"])
    drain(app)
    [req] = requests_of(client, api)
    assert req["attribution"] == "default" and req["session_id"] is None
    assert req["campaign_id"] == setup.default_campaign_id and req["site_id"] == setup.site_id
    assert f"сессия {foreign['id']} не найдена" in req["attribution_reason"].lower()


def test_the_session_field_can_live_on_the_contact(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    field = amo.state.add_custom_field("contacts", "Сессия сайта", "text")
    response = client.patch(f"/api/v1/integrations/{setup.integration_id}", headers=api,
                            json={"session_field_id": field["id"], "session_field_entity": "contacts"})
    assert response.status_code == 200, response.get_json()
    visit = post(client, "/api/v1/sessions", api, {"site_id": setup.site_id, "utm_source": "yandex"})
    chat = amo.state.create_chat(contact={"name": "Пётр", "custom_fields": {str(field["id"]): str(visit["id"])}},
                                 origin="telegram")
    close(amo, chat["talk_id"])
    drain(app)
    [req] = requests_of(client, api)
    assert req["attribution"] == "session" and req["session_id"] == visit["id"]
    assert req["utm_source"] == "yandex"


def test_contacts_as_amocrm_holds_them(app, client, api, amo):
    connected_integration(client, api, amo)
    bare = amo.state.create_chat(contact={"name": "Без контактов"}, origin="telegram")
    several = amo.state.create_chat(contact={"name": "Два номера", "phones": ["+7 916 111-22-33", "+7 916 444-55-66"],
                                             "emails": ["First@Example.ru", "second@example.ru"]}, origin="telegram")
    deleted = amo.state.create_chat(contact={"name": "Удалённый", "phones": ["+79160000000"]}, origin="telegram")
    no_lead = amo.state.create_chat(contact={"name": "Без сделки", "phones": ["+79161112233"]}, lead=None,
                                    entity_type=None, origin="telegram")
    with amo.state.lock:  # the manager deleted the contact before the chat was closed
        del amo.state.contacts[deleted["contact_id"]]
    for chat in (bare, several, deleted, no_lead):
        close(amo, chat["talk_id"])
    drain(app)
    by_talk = {r["talk_id"]: r for r in requests_of(client, api)}
    assert set(by_talk) == {bare["talk_id"], several["talk_id"], deleted["talk_id"], no_lead["talk_id"]}
    assert (by_talk[bare["talk_id"]]["contact_name"], by_talk[bare["talk_id"]]["phone"],
            by_talk[bare["talk_id"]]["email"]) == ("Без контактов", None, None)
    # The first phone and the first e-mail, as amoCRM lists them.
    assert (by_talk[several["talk_id"]]["phone"], by_talk[several["talk_id"]]["email"]) == ("+79161112233", "first@example.ru")
    gone = by_talk[deleted["talk_id"]]
    assert gone["contact_name"] is None and gone["phone"] is None and gone["amo_contact_id"] == deleted["contact_id"]
    lone = by_talk[no_lead["talk_id"]]
    assert lone["amo_lead_id"] is None and lone["phone"] == "+79161112233" and lone["attribution"] == "messenger"


def test_a_talk_closed_again_keeps_one_request_and_its_first_close(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    chat = amo.state.create_chat(contact={"name": "Вера"}, origin="telegram")
    close(amo, chat["talk_id"])
    drain(app)
    [first] = requests_of(client, api)
    amo.state.advance_clock(3600)
    with amo.state.lock:  # the client wrote again and the manager reopened the talk
        talk = amo.state.talks[chat["talk_id"]]
        talk["is_in_work"] = True
        talk["updated_at"] = amo.state.now()
    amo.state.send_talk_events(event="update_talk", talk_ids=[chat["talk_id"]])
    amo.state.advance_clock(600)
    close(amo, chat["talk_id"])
    drain(app)
    [again] = requests_of(client, api)
    assert again["id"] == first["id"] and again["closed_at"] == first["closed_at"]
    assert datetime.fromisoformat(first["closed_at"]) < datetime.fromtimestamp(amo.state.now() - 600, tz=timezone.utc)
    assert setup.integration_id == again["integration_id"]
