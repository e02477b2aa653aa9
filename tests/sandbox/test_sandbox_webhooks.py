"""Webhook encoding and delivery (https://www.amocrm.ru/developers/content/crm_platform/webhooks-format)."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import parse_qsl

from sandbox.webhook_format import decode_form, encode_talk_body, encode_talk_events
from tests.helpers.sandbox_helpers import ROOT_DIR, control

TALK_FIELDS = ["talk_id", "created_at", "updated_at", "rate", "contact_id", "chat_id", "entity_id", "entity_type",
               "is_in_work", "is_read", "origin"]
ACCOUNT_KEYS = ["account[subdomain]", "account[id]", "account[_links][self]"]


def _talk(**over):
    talk = {"talk_id": 191, "created_at": 1726581000, "updated_at": 1726581548, "rate": 0, "contact_id": 11018118,
            "chat_id": "33b4c1d2-7935", "entity_id": 9276114, "entity_type": "lead", "is_in_work": False,
            "is_read": True, "origin": "telegram", "missed_at": None, "account_id": 123}
    talk.update(over)
    return talk


ACCOUNT = {"subdomain": "sub", "id": 123, "self_url": "https://sub.amocrm.ru"}


def test_encode_talk_events_exact_pairs():
    pairs = encode_talk_events("update", [_talk()], ACCOUNT)
    assert pairs == [
        ("account[subdomain]", "sub"),  # the account block comes first on live accounts
        ("account[id]", "123"),
        ("account[_links][self]", "https://sub.amocrm.ru"),
        ("talk[update][0][talk_id]", "191"),
        ("talk[update][0][created_at]", "1726581000"),
        ("talk[update][0][updated_at]", "1726581548"),
        ("talk[update][0][rate]", "0"),
        ("talk[update][0][contact_id]", "11018118"),
        ("talk[update][0][chat_id]", "33b4c1d2-7935"),
        ("talk[update][0][entity_id]", "9276114"),
        ("talk[update][0][entity_type]", "lead"),
        ("talk[update][0][is_in_work]", "0"),
        ("talk[update][0][is_read]", "1"),
        ("talk[update][0][origin]", "telegram"),
    ]
    # several talks in one body, indices 0..n; "update_talk" is accepted as the action too
    batch = encode_talk_events("update_talk", [_talk(), _talk(talk_id=192, is_in_work=True, entity_id=None,
                                                              entity_type=None)], ACCOUNT)
    keys = [k for k, _ in batch]
    assert "talk[update][1][talk_id]" in keys and ("talk[update][1][is_in_work]", "1") in batch
    assert "talk[update][1][entity_id]" not in keys  # None is left out (PHP http_build_query)


def test_body_is_urlencoded_and_decodes_back():
    body = encode_talk_body("add", [_talk(), _talk(talk_id=5)], ACCOUNT)
    assert "talk%5Badd%5D%5B0%5D%5Btalk_id%5D=191" in body
    tree = decode_form(body)
    assert tree["talk"]["add"][1]["talk_id"] == "5"
    assert tree["account"] == {"subdomain": "sub", "id": "123", "_links": {"self": "https://sub.amocrm.ru"}}


def test_webhook_format_imports_without_flask():
    code = "import sys; sys.modules['flask'] = None; import sandbox.webhook_format as w; print(w.TALK_FIELDS[0])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT_DIR, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "talk_id"


def _register(api, url, events):
    r = api.post("/api/v4/webhooks", json={"destination": url, "settings": events})
    assert r.status_code == 201
    return r.json()


def test_real_delivery_of_add_read_and_close(api, receiver, http):
    _register(api, receiver.url, ["add_talk", "update_talk"])
    chat = control(api.server, http, "/chats", {
        "contact": {"name": "Вера", "phones": ["+79001234567"], "emails": []}, "lead": {"custom_fields": {}},
        "origin": "telegram", "entity_type": "lead"})
    reqs = receiver.wait_for(1)
    assert len(reqs) == 1
    add = reqs[0]
    assert add["method"] == "POST"
    assert add["content_type"] == "application/x-www-form-urlencoded"
    keys = [k for k, _ in add["pairs"]]
    assert keys == ACCOUNT_KEYS + [f"talk[add][0][{f}]" for f in TALK_FIELDS]
    form = dict(add["pairs"])
    assert form["talk[add][0][talk_id]"] == str(chat["talk_id"])
    assert form["talk[add][0][is_in_work]"] == "1" and form["talk[add][0][is_read]"] == "0"
    assert form["talk[add][0][entity_id]"] == str(chat["lead_id"])
    assert form["talk[add][0][contact_id]"] == str(chat["contact_id"])
    assert form["account[_links][self]"] == api.server.url
    assert form["account[subdomain]"] == api.server.state.settings["subdomain"]
    assert form["account[id]"] == str(api.server.state.settings["account_id"])

    control(api.server, http, f"/talks/{chat['talk_id']}/read")
    read = dict(receiver.wait_for(2)[1]["pairs"])
    assert read["talk[update][0][is_read]"] == "1" and read["talk[update][0][is_in_work]"] == "1"

    assert api.post(f"/api/v4/talks/{chat['talk_id']}/close", json={"force_close": True}).status_code == 202
    close = receiver.wait_for(3)[2]
    assert [k for k, _ in close["pairs"]] == ACCOUNT_KEYS + [f"talk[update][0][{f}]" for f in TALK_FIELDS]
    form = dict(close["pairs"])
    assert form["talk[update][0][is_in_work]"] == "0"
    assert form["talk[update][0][talk_id]"] == str(chat["talk_id"])

    deliveries = control(api.server, http, "/deliveries", method="GET")["deliveries"]
    assert [d["event"] for d in deliveries] == ["add_talk", "update_talk", "update_talk"]
    assert all(d["status_code"] == 200 and d["valid"] for d in deliveries)
    assert deliveries[2]["body"] == close["body"]


def test_only_subscribed_events_and_enabled_hooks(api, receiver, http):
    hook = _register(api, receiver.url, ["update_talk"])
    chat = api.server.create_chat(contact={"name": "A"})
    assert receiver.requests == []  # add_talk not subscribed
    control(api.server, http, f"/webhooks/{hook['id']}/disable")
    api.server.close_talk(chat["talk_id"])
    assert receiver.requests == []
    assert api.get("/api/v4/webhooks").json()["_embedded"]["webhooks"][0]["disabled"] is True


def test_batch_and_duplicate_delivery(api, receiver, http):
    _register(api, receiver.url, ["update_talk"])
    a = api.server.create_chat(contact={"name": "A"})
    b = api.server.create_chat(contact={"name": "B"}, lead=None)
    api.server.close_talk(a["talk_id"])
    receiver.requests.clear()
    res = control(api.server, http, "/webhooks/send",
                  {"event": "update_talk", "talk_ids": [a["talk_id"], b["talk_id"]], "times": 2})
    assert len(res["deliveries"]) == 2
    reqs = receiver.wait_for(2)
    assert len(reqs) == 2 and reqs[0]["body"] == reqs[1]["body"]  # duplicate delivery
    tree = decode_form(reqs[0]["body"])
    items = tree["talk"]["update"]
    assert [i["talk_id"] for i in items] == [str(a["talk_id"]), str(b["talk_id"])]
    assert items[0]["is_in_work"] == "0" and items[1]["is_in_work"] == "1"
    assert "entity_id" not in items[1]  # talk without a lead
    # arbitrary talk events to an explicit destination
    receiver.requests.clear()
    control(api.server, http, "/webhooks/send", {"event": "update_talk", "destination": receiver.url,
                                                 "talks": [{"talk_id": 999, "is_in_work": False, "origin": "waba"}]})
    sent = dict(receiver.wait_for(1)[0]["pairs"])
    assert sent["talk[update][0][talk_id]"] == "999" and sent["talk[update][0][is_in_work]"] == "0"


def test_hook_disabled_after_more_than_100_invalid_replies(api, receiver, http):
    hook = _register(api, receiver.url, ["update_talk"])
    chat = api.server.create_chat(contact={"name": "A"})
    receiver.status = 500
    control(api.server, http, "/webhooks/send", {"talk_ids": [chat["talk_id"]], "times": 100})
    assert api.get("/api/v4/webhooks").json()["_embedded"]["webhooks"][0]["disabled"] is False
    control(api.server, http, "/webhooks/send", {"talk_ids": [chat["talk_id"]]})
    assert len(receiver.requests) == 101
    assert api.get("/api/v4/webhooks").json()["_embedded"]["webhooks"][0]["disabled"] is True
    api.server.close_talk(chat["talk_id"])
    assert len(receiver.requests) == 101  # no more deliveries to a disabled hook
    # re-posting the destination does not re-enable it (re-enable is an admin action in the UI) [inf]
    _register(api, receiver.url, ["update_talk"])
    assert api.get("/api/v4/webhooks").json()["_embedded"]["webhooks"][0]["disabled"] is True
    control(api.server, http, f"/webhooks/{hook['id']}/enable")
    assert api.get("/api/v4/webhooks").json()["_embedded"]["webhooks"][0]["disabled"] is False


def test_slow_reply_counts_as_invalid(api, receiver):
    api.server.configure(webhook_timeout=0.2)
    _register(api, receiver.url, ["add_talk"])
    receiver.delay = 0.5
    res = api.server.create_chat(contact={"name": "slow"})
    d = res["deliveries"][0]
    assert d["valid"] is False and d["error"] == "timeout"
    receiver.delay = 0
    receiver.status = 302
    d = api.server.create_chat(contact={"name": "redirect"})["deliveries"][0]
    assert d["valid"] is False and d["status_code"] == 302


def test_async_delivery_and_retries(api, receiver, http):
    api.server.configure(deliver_async=True, webhook_retries=True, webhook_retry_scale=0.0002)
    _register(api, receiver.url, ["add_talk"])
    receiver.status = 503
    api.server.create_chat(contact={"name": "async"})
    # 503 -> attempts 2..5 on amo's schedule (5m, 15m, 15m, 1h scaled down)
    reqs = receiver.wait_for(5, timeout=10)
    assert len(reqs) == 5
    deliveries = control(api.server, http, "/deliveries?wait=5", method="GET")["deliveries"]
    assert [d["attempt"] for d in deliveries] == [1, 2, 3, 4, 5]
    assert parse_qsl(reqs[0]["body"]) == parse_qsl(reqs[4]["body"])
