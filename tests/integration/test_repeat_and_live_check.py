"""Against the amoCRM sandbox, end to end: a contact's second chat is a repeat request, and
«Проверить на тестовом обращении» follows the next chat stage by stage and says what to fix."""
from __future__ import annotations

from datetime import timedelta

import pytest

from core.integrations import live_check
from core.models import Integration, LiveCheck
from tests.helpers.admin_helpers import csrf_from, signed_in, text
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, post, requests_of

pytestmark = pytest.mark.e2e

CONTACT = {"name": "Анна Смирнова", "phones": ["8 (915) 123-45-67"]}


def chat(amo, setup, origin="telegram", session_value=None, contact=CONTACT, created_at=None, close=True):
    lead = {"custom_fields": {str(setup.session_field_id): session_value}} if session_value is not None else {}
    opened = amo.state.create_chat(contact=contact, lead=lead, origin=origin, created_at=created_at)
    if close:
        amo.state.close_talk(opened["talk_id"], force_close=True, control=True)
    return opened


def test_the_second_chat_of_a_contact_is_a_repeat_request_pointing_at_the_first(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    first = chat(amo, setup, created_at=1_763_900_000)
    drain(app)
    again = amo.state.create_chat(contact_id=first["contact_id"], lead={}, origin="telegram", created_at=1_763_990_000)
    amo.state.close_talk(again["talk_id"], force_close=True, control=True)
    other = chat(amo, setup, contact={"name": "Пётр", "phones": ["+7 926 000-00-00"]}, created_at=1_763_990_100)
    drain(app)
    rows = {r["talk_id"]: r for r in requests_of(client, api)}
    assert (rows[first["talk_id"]]["is_repeat"], rows[first["talk_id"]]["first_request_id"]) == (False, None)
    assert (rows[again["talk_id"]]["is_repeat"], rows[again["talk_id"]]["first_request_id"]) == (True, rows[first["talk_id"]]["id"])
    assert rows[other["talk_id"]]["is_repeat"] is False
    assert [r["talk_id"] for r in requests_of(client, api, is_repeat="true")] == [again["talk_id"]]
    bad = client.get("/api/v1/requests", headers=api, query_string={"is_repeat": "yes"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "is_repeat"


def start(admin, setup) -> tuple[int, str]:
    page = admin.get(f"/admin/integrations/{setup.integration_id}/")
    response = admin.post(f"/admin/integrations/{setup.integration_id}/live-check",
                          data={"csrf_token": csrf_from(text(page))})
    assert response.status_code == 302
    check_id = int(response.headers["Location"].split("live_check=")[1].split("#")[0])
    return check_id, f"/admin/integrations/{setup.integration_id}/live-check/{check_id}"


def stages(admin, url) -> tuple[str, dict]:
    body = admin.get(url).get_json()
    return body["status"], {s["key"]: s["state"] for s in body["stages"]}, body["html"]


def test_a_test_chat_is_followed_to_its_request(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    chat(amo, setup)  # a chat before the check: not the one it waits for
    drain(app)
    admin = signed_in(app)
    check_id, url = start(admin, setup)
    status, states, html = stages(admin, url)
    assert status == "waiting" and states["webhook"] == "waiting" and states["recorded"] == "pending"
    assert "Ждём следующую беседу" in html

    visit = post(client, "/api/v1/sessions", api, {"site_id": setup.site_id, "entrance_page": "https://shop.example.ru/"})
    opened = chat(amo, setup, origin="onlinechat", session_value=str(visit["id"]), close=False)
    amo.state.close_talk(opened["talk_id"], force_close=True, control=True)
    status, states, _ = stages(admin, url)
    assert states["webhook"] == "done" and states["closed"] == "done" and states["fetched"] == "waiting"
    drain(app)
    status, states, html = stages(admin, url)
    assert status == "done" and set(states.values()) == {"done"}
    assert f"сессия {visit['id']}" in html and str(opened["talk_id"]) in html
    assert 'data-testid="live-request-link"' in html
    assert 'data-testid="live-needs-fix"' not in html
    # The setup page shows the same check when opened with its number (no JavaScript needed).
    page = text(admin.get(f"/admin/integrations/{setup.integration_id}/?live_check={check_id}"))
    assert 'data-status="done"' in page


def test_a_switched_off_channel_and_an_empty_field_say_what_to_fix(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    admin = signed_in(app)
    _, url = start(admin, setup)
    chat(amo, setup, origin="com.amocrm.mail")  # e-mail is not passed unless ticked
    status, states, html = stages(admin, url)
    assert status == "stopped" and states["fetched"] == "failed"
    assert "Какие каналы передавать" in html

    _, url = start(admin, setup)
    chat(amo, setup, origin="onlinechat", contact={"name": "Ольга", "phones": ["+7 916 555-12-34"]})
    drain(app)
    status, states, html = stages(admin, url)
    assert states["session_field"] == "failed" and states["recorded"] == "done"
    assert status == "done" and 'data-testid="live-needs-fix"' in html
    assert "Скрипт для вашего сайта" in html or "скрипт для вашего сайта" in html


def test_another_accounts_check_is_not_found(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    admin = signed_in(app)
    _, url = start(admin, setup)
    stranger = signed_in(app, email="stranger@example.ru", account_name="Чужой")
    assert stranger.get(url).status_code == 404


def test_without_a_registered_webhook_it_says_so_and_gives_up_after_ten_minutes(app, client, api, amo, services):
    setup = connected_integration(client, api, amo)
    with services.session_factory() as session:
        integration = session.get(Integration, setup.integration_id)
        integration.webhook_registered_at = None
        check = live_check.start_check(session, integration.account_id, integration.id)
        session.commit()
        state = live_check.check_state(session, check)
        assert state.status == "waiting" and [p.message for p in state.problems] == [
            "The webhook is not registered in amoCRM."]
        assert state.stages[0].fix == state.problems[0].fix
        late = live_check.check_state(session, session.get(LiveCheck, check.id),
                                      now=check.started_at + live_check.GIVE_UP_AFTER + timedelta(seconds=1))
        assert late.status == "gave_up" and late.finished


def test_the_repeat_window_form_refuses_a_bad_value_and_queues_a_recompute(app, client, api, amo):
    import dramatiq

    admin = signed_in(app)
    page = text(admin.get("/admin/requests/"))
    assert 'name="repeat_window_days"' in page and 'value="30"' in page
    broker = app.extensions["chatsource.broker"]
    broker.flush_all()
    for bad in ("0", "400", "abc"):
        response = admin.post("/admin/requests/repeat-window", data={"repeat_window_days": bad, "csrf_token": csrf_from(page)},
                              follow_redirects=True)
        assert "Период повторности — целое число дней от 1 до 365" in text(response)
    assert admin.get("/admin/requests/repeat-window/progress").get_json() == {"data": None}
    response = admin.post("/admin/requests/repeat-window", data={"repeat_window_days": "7", "csrf_token": csrf_from(page)},
                          follow_redirects=True)
    assert "Период повторности теперь 7 дн." in text(response)
    queued = [dramatiq.Message.decode(m).actor_name for m in list(broker.queues["maintenance"].queue)]
    assert queued == ["chatsource.recompute_repeat_requests"]
    assert admin.get("/admin/requests/repeat-window/progress").get_json()["data"]["status"] == "queued"
    drain(app)
    assert admin.get("/admin/requests/repeat-window/progress").get_json()["data"]["status"] == "done"


def test_a_talk_that_only_changed_does_not_hide_the_test_chat(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    open_elsewhere = chat(amo, setup, close=False)  # a conversation already going on
    admin = signed_in(app)
    _, url = start(admin, setup)
    amo.state.read_talk(open_elsewhere["talk_id"])  # a manager reads it: update_talk, still in work
    assert admin.get(url).get_json()["stages"][1] == {"key": "closed", "state": "waiting"}
    test_chat = chat(amo, setup, origin="onlinechat", contact={"name": "Тест", "phones": ["+7 903 111-22-33"]})
    drain(app)
    body = admin.get(url).get_json()
    assert body["status"] == "done" and f"беседе {test_chat['talk_id']}" in body["html"]
