"""amoCRM's form encoding in, talk items out — or a clear reason why not."""
from urllib.parse import parse_qsl

import pytest

from core.inbox.webhooks import MalformedWebhook, dedupe_key, parse_webhook
from sandbox.webhook_format import encode_talk_body

ACCOUNT = {"id": 123, "subdomain": "sub", "_links": {"self": "https://sub.amocrm.ru"}}


def talk(talk_id, **over):
    base = dict(talk_id=talk_id, created_at=1726581000, updated_at=1726581548, rate=0, contact_id=11018118,
                chat_id="33b4-7935", entity_id=9276114, entity_type="lead", is_in_work=False, is_read=True, origin="telegram")
    base.update(over)
    return base


def pairs(body: str):
    return parse_qsl(body, keep_blank_values=True)


def test_close_event_as_amocrm_sends_it():
    parsed = parse_webhook(pairs(encode_talk_body("update", [talk(191)], ACCOUNT)))
    assert parsed.account["id"] == "123" and parsed.account["subdomain"] == "sub"
    [item] = parsed.talks
    assert item.action == "update" and item.talk_id == 191 and item.is_closed
    assert item.fields["origin"] == "telegram" and item.fields["is_in_work"] == "0"


def test_several_items_in_one_body_all_parsed():
    body = encode_talk_body("update", [talk(1), talk(2, is_in_work=True), talk(3)], ACCOUNT)
    parsed = parse_webhook(pairs(body))
    assert [t.talk_id for t in parsed.talks] == [1, 2, 3]
    assert [t.is_closed for t in parsed.talks] == [True, False, True]


def test_indices_above_nine_keep_their_order_and_gaps_are_fine():
    raw = [("talk[update][10][talk_id]", "10"), ("talk[update][2][talk_id]", "2"), ("talk[update][7][talk_id]", "7")]
    assert [t.talk_id for t in parse_webhook(raw).talks] == [2, 7, 10]


def test_add_and_update_together():
    raw = [("talk[add][0][talk_id]", "5"), ("talk[add][0][is_in_work]", "1"), ("talk[update][0][talk_id]", "6"),
           ("talk[update][0][is_in_work]", "0")]
    parsed = parse_webhook(raw)
    assert {(t.action, t.talk_id, t.is_closed) for t in parsed.talks} == {("add", 5, False), ("update", 6, True)}


def test_other_entities_are_not_an_error():
    parsed = parse_webhook([("leads[status][0][id]", "1"), ("account[id]", "1")])
    assert parsed.talks == [] and parsed.other_entities == ["leads"]


@pytest.mark.parametrize("raw, words", [
    ([], "empty"),
    ([("talk[update][0][talk_id]", "abc")], "talk_id"),
    ([("talk[update][0][is_in_work]", "0")], "talk_id"),
    ([("talk[update][x][talk_id]", "1")], "index"),
    ([("talk[close][0][talk_id]", "1")], "action"),
    ([("talk[update][0]", "1")], "fields"),
    ([("talk[update][0][talk_id]", "1"), ("talk[update][0][talk_id]", "2")], "twice"),
    ([("talk[update][0][talk_id", "1")], "form encoding"),
    ([("talk[update][0][talk_id]", "1"), ("talk[update][0][created_at]", "yesterday")], "created_at"),
    ([("talk", "1")], "talk"),
])
def test_malformed_bodies_say_why(raw, words):
    with pytest.raises(MalformedWebhook) as info:
        parse_webhook(raw)
    assert words in str(info.value)


def test_dedupe_key_same_for_same_item_and_different_for_a_later_change():
    a = parse_webhook(pairs(encode_talk_body("update", [talk(9)], ACCOUNT))).talks[0]
    b = parse_webhook(pairs(encode_talk_body("update", [talk(9)], ACCOUNT))).talks[0]
    c = parse_webhook(pairs(encode_talk_body("update", [talk(9, updated_at=1726590000)], ACCOUNT))).talks[0]
    assert dedupe_key(a) == dedupe_key(b) != dedupe_key(c)


@pytest.mark.parametrize("raw", [
    [("leads[update][0][tags][]", "a"), ("leads[update][0][tags][]", "b")],  # [] parts, repeated
    [("contacts[update][0][id]", "1"), ("contacts[update][0][id]", "1")],  # the same key twice
    [("unsorted[add][0][source_data]", "x"), ("unsorted[add][0][source_data][from]", "y")],  # value and group
    [("message[add][0][text", "unclosed bracket")],
    [("leads[update][0][id]", "1"), ("", "no name")],
])
def test_bodies_of_other_events_never_fail_the_parser(raw):
    parsed = parse_webhook(raw + [("account[id]", "123")])
    assert parsed.talks == [] and parsed.account == {"id": "123"}


def test_talk_items_stay_strict_next_to_tolerated_entities():
    raw = [("leads[update][0][tags][]", "a"), ("talk[update][0][talk_id]", "1"), ("talk[update][0][talk_id]", "2")]
    with pytest.raises(MalformedWebhook, match="twice"):
        parse_webhook(raw)
    with pytest.raises(MalformedWebhook, match="empty"):
        parse_webhook([("talk[update][][talk_id]", "1")])
