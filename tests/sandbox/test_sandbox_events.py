"""The sandbox's event log (https://www.amocrm.ru/developers/content/crm_platform/events-and-notes): talk_created / talk_closed, the filters, paging by
at most 100, 204 when nothing matches, and the knob that stops webhook delivery (a disabled hook)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from tests.helpers.sandbox_helpers import control

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def closed_chats(server, n):
    ids = []
    for i in range(n):
        chat = server.create_chat(contact={"name": f"Клиент {i}"})
        server.close_talk(chat["talk_id"])
        ids.append(chat["talk_id"])
    return ids


def test_creating_and_closing_a_talk_logs_events_in_the_live_shape(api):
    [talk_id] = closed_chats(api.server, 1)
    r = api.get("/api/v4/events", params=[("filter[type][]", "talk_closed")])
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/hal+json")
    [event] = r.json()["_embedded"]["events"]
    assert ULID.match(event["id"])
    assert {k: event[k] for k in ("type", "entity_id", "entity_type", "value_after", "value_before", "account_id")} == {
        "type": "talk_closed", "entity_id": talk_id, "entity_type": "talk",
        "value_after": [{"talk": {"id": talk_id}}], "value_before": [], "account_id": api.server.state.settings["account_id"],
    }
    assert isinstance(event["created_at"], int) and "created_by" in event
    both = api.get("/api/v4/events", params={"filter[type]": "talk_created,talk_closed"}).json()["_embedded"]["events"]
    assert sorted(e["type"] for e in both) == ["talk_closed", "talk_created"]


def test_filters_paging_by_100_and_204(api):
    talk_ids = closed_chats(api.server, 3)
    now = api.server.state.now()
    api.server.add_event(type="talk_closed", created_at=now - 3600, value_after=[{"talk": {"id": 999}}])
    params = [("filter[type][]", "talk_closed"), ("filter[created_at][from]", now - 60), ("limit", 2)]
    first = api.get("/api/v4/events", params=params)
    body = first.json()
    assert len(body["_embedded"]["events"]) == 2 and body["_page"] == 1
    self_query = parse_qsl(urlsplit(body["_links"]["self"]["href"]).query)
    assert ("filter[created_at][from]", str(now - 60)) in self_query and ("limit", "2") in self_query
    second = api.get(urlsplit(body["_links"]["next"]["href"]).path + "?" + urlsplit(body["_links"]["next"]["href"]).query)
    page2 = second.json()
    assert "next" not in page2["_links"]
    seen = [e["value_after"][0]["talk"]["id"] for e in body["_embedded"]["events"] + page2["_embedded"]["events"]]
    assert sorted(seen) == sorted(talk_ids)  # the old event is outside the window
    old = api.get("/api/v4/events", params=[("filter[type][]", "talk_closed"), ("filter[created_at][to]", now - 60)])
    assert [e["value_after"][0]["talk"]["id"] for e in old.json()["_embedded"]["events"]] == [999]
    assert api.get("/api/v4/events", params={"limit": 100}).status_code == 200
    too_many = api.get("/api/v4/events", params={"limit": 101})
    assert too_many.status_code == 422 and "100" in too_many.json()["detail"]
    none = api.get("/api/v4/events", params=[("filter[type][]", "talk_missed_event")])
    assert none.status_code == 204 and none.content == b""
    bad = api.get("/api/v4/events", params={"filter[created_at][from]": "yesterday"})
    assert bad.status_code == 400


def test_the_talk_id_can_be_put_elsewhere_or_nowhere(api, http):
    control(api.server, http, "/settings", {"talk_event_shape": "talk_id"})
    [talk_id] = closed_chats(api.server, 1)
    [event] = api.get("/api/v4/events", params=[("filter[type][]", "talk_closed")]).json()["_embedded"]["events"]
    assert event["value_after"] == [{"talk_id": talk_id}] and event["entity_type"] == "lead"
    added = control(api.server, http, "/events", {"type": "talk_closed", "entity_type": "talk", "entity_id": 5})
    assert ULID.match(added["id"]) and added["created_at"] > 0
    logged = control(api.server, http, "/events", method="GET")["events"]
    assert sorted(e["type"] for e in logged) == ["talk_closed", "talk_closed", "talk_created"]
    r = http.post(f"{api.server.url}/_sandbox/events", json={"entity_id": 5})
    assert r.status_code == 400


def test_disabled_hooks_deliver_nothing_until_enabled(amo, http, receiver):
    amo.state.upsert_webhook(receiver.url, ["update_talk"])
    disabled = control(amo, http, "/webhooks/disable", {})["webhooks"]
    assert [h["disabled"] for h in disabled] == [True]
    chat = amo.create_chat(contact={"name": "Пётр"})
    assert amo.close_talk(chat["talk_id"])["deliveries"] == []
    control(amo, http, "/webhooks/enable", {})
    assert len(amo.close_talk(amo.create_chat(contact={"name": "Иван"})["talk_id"])["deliveries"]) == 1
