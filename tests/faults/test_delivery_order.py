"""Deliveries as a real network hands them over: the close before the add, an older update after the
close, the same delivery several times at once, and again after it was processed. Each closed talk
is recorded exactly once, from its close."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from sandbox.webhook_format import TALK_FIELDS, encode_talk_body
from tests.helpers import http as loopback  # loopback only: never through a proxy
from tests.helpers.apps import drain
from tests.helpers.fault_helpers import assert_each_closed_talk_recorded_once, event_statuses
from tests.helpers.pipeline_helpers import connected_integration, requests_of

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]

CONTACT = {"name": "Ольга Петрова", "phones": ["+7 916 555-01-02"], "emails": ["olga@example.ru"]}


def webhook_item(amo, talk_id: int, **overrides) -> dict:
    talk = amo.state.get_talk(talk_id)
    return {**{k: talk[k] for k in TALK_FIELDS if k in talk}, **overrides}


def test_close_before_add_and_stale_update_after_close(app, client, api, amo, services):
    setup = connected_integration(client, api, amo)
    chat = amo.state.create_chat(contact=CONTACT, lead={}, origin="telegram", created_at=1_763_900_000)
    talk = chat["talk_id"]
    amo.state.close_talk(talk, force_close=True, control=True)  # the close arrives first
    closed_at = amo.state.get_talk(talk)["updated_at"]
    # ...then the add_talk of the chat's start (delivered late), and a "read" update older than the close.
    amo.state.send_talk_events(event="add_talk", talk_ids=[talk], destination=setup.webhook_url,
                               talks=[{"talk_id": talk, "is_in_work": True, "is_read": False, "updated_at": 1_763_900_000}])
    amo.state.send_talk_events(event="update_talk", talk_ids=[talk],
                               talks=[{"talk_id": talk, "is_in_work": True, "is_read": True, "updated_at": 1_763_900_060}])
    assert all(d["status_code"] == 200 for d in amo.state.list_deliveries())
    drain(app)

    [req] = requests_of(client, api)
    assert req["talk_id"] == talk and req["contact_name"] == "Ольга Петрова" and req["phone"] == "+79165550102"
    assert datetime.fromisoformat(req["closed_at"]) == datetime.fromtimestamp(closed_at, tz=timezone.utc)
    assert_each_closed_talk_recorded_once(services, setup.integration_id, [talk])
    statuses = sorted(e["status"] for e in client.get("/api/v1/events", headers=api).get_json()["data"])
    assert statuses == ["done", "skipped", "skipped"]

    # A stale update long after processing changes nothing.
    amo.state.send_talk_events(event="update_talk", talk_ids=[talk],
                               talks=[{"talk_id": talk, "is_in_work": True, "updated_at": 1_763_900_120}])
    drain(app)
    assert [r["id"] for r in requests_of(client, api)] == [req["id"]]


def test_concurrent_duplicates_and_redeliveries_make_one_request(app, client, api, amo, services):
    setup = connected_integration(client, api, amo)
    chats = [amo.state.create_chat(contact={**CONTACT, "name": f"Клиент {i}"}, lead={}, origin="telegram") for i in range(3)]
    talks = [c["talk_id"] for c in chats]
    account = {"id": 31415926, "subdomain": "sandbox", "_links": {"self": amo.url}}
    bodies = [encode_talk_body("update", [webhook_item(amo, t, is_in_work=False)], account) for t in talks]
    http = loopback.loopback_session()
    http.trust_env = False

    def post(body: str) -> dict:
        response = http.post(setup.webhook_url, data=body, timeout=20,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200, response.text
        return response.json()

    # amoCRM's retry racing its first attempt: each close arrives 8 times at once.
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, [b for b in bodies for _ in range(8)]))
    assert sum(a["stored"] for a in answers) == 3 and sum(a["duplicates"] for a in answers) == 21
    drain(app)
    assert_each_closed_talk_recorded_once(services, setup.integration_id, talks)

    # Redelivered after processing, and one talk closed again later (a new updated_at): new events,
    # still one request per talk.
    assert post(bodies[0]) == {"stored": 0, "duplicates": 1, "queued": 0}
    again = encode_talk_body("update", [webhook_item(amo, talks[1], is_in_work=False, updated_at=1_900_000_000)], account)
    assert post(again)["stored"] == 1
    drain(app)
    assert_each_closed_talk_recorded_once(services, setup.integration_id, talks)
    assert event_statuses(services, setup.integration_id)[talks[1]] == ["done", "done"]
