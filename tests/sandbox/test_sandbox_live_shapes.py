"""What the sandbox sends as live amoCRM accounts do (beyond the docs): the account block first in
webhook bodies, `custom_fields_values: null`, `_links.self` repeating the query, the talk `status`,
and `GET /api/v4/talks` paged with 204 at the end."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from tests.helpers.sandbox_helpers import control


def _chat(api, http, **over):
    body = {"contact": {"name": "Вера"}, "lead": {}, "origin": "telegram", "entity_type": "lead"}
    body.update(over)
    return control(api.server, http, "/chats", body)


def test_webhook_bodies_start_with_the_account_block(api, receiver, http):
    api.post("/api/v4/webhooks", json={"destination": receiver.url, "settings": ["add_talk"]})
    _chat(api, http)
    [delivery] = receiver.wait_for(1)
    keys = [k for k, _ in parse_qsl(delivery["body"], keep_blank_values=True)]
    assert keys[:3] == ["account[subdomain]", "account[id]", "account[_links][self]"]
    assert keys[3].startswith("talk[add][0][") and "talk[add][0][status]" not in keys  # exactly the 11 fields


def test_entities_without_fields_have_null_custom_fields_values(api, http):
    chat = _chat(api, http)
    contact = api.get(f"/api/v4/contacts/{chat['contact_id']}").json()
    assert contact["custom_fields_values"] is None


def test_self_link_repeats_the_query_string(api, http):
    chat = _chat(api, http)
    r = api.get("/api/v4/contacts", params=[("filter[id][]", chat["contact_id"]), ("with", "leads"), ("limit", 50)])
    query = dict(parse_qsl(urlsplit(r.json()["_links"]["self"]["href"]).query))
    assert query["with"] == "leads" and query["filter[id][]"] == str(chat["contact_id"]) and query["limit"] == "50"


def test_talks_carry_a_status(api, http):
    chat = _chat(api, http)
    assert api.get(f"/api/v4/talks/{chat['talk_id']}").json()["status"] == "in_work"
    control(api.server, http, f"/talks/{chat['talk_id']}/close", {"force_close": True})
    assert api.get(f"/api/v4/talks/{chat['talk_id']}").json()["status"] == "closed"


def test_talks_list_pages_and_ends_with_204(api, http):
    ids = {_chat(api, http)["talk_id"] for _ in range(3)}
    first = api.get("/api/v4/talks", params={"limit": 2, "page": 1, "filter[is_in_work]": 1})
    assert first.status_code == 200 and len(first.json()["_embedded"]["talks"]) == 2
    assert "next" in first.json()["_links"]
    second = api.get("/api/v4/talks", params={"limit": 2, "page": 2})
    seen = {t["talk_id"] for t in first.json()["_embedded"]["talks"] + second.json()["_embedded"]["talks"]}
    assert seen == ids and "next" not in second.json()["_links"]
    end = api.get("/api/v4/talks", params={"limit": 2, "page": 3})
    assert end.status_code == 204 and end.content == b""
    assert api.get("/api/v4/talks", params={"limit": 251}).status_code == 422
