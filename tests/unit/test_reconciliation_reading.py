"""Reading amoCRM's event log for reconciliation: the talk id from every shape we accept (in order),
what a REST talk becomes as an inbox item, the events call, and its setting."""
from __future__ import annotations

import pytest
import responses

from core.inbox.reconciliation import item_from_talk, talk_id_of, talk_is_closed
from core.platform.settings import ConfigError, Settings
from tests.helpers.amocrm_mock import BASE, client, services  # noqa: F401 - fixtures


@pytest.mark.parametrize("event, talk_id", [
    ({"value_after": [{"talk": {"id": 11}}], "entity_type": "talk", "entity_id": 99}, 11),
    ({"value_after": [{"talk": {"talk_id": "12"}}], "entity_type": "lead", "entity_id": 5}, 12),
    ({"value_after": [{"talk_id": 13}], "entity_type": "contact", "entity_id": 5}, 13),
    ({"value_after": [], "entity_type": "talk", "entity_id": 14}, 14),
    ({"value_after": [{"message": {"id": "x"}}, {"talk": {"id": 15}}]}, 15),  # any item of value_after
    ({"value_after": [{"talk_id": 16}, {"talk": {"id": 17}}]}, 17),  # talk.id is looked for first
])
def test_the_talk_id_is_read_from_each_accepted_place_in_order(event, talk_id):
    assert talk_id_of(event) == talk_id


@pytest.mark.parametrize("event", [
    {"value_after": [{"talk": {"id": "not a number"}}], "entity_type": "lead", "entity_id": 42},
    {"value_after": [{"talk": {"id": True}}]},
    {"value_after": [{"talk": {"id": -3}}], "entity_type": "talk", "entity_id": 0},
    {"value_after": "oops", "entity_type": "talk", "entity_id": "٣"},  # a digit to Python, not to amoCRM
    {"value_after": [{"talk": {"id": 2**64}}]},
    {}, "a string", None,
])
def test_events_without_a_readable_talk_id(event):
    assert talk_id_of(event) is None


def test_a_talk_becomes_an_item_like_a_webhook_sends():
    talk = {"talk_id": 101, "created_at": 1_763_900_000, "updated_at": 1_763_900_600, "rate": 0, "contact_id": 7,
            "chat_id": "c-1", "entity_id": 9, "entity_type": "lead", "is_in_work": False, "is_read": True,
            "origin": "telegram", "missed_at": None, "account_id": 1, "_embedded": {}}
    item = item_from_talk(talk)
    assert item.fields == {"talk_id": "101", "created_at": "1763900000", "updated_at": "1763900600", "rate": "0",
                           "contact_id": "7", "chat_id": "c-1", "entity_id": "9", "entity_type": "lead",
                           "is_in_work": "0", "is_read": "1", "origin": "telegram"}
    assert item.is_closed and item.action == "update"


@pytest.mark.parametrize("talk, closed", [
    ({"is_in_work": False}, True), ({"is_in_work": True}, False), ({"is_in_work": True, "status": "closed"}, True),
    ({"is_in_work": True, "status": "nps_in_progress"}, False), ({"status": "in_work"}, False),
])
def test_closed_is_is_in_work_false_or_status_closed(talk, closed):
    assert talk_is_closed(talk) is closed


def test_the_events_call_filters_and_pages_and_204_ends_it(client):  # noqa: F811
    page2 = f"{BASE}/api/v4/events?filter%5Btype%5D%5B%5D=talk_closed&limit=100&page=2"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/events", match=[responses.matchers.query_param_matcher(
            {"filter[type][]": "talk_closed", "filter[created_at][from]": "100", "filter[created_at][to]": "200",
             "limit": "100", "page": "1"})],
            json={"_embedded": {"events": [{"id": "A"}]}, "_links": {"next": {"href": page2}}})
        rsps.add(responses.GET, f"{BASE}/api/v4/events", match=[responses.matchers.query_param_matcher(
            {"filter[type][]": "talk_closed", "limit": "100", "page": "2"})], status=204)
        assert client.list_events(["talk_closed"], 100, 200) == [{"id": "A"}]


def test_reconcile_interval_setting(tmp_path):
    assert Settings.from_env({"APP_ENV": "test", "INSTANCE_DIR": str(tmp_path)}).reconcile_interval_seconds == 600
    assert Settings.from_env({"APP_ENV": "test", "INSTANCE_DIR": str(tmp_path), "RECONCILE_INTERVAL_SECONDS": "5"}).reconcile_interval_seconds == 5
    for bad in ("0", "often"):
        with pytest.raises(ConfigError, match="RECONCILE_INTERVAL_SECONDS"):
            Settings.from_env({"APP_ENV": "test", "INSTANCE_DIR": str(tmp_path), "RECONCILE_INTERVAL_SECONDS": bad})


def test_a_talk_amocrm_refuses_is_skipped_not_retried_forever(services, client, caplog):  # noqa: F811
    from core.inbox import reconciliation
    from core.models import ChatRequest, WebhookEvent

    closed = {"talk_id": 2, "created_at": 1, "updated_at": 2, "contact_id": 7, "chat_id": "c", "is_in_work": False,
              "is_read": True, "origin": "telegram"}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/events", json={"_embedded": {"events": [
            {"id": "A", "type": "talk_closed", "entity_type": "talk", "entity_id": 1, "value_after": [{"talk": {"id": 1}}]},
            {"id": "B", "type": "talk_closed", "entity_type": "talk", "entity_id": 2, "value_after": [{"talk": {"id": 2}}]},
        ]}})
        rsps.add(responses.GET, f"{BASE}/api/v4/talks/1", status=403,
                 json={"title": "Forbidden", "type": "https://httpstatus.es/403", "status": 403, "detail": "Access denied"})
        rsps.add(responses.GET, f"{BASE}/api/v4/talks/2", json=closed)
        counts = reconciliation.Counts()
        reconciliation.reconcile_window(services, client.integration_id, 0, 10, counts, client=client)
    assert (counts.events, counts.not_found, counts.recovered) == (2, 1, 1)
    assert "refused talk 1" in caplog.text
    with services.session_factory() as session:
        [event] = session.query(WebhookEvent).all()
        # The fixture's integration is switched off: stored as a webhook of it would be.
        assert (event.talk_id, event.dedupe_key, event.status, event.item["_source"]) == (2, "reconcile:2", "ignored", "reconciliation")
        assert session.query(ChatRequest).count() == 0  # the worker records it, as for a webhook
