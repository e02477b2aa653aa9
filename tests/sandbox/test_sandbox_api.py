"""API v4 subset of the sandbox: talks, contacts and leads, limits (https://www.amocrm.ru/developers/content/crm_platform/talks-api, …)."""

from __future__ import annotations

from tests.helpers.sandbox_helpers import control

TALK_KEYS = {
    "talk_id", "created_at", "updated_at", "rate", "contact_id", "chat_id", "entity_id", "entity_type",
    "is_in_work", "is_read", "origin", "missed_at", "account_id", "status", "_embedded", "_links",
}


def test_account_and_headers(api):
    r = api.get("/api/v4/account")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/hal+json")
    assert r.headers.get("X-Request-Id")
    body = r.json()
    for key in ("id", "name", "subdomain", "current_user_id", "country", "currency", "is_unsorted_on", "_links"):
        assert key in body
    assert body["_links"]["self"]["href"] == f"{api.server.url}/api/v4/account"
    r2 = api.get("/api/v4/account", params={"with": "amojo_id,version"})
    assert "amojo_id" in r2.json() and "version" in r2.json()
    assert r2.headers["X-Request-Id"] != r.headers["X-Request-Id"]


def test_errors_are_problem_json_with_request_id(api, http):
    r = http.get(f"{api.server.url}/api/v4/account")
    assert r.status_code == 401
    assert r.headers.get("X-Request-Id")
    r = api.get("/api/v4/no_such_thing")
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/problem+json")


def test_talk_fields_close_and_422(api):
    chat = api.server.create_chat(contact={"name": "Олег", "phones": ["+79990001122"]}, origin="waba")
    r = api.get(f"/api/v4/talks/{chat['talk_id']}")
    assert r.status_code == 200
    talk = r.json()
    assert set(talk) == TALK_KEYS
    assert talk["talk_id"] == chat["talk_id"] and "id" not in talk
    assert talk["is_in_work"] is True and talk["is_read"] is False
    assert talk["origin"] == "waba" and talk["entity_type"] == "lead" and talk["entity_id"] == chat["lead_id"]
    assert talk["contact_id"] == chat["contact_id"] and talk["chat_id"] == chat["chat_id"]
    assert talk["missed_at"] is None and talk["rate"] == 0
    assert talk["_embedded"]["contacts"][0]["id"] == chat["contact_id"]
    assert talk["_embedded"]["leads"][0]["id"] == chat["lead_id"]

    r = api.post(f"/api/v4/talks/{chat['talk_id']}/close", json={"force_close": True})
    assert r.status_code == 202
    assert r.content == b""
    assert api.get(f"/api/v4/talks/{chat['talk_id']}").json()["is_in_work"] is False
    r = api.post(f"/api/v4/talks/{chat['talk_id']}/close")
    assert r.status_code == 422
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert api.get("/api/v4/talks/999999").status_code == 404
    assert api.post("/api/v4/talks/999999/close").status_code == 404


def test_close_without_force_starts_nps_bot_when_enabled(api, http):
    api.server.configure(nps_bot=True)
    chat = api.server.create_chat(contact={"name": "NPS"})
    assert api.post(f"/api/v4/talks/{chat['talk_id']}/close").status_code == 202
    assert api.get(f"/api/v4/talks/{chat['talk_id']}").json()["is_in_work"] is True  # bot running
    assert api.post(f"/api/v4/talks/{chat['talk_id']}/close", json={"force_close": True}).status_code == 422
    control(api.server, http, f"/talks/{chat['talk_id']}/rate", {"rate": 9})
    talk = api.get(f"/api/v4/talks/{chat['talk_id']}").json()
    assert talk["is_in_work"] is False and talk["rate"] == 9


def _make_contacts(server, n):
    return [server.state.add_contact(f"Контакт {i}", phones=[f"+7900000{i:04d}"])["id"] for i in range(n)]


def test_contacts_filter_by_id_variants_and_204(api):
    ids = _make_contacts(api.server, 5)
    r = api.get("/api/v4/contacts", params=[("filter[id][]", ids[0]), ("filter[id][]", ids[3])])
    assert r.status_code == 200
    assert sorted(c["id"] for c in r.json()["_embedded"]["contacts"]) == sorted([ids[0], ids[3]])
    r = api.get("/api/v4/contacts", params=[("filter[id][0]", ids[1]), ("filter[id][1]", ids[2])])
    assert sorted(c["id"] for c in r.json()["_embedded"]["contacts"]) == sorted(ids[1:3])
    r = api.get("/api/v4/contacts", params={"filter[id]": ids[4]})
    assert [c["id"] for c in r.json()["_embedded"]["contacts"]] == [ids[4]]
    r = api.get("/api/v4/contacts", params={"filter[id][]": 123})
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers.get("X-Request-Id")


def test_limit_250_and_paging_links(api):
    _make_contacts(api.server, 5)
    r = api.get("/api/v4/contacts", params={"limit": 251})
    assert r.status_code == 422
    assert r.json()["detail"] == "Limit 250 per page"
    assert api.get("/api/v4/contacts", params={"limit": 250}).status_code == 200
    seen, url, pages = [], "/api/v4/contacts?limit=2", 0
    while url:
        r = api.http.get(url if url.startswith("http") else api.server.url + url, headers=api.headers())
        assert r.status_code == 200
        body = r.json()
        pages += 1
        assert body["_page"] == pages
        seen += [c["id"] for c in body["_embedded"]["contacts"]]
        url = body["_links"].get("next", {}).get("href")
    assert pages == 3 and len(seen) == 5 == len(set(seen))
    assert api.get("/api/v4/contacts", params={"limit": 2, "page": 4}).status_code == 204


def test_contact_shape_with_leads_and_null_custom_fields(api):
    c = api.server.state.add_contact("Без полей")
    r = api.get(f"/api/v4/contacts/{c['id']}")
    assert r.status_code == 200
    assert r.json()["custom_fields_values"] is None
    chat = api.server.create_chat(contact={"name": "Ирина Ким", "phones": ["+79161112233"],
                                           "emails": ["irina@example.ru"]})
    r = api.get("/api/v4/contacts", params={"filter[id][]": chat["contact_id"], "with": "leads"})
    contact = r.json()["_embedded"]["contacts"][0]
    assert contact["name"] == "Ирина Ким"
    assert contact["_embedded"]["leads"][0]["id"] == chat["lead_id"]
    by_code = {f["field_code"]: f for f in contact["custom_fields_values"]}
    phone = by_code["PHONE"]
    assert phone["field_type"] == "multitext" and phone["field_name"] == "Телефон"
    assert phone["values"][0]["value"] == "+79161112233"
    assert phone["values"][0]["enum_code"] == "WORK" and isinstance(phone["values"][0]["enum_id"], int)
    assert by_code["EMAIL"]["values"][0]["value"] == "irina@example.ru"
    # the RU docs spell the key "enum": knob to test the client reads both
    api.server.configure(multitext_enum_key="enum")
    v = api.get(f"/api/v4/contacts/{chat['contact_id']}").json()["custom_fields_values"][0]["values"][0]
    assert "enum" in v and "enum_code" not in v


def test_leads_with_contacts_and_custom_fields(api, http):
    session_field = next(f for f in api.server.state.list_fields("leads") if f["name"] == "Сессия UIS")
    res = control(api.server, http, "/chats", {
        "contact": {"name": "Пётр"}, "lead": {"custom_fields": {str(session_field["id"]): "S-42"}},
        "origin": "telegram", "entity_type": "lead"})
    r = api.get("/api/v4/leads", params={"filter[id][]": res["lead_id"], "with": "contacts"})
    lead = r.json()["_embedded"]["leads"][0]
    assert lead["_embedded"]["contacts"] == [
        {"id": res["contact_id"], "is_main": True, "_links": lead["_embedded"]["contacts"][0]["_links"]}]
    cf = lead["custom_fields_values"]
    assert cf == [{"field_id": session_field["id"], "field_name": "Сессия UIS", "field_code": None,
                   "field_type": "text", "values": [{"value": "S-42"}]}]
    one = api.get(f"/api/v4/leads/{res['lead_id']}", params={"with": "contacts"})
    assert one.status_code == 200 and one.json()["id"] == res["lead_id"]


def test_unknown_entity_by_id_is_204_by_default_and_404_by_knob(api):
    r = api.get("/api/v4/leads/42")
    assert r.status_code == 204 and r.content == b""
    api.server.configure(missing_entity_status=404)
    assert api.get("/api/v4/leads/42").status_code == 404
    assert api.get("/api/v4/contacts/42").status_code == 404


def test_custom_fields_at_most_50_per_page(api):
    for i in range(40):
        api.server.state.add_custom_field("leads", f"Поле {i}", "text")
    total = len(api.server.state.list_fields("leads"))
    assert total == 60
    r = api.get("/api/v4/leads/custom_fields", params={"limit": 250})
    body = r.json()
    assert r.status_code == 200
    assert len(body["_embedded"]["custom_fields"]) == 50
    assert body["_total_items"] == 60 and body["_page"] == 1 and body["_page_count"] == 2
    assert "next" in body["_links"] and "last" in body["_links"] and "self" in body["_links"]
    field = body["_embedded"]["custom_fields"][0]
    for key in ("id", "name", "type", "code", "sort", "is_api_only", "enums", "entity_type"):
        assert key in field
    r2 = api.http.get(body["_links"]["next"]["href"], headers=api.headers())
    body2 = r2.json()
    assert body2["_page"] == 2 and len(body2["_embedded"]["custom_fields"]) == 10
    assert "next" not in body2["_links"]
    ids = [f["id"] for f in body["_embedded"]["custom_fields"] + body2["_embedded"]["custom_fields"]]
    assert len(set(ids)) == 60


def test_custom_fields_seed_and_type_filter(api):
    r = api.get("/api/v4/contacts/custom_fields", params=[("filter[type][0]", "tracking_data")])
    fields = r.json()["_embedded"]["custom_fields"]
    names = {f["name"] for f in fields}
    for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_referrer",
                 "referrer", "gclid", "yclid", "fbclid", "roistat", "_ym_uid"):
        assert name in names
    assert all(f["type"] == "tracking_data" for f in fields)
    contact_fields = {f["code"]: f for f in api.get("/api/v4/contacts/custom_fields").json()["_embedded"]["custom_fields"]}
    assert contact_fields["PHONE"]["type"] == "multitext"
    assert {e["value"] for e in contact_fields["PHONE"]["enums"]} >= {"WORK", "MOB"}
    assert "POSITION" in contact_fields and "EMAIL" in contact_fields
    lead_fields = api.get("/api/v4/leads/custom_fields").json()["_embedded"]["custom_fields"]
    assert any(f["name"] == "Сессия UIS" and f["type"] == "text" for f in lead_fields)
    assert api.get("/api/v4/leads/custom_fields", params={"filter[type][]": "birthday"}).status_code == 204


def test_webhooks_registry_replace_semantics(api):
    dest = "https://chatsource.example/webhooks/amocrm/tok123"
    assert api.get("/api/v4/webhooks").status_code == 204
    r = api.post("/api/v4/webhooks", json={"destination": dest, "settings": ["add_talk", "update_talk"]})
    assert r.status_code == 201
    hook = r.json()
    for key in ("id", "destination", "settings", "disabled", "sort", "created_at", "updated_at", "created_by",
                "account_id"):
        assert key in hook
    assert hook["settings"] == ["add_talk", "update_talk"] and hook["disabled"] is False
    r = api.post("/api/v4/webhooks", json={"destination": dest, "settings": ["update_talk"], "sort": 5})
    assert r.status_code == 201
    assert r.json()["id"] == hook["id"]
    assert r.json()["settings"] == ["update_talk"]  # replaced, not merged
    other = api.post("/api/v4/webhooks", json={"destination": dest + "x", "settings": ["add_lead"]}).json()
    lst = api.get("/api/v4/webhooks").json()
    assert lst["_total_items"] == 2
    r = api.get("/api/v4/webhooks", params={"filter[destination]": dest})
    hooks = r.json()["_embedded"]["webhooks"]
    assert [h["id"] for h in hooks] == [hook["id"]] and hooks[0]["settings"] == ["update_talk"]
    assert api.get("/api/v4/webhooks", params={"filter[destination]": "https://nope"}).status_code == 204
    r = api.post("/api/v4/webhooks", json={"destination": dest, "settings": ["update_talk", "talk_closed"]})
    assert r.status_code == 400
    assert r.json()["validation-errors"][0]["errors"][0]["path"] == "settings.1"
    assert api.post("/api/v4/webhooks", json={"destination": "not a url", "settings": ["add_talk"]}).status_code == 400
    assert api.delete("/api/v4/webhooks", json={"destination": dest}).status_code == 204
    assert api.delete("/api/v4/webhooks", json={"destination": dest}).status_code == 404
    assert [h["id"] for h in api.get("/api/v4/webhooks").json()["_embedded"]["webhooks"]] == [other["id"]]


def test_at_most_100_webhooks(api):
    for i in range(100):
        api.server.state.upsert_webhook(f"https://h{i}.example/hook", ["add_talk"])
    r = api.post("/api/v4/webhooks", json={"destination": "https://one-more.example/", "settings": ["add_talk"]})
    assert r.status_code == 400
    # updating an existing destination is still fine
    r = api.post("/api/v4/webhooks", json={"destination": "https://h0.example/hook", "settings": ["update_talk"]})
    assert r.status_code == 201
